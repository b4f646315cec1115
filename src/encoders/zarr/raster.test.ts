import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { LocalFileStorage } from '../../../connectors/local-file/storage.js';
import type { RasterRecord, RasterScene } from '../../core/raster.js';
import { seededRandom } from '../../records/sample.js';
import { referencePython } from '../../../test/support/python.js';
import { chunkCodec, type ZarrFormat } from './codecs.js';
import { appendRasterTiles, gridId, type RasterOptions } from './raster.js';
import { ZarrStore } from './store.js';

const DAY = 86_400_000_000;
const ORIGIN = Date.UTC(2024, 2, 1) * 1000;
const scene: RasterScene = {
  sceneId: 's', width: 300, height: 200, dtype: 'float32', bands: 1, geotransform: [500000, 30, 0, 4600000, 0, -30], crs: 32633, epsg: 32633, nodata: -9999,
};
const options: RasterOptions = { timeStepUs: DAY, originUs: ORIGIN, chunks: [1, 100, 100] };

/** The tiles (128 × 128, edges smaller) of day `day`; pixel (x, y) = day·1000 + y + x/1000, nodata in the top-left 10 × 10. */
function tiles(day: number, firstOffset: number): RasterRecord[] {
  const out: RasterRecord[] = [];
  for (let y = 0; y < scene.height; y += 128) {
    for (let x = 0; x < scene.width; x += 128) {
      const width = Math.min(128, scene.width - x), height = Math.min(128, scene.height - y);
      const px = new Float32Array(width * height);
      for (let j = 0; j < height; j++) for (let i = 0; i < width; i++) px[j * width + i] = x + i < 10 && y + j < 10 ? -9999 : day * 1000 + (y + j) + (x + i) / 1000;
      out.push({
        kind: 'raster', position: { source: 't', partition: 0, offset: firstOffset + out.length }, size: px.byteLength, dataset: 'ds', variable: 'ndvi', timeUs: ORIGIN + day * DAY,
        scene, x, y, width, height, pixels: new Uint8Array(px.buffer), bboxNative: [0, 0, 0, 0], bbox: [0, 0, 0, 0],
      } as RasterRecord);
    }
  }
  return out;
}

async function storeAt(format: ZarrFormat) {
  const dir = await mkdtemp(join(tmpdir(), 'earthmem-zarr-raster-'));
  return { dir, store: new ZarrStore(new LocalFileStorage({ base_path: dir, permissions: 'rw-r--r--' }), `R/2024/03/ds/ndvi-${gridId(scene)}.zarr`, { format, separator: '/', codec: chunkCodec('zstd', 3, format) }) };
}

async function files(dir: string) {
  const names = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name).slice(dir.length)).sort();
  return Promise.all(names.map(async (n) => [n, (await readFile(join(dir, n))).toString('hex')]));
}

const XARRAY = `
import json, sys, numpy as np, xarray as xr, zarr
ds = xr.open_zarr(sys.argv[1])
v = ds["ndvi"]
print(json.dumps({"dims": list(v.dims), "shape": list(v.shape), "x0": float(ds.x[0]), "y0": float(ds.y[0]), "time": [str(t) for t in ds.time.values.astype("datetime64[s]")],
  "nan": int(np.isnan(v.values[0]).sum()), "pixel": None if np.isnan(v.values[1, 150, 250]) else float(v.values[1, 150, 250]), "grid_mapping": v.encoding.get("grid_mapping", v.attrs.get("grid_mapping")),
  "crs_wkt": ds["spatial_ref"].attrs["crs_wkt"][:30], "geotransform": ds["spatial_ref"].attrs["GeoTransform"], "zarr_format": zarr.open_group(sys.argv[1], mode="r").metadata.zarr_format}))
`;

for (const format of [2, 3] as const) {
  test(`raster tiles as Zarr v${format}: xarray decodes time, pixel centres, nodata; CF spatial_ref${format === 2 ? '; GDAL reports the geotransform and EPSG' : ''}`, async () => {
    const { dir, store } = await storeAt(format);
    await appendRasterTiles(store, tiles(0, 0), options);
    await appendRasterTiles(store, tiles(2, 100), options);
    const root = join(dir, store.root);
    const got = JSON.parse(execFileSync(referencePython(), ['-c', XARRAY, root]).toString());
    assert.deepEqual(got.dims, ['time', 'y', 'x']);
    assert.deepEqual(got.shape, [3, 200, 300]);
    assert.equal(got.x0, 500015);
    assert.equal(got.y0, 4599985);
    assert.deepEqual(got.time, ['2024-03-01T00:00:00', '2024-03-02T00:00:00', '2024-03-03T00:00:00']);
    assert.equal(got.nan, 100, 'nodata masked');
    assert.equal(got.pixel, null, 'a day with no tiles is fill');
    assert.equal(got.grid_mapping, 'spatial_ref');
    assert.match(got.crs_wkt, /^PROJCS\["WGS 84 \/ UTM zone 33N"/);
    assert.equal(got.geotransform, '500000 30 0 4600000 0 -30');
    assert.equal(got.zarr_format, format);
    if (format === 2) {
      const gdal = JSON.parse(execFileSync('/usr/bin/python3', [resolve('test/support/check_zarr_gdal.py'), root, 'ndvi']).toString());
      assert.equal(gdal.epsg, '32633');
      assert.deepEqual(gdal.geotransform, [500000, 30, 0, 4600000, 0, -30]);
      assert.equal(gdal.nodata, -9999);
      const mdim = execFileSync('gdalmdiminfo', [root]).toString();
      assert.match(mdim, /32633/);
    }
  });
}

test('tiles in any order and batching give the same bytes', async () => {
  const a = await storeAt(2);
  await appendRasterTiles(a.store, [...tiles(0, 0), ...tiles(1, 100)], options);
  const b = await storeAt(2);
  const random = seededRandom(7);
  const shuffled = [...tiles(1, 100), ...tiles(0, 0)].sort(() => random() - 0.5);
  await appendRasterTiles(b.store, shuffled.slice(0, 5), options);
  await appendRasterTiles(b.store, shuffled.slice(5), options);
  await appendRasterTiles(b.store, shuffled.slice(2, 4), options); // redelivered
  assert.deepEqual(await files(join(b.dir, b.store.root)), await files(join(a.dir, a.store.root)));
});

for (const format of [2, 3] as const) {
  test(`three-band tiles as Zarr v${format}: (time, band, y, x), one band per chunk, bands numbered from 1; GDAL and xarray read each band's pixels`, async () => {
    const rgb: RasterScene = { ...scene, dtype: 'uint16', bands: 3, nodata: 0 };
    const rgbTiles: RasterRecord[] = [];
    for (let y = 0; y < rgb.height; y += 128) {
      for (let x = 0; x < rgb.width; x += 128) {
        const width = Math.min(128, rgb.width - x), height = Math.min(128, rgb.height - y);
        // Pixel-interleaved: sample b of pixel (x, y) = (b + 1)·1000 + (y % 100)·3 + x % 3.
        const px = new Uint16Array(width * height * 3);
        for (let j = 0; j < height; j++) for (let i = 0; i < width; i++) for (let b = 0; b < 3; b++) px[(j * width + i) * 3 + b] = (b + 1) * 1000 + ((y + j) % 100) * 3 + ((x + i) % 3);
        rgbTiles.push({
          kind: 'raster', position: { source: 't', partition: 0, offset: rgbTiles.length }, size: px.byteLength, dataset: 'ds', variable: 'rgb', timeUs: ORIGIN + DAY,
          scene: rgb, x, y, width, height, pixels: new Uint8Array(px.buffer), bboxNative: [0, 0, 0, 0], bbox: [0, 0, 0, 0],
        } as RasterRecord);
      }
    }
    const dir = await mkdtemp(join(tmpdir(), 'earthmem-zarr-rgb-'));
    const store = new ZarrStore(new LocalFileStorage({ base_path: dir, permissions: 'rw-r--r--' }), `R/rgb-${gridId(rgb)}.zarr`, { format, separator: '/', codec: chunkCodec('zstd', 3, format) });
    await appendRasterTiles(store, rgbTiles.reverse(), options);
    const root = join(dir, store.root);
    const script = `
import json, sys, numpy as np, xarray as xr
ds = xr.open_zarr(sys.argv[1], mask_and_scale=False)
v = ds["rgb"]
expected = np.array([[[(b + 1) * 1000 + (y % 100) * 3 + x % 3 for x in range(300)] for y in range(200)] for b in range(3)], dtype="uint16")
print(json.dumps({"dims": list(v.dims), "shape": list(v.shape), "band": [int(b) for b in ds.band.values], "equal": bool((v.values[1] == expected).all()), "day0_fill": bool((v.values[0] == 0).all())}))`;
    const got = JSON.parse(execFileSync(referencePython(), ['-c', script, root]).toString());
    assert.deepEqual(got, { dims: ['time', 'band', 'y', 'x'], shape: [2, 3, 200, 300], band: [1, 2, 3], equal: true, day0_fill: true });
    if (format === 2) {
      const mdim = JSON.parse(execFileSync('gdalmdiminfo', [root]).toString()) as { arrays: Record<string, { dimensions: string[] }> };
      assert.deepEqual(mdim.arrays.rgb!.dimensions, ['/time', '/band', '/y', '/x']);
    }
  });
}

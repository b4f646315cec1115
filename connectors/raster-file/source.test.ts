/**
 * The raster_file source on GeoTIFFs that GDAL writes (stripped, tiled, DEFLATE, LZW, ZSTD,
 * PixelIsPoint, several bands, every dtype, UTM/4326/3857): every tile's pixels equal what rasterio
 * reads from the same window, and its grid is the file's geotransform. Files GDAL describes with no
 * CRS or a rotated grid fail naming the file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SourceError } from '../../src/core/errors.js';
import type { RawChunk } from '../../src/core/source.js';
import { decodeRasterTile, DTYPE_BYTES } from '../../src/records/raster.js';
import { gdalPython } from '../../test/support/cog.js';
import { referencePython } from '../../test/support/python.js';
import { rasterFileSourceSchema } from './config.js';
import { RasterFileSource } from './source.js';
import { timeFromName } from './tiles.js';

interface Case {
  name: string;
  dtype: string;
  width: number;
  height: number;
  bands: number;
  epsg: number | null;
  gt: number[];
  nodata: number | string | null;
  options: string[];
  point?: boolean;
}

const CASES: Case[] = [
  { name: 'strip_u8_20260115T103000Z.tif', dtype: 'uint8', width: 300, height: 170, bands: 1, epsg: 32632, gt: [600000, 10, 0, 5000000, 0, -10], nodata: 0, options: ['BLOCKYSIZE=7'] },
  { name: 'tiled_deflate_f32_20260115T103000Z.tif', dtype: 'float32', width: 333, height: 257, bands: 1, epsg: 32733, gt: [500000, 30, 0, 8000000, 0, -30], nodata: 'nan', options: ['TILED=YES', 'BLOCKXSIZE=64', 'BLOCKYSIZE=32', 'COMPRESS=DEFLATE', 'PREDICTOR=3'] },
  { name: 'lzw_i16_20260115T103000Z.tif', dtype: 'int16', width: 200, height: 201, bands: 3, epsg: 4326, gt: [10, 0.01, 0, 50, 0, -0.01], nodata: -9999, options: ['COMPRESS=LZW', 'PREDICTOR=2', 'INTERLEAVE=PIXEL'] },
  { name: 'band_f64_20260115T103000Z.tif', dtype: 'float64', width: 130, height: 129, bands: 2, epsg: 3857, gt: [1000000, 100, 0, 6000000, 0, -100], nodata: -1.5, options: ['INTERLEAVE=BAND', 'COMPRESS=DEFLATE'] },
  { name: 'zstd_u16_20260115T103000Z.tif', dtype: 'uint16', width: 128, height: 128, bands: 1, epsg: 32601, gt: [166000, 20, 0, 9000000, 0, -20], nodata: null, options: ['TILED=YES', 'COMPRESS=ZSTD'] },
  { name: 'point_i32_20260115T103000Z.tif', dtype: 'int32', width: 65, height: 40, bands: 1, epsg: 4326, gt: [-180, 0.5, 0, 90, 0, -0.5], nodata: null, options: [], point: true },
  { name: 'misc_i8_u32_20260115T103000Z.tif', dtype: 'int8', width: 70, height: 33, bands: 1, epsg: 32660, gt: [300000, 5, 0, 100000, 0, -5], nodata: -128, options: ['PIXELTYPE=SIGNEDBYTE'] },
  { name: 'u32_20260115T103000Z.tif', dtype: 'uint32', width: 40, height: 70, bands: 1, epsg: 32632, gt: [600000, 1, 0, 5000000, 0, -1], nodata: 4294967295, options: ['COMPRESS=DEFLATE'] },
];
const BAD: Case[] = [
  { name: 'nocrs_20260115T103000Z.tif', dtype: 'uint8', width: 10, height: 10, bands: 1, epsg: null, gt: [0, 1, 0, 0, 0, -1], nodata: null, options: [] },
  { name: 'rotated_20260115T103000Z.tif', dtype: 'uint8', width: 10, height: 10, bands: 1, epsg: 32632, gt: [600000, 10, 2, 5000000, 1, -10], nodata: null, options: [] },
];

const MAKE = `
import json, sys, numpy as np
from osgeo import gdal, osr
gdal.UseExceptions()
types = {'uint8': gdal.GDT_Byte, 'int8': gdal.GDT_Byte, 'uint16': gdal.GDT_UInt16, 'int16': gdal.GDT_Int16, 'uint32': gdal.GDT_UInt32,
         'int32': gdal.GDT_Int32, 'float32': gdal.GDT_Float32, 'float64': gdal.GDT_Float64}
folder, cases = json.load(sys.stdin)
rng = np.random.default_rng(13)
for c in cases:
    ds = gdal.GetDriverByName('GTiff').Create(folder + '/' + c['name'], c['width'], c['height'], c['bands'], types[c['dtype']], c['options'])
    ds.SetGeoTransform(c['gt'])
    if c['epsg']:
        srs = osr.SpatialReference(); srs.ImportFromEPSG(c['epsg']); ds.SetProjection(srs.ExportToWkt())
    if c.get('point'):
        ds.SetMetadataItem('AREA_OR_POINT', 'Point')
    for b in range(c['bands']):
        band = ds.GetRasterBand(b + 1)
        if c['dtype'].startswith('float'):
            data = rng.normal(0, 1000, (c['height'], c['width']))
            data[rng.random(data.shape) < 0.05] = np.nan
        else:
            info = np.iinfo(c['dtype'])
            data = rng.integers(info.min, info.max, (c['height'], c['width']), endpoint=True, dtype=c['dtype'])
        band.WriteArray(data.astype(c['dtype']) if c['dtype'] != 'int8' else data.view('uint8'))
        if c['nodata'] is not None:
            band.SetNoDataValue(float('nan') if c['nodata'] == 'nan' else c['nodata'])
    ds = None
`;

/** rasterio's reading: pixel-interleaved little-endian bytes, its geotransform (GDAL order) and nodata. */
const READ = `
import json, sys, rasterio
folder, names = json.load(sys.stdin)
out = {}
for name in names:
    with rasterio.open(folder + '/' + name) as ds:
        data = ds.read()
        data.transpose(1, 2, 0).astype(data.dtype.newbyteorder('<')).tofile(folder + '/' + name + '.bin')
        out[name] = {'gt': list(ds.transform.to_gdal()), 'epsg': ds.crs.to_epsg(), 'nodata': None if ds.nodata is None else str(ds.nodata)}
print(json.dumps(out))
`;

let folder: string;
let expected: Record<string, { gt: number[]; epsg: number; nodata: string | null }>;

before(() => {
  folder = mkdtempSync(join(tmpdir(), 'raster-file-'));
  execFileSync(gdalPython(), ['-c', MAKE], { input: JSON.stringify([folder, [...CASES, ...BAD]]) });
  expected = JSON.parse(execFileSync(referencePython(), ['-c', READ], { input: JSON.stringify([folder, CASES.map((c) => c.name)]) }).toString());
});
after(() => rmSync(folder, { recursive: true, force: true }));

const source = (path: string, extra: Record<string, unknown> = {}) =>
  new RasterFileSource(rasterFileSourceSchema.parse({ type: 'raster_file', path, dataset: 'd', variable: 'v', time_pattern: '_(\\d{8}T\\d{6}Z)\\.tif$', ...extra }));

async function collect(s: RasterFileSource): Promise<RawChunk[]> {
  const chunks: RawChunk[] = [];
  for await (const chunk of s.chunks(new AbortController().signal)) chunks.push(chunk);
  return chunks;
}

describe('raster_file source', () => {
  for (const c of CASES) {
    it(`${c.name}: every ${c.dtype} tile equals rasterio's pixels of its window; the grid is the file's`, async () => {
      const tileSize = 64;
      const chunks = await collect(source(join(folder, c.name), { tile_size: tileSize }));
      const across = Math.ceil(c.width / tileSize), down = Math.ceil(c.height / tileSize);
      assert.equal(chunks.length, across * down);
      const all = readFileSync(join(folder, `${c.name}.bin`));
      const bpp = DTYPE_BYTES[c.dtype as keyof typeof DTYPE_BYTES] * c.bands;
      const want = expected[c.name]!;
      for (const [i, chunk] of chunks.entries()) {
        assert.deepEqual(chunk.positions, [{ source: chunk.positions[0]!.source, partition: 0, offset: i + 1 }]);
        const decoded = await decodeRasterTile(chunk.payloads[0]!, chunk.positions[0]!);
        assert.ok('record' in decoded, 'deadLetter' in decoded ? decoded.deadLetter.message : '');
        const r = decoded.record;
        assert.equal(r.x, (i % across) * tileSize);
        assert.equal(r.y, Math.floor(i / across) * tileSize);
        assert.equal(r.width, Math.min(tileSize, c.width - r.x));
        assert.equal(r.height, Math.min(tileSize, c.height - r.y));
        assert.equal(r.scene.sceneId, c.name.replace(/\.tif$/, ''));
        assert.equal(r.scene.epsg, want.epsg);
        assert.equal(r.timeUs, Date.parse('2026-01-15T10:30:00Z') * 1000);
        r.scene.geotransform.forEach((v, k) => assert.ok(Math.abs(v - want.gt[k]!) <= 1e-9 * Math.max(1, Math.abs(v)), `geotransform ${r.scene.geotransform} vs ${want.gt}`));
        if (want.nodata === null) assert.equal(r.scene.nodata, null);
        else if (want.nodata === 'nan') assert.ok(Number.isNaN(r.scene.nodata));
        else assert.equal(r.scene.nodata, Number(want.nodata));
        for (let row = 0; row < r.height; row++) {
          const from = ((r.y + row) * c.width + r.x) * bpp;
          const got = r.pixels.subarray(row * r.width * bpp, (row + 1) * r.width * bpp);
          assert.ok(Buffer.compare(got, all.subarray(from, from + r.width * bpp)) === 0, `tile ${i + 1} row ${row} differs`);
        }
      }
    });
  }

  it('a glob replays files in name order, and the same way twice (deterministic)', async () => {
    const glob = join(folder, '*_u*_20260115T103000Z.tif');
    const first = await collect(source(glob, { tile_size: 100 }));
    const second = await collect(source(glob, { tile_size: 100 }));
    assert.deepEqual(first.map((c) => c.positions[0]), second.map((c) => c.positions[0]));
    first.forEach((c, i) => assert.equal(Buffer.compare(c.payloads[0]!, second[i]!.payloads[0]!), 0));
    const files = [...new Set(first.map((c) => c.positions[0]!.source.split('/').pop()))];
    assert.deepEqual(files, [...files].sort());
  });

  it('scene_id_pattern names the scene', async () => {
    const [chunk] = await collect(source(join(folder, CASES[4]!.name), { scene_id_pattern: '^([a-z]+)_' }));
    const decoded = await decodeRasterTile(chunk!.payloads[0]!, chunk!.positions[0]!);
    assert.ok('record' in decoded && decoded.record.scene.sceneId === 'zstd');
  });

  for (const [bad, words] of [[BAD[0]!, /no CRS/], [BAD[1]!, /rotated/]] as const) {
    it(`${bad.name}: a clear error naming the file`, async () => {
      await assert.rejects(collect(source(join(folder, bad.name))), (error: unknown) => {
        assert.ok(error instanceof SourceError);
        assert.match(error.message, words);
        assert.ok(error.message.includes(bad.name), error.message);
        return true;
      });
    });
  }

  it('a file name time_pattern does not match: an error naming the file', async () => {
    await assert.rejects(collect(source(join(folder, CASES[0]!.name), { time_pattern: '(\\d{4}-\\d{2}-\\d{2})' })), /does not match the file name strip_u8/);
  });

  it('time_pattern: extended and basic RFC 3339, offsets; bad times refused', () => {
    assert.equal(timeFromName('a_20260115T103000Z.tif', /_(\w+)\.tif/), '2026-01-15T10:30:00Z');
    assert.equal(timeFromName('a_20260115T103000.250+0130.tif', /_([\dT.+]+)\.tif/), '2026-01-15T10:30:00.250+01:30');
    assert.equal(timeFromName('x_2026-01-15T10:30:00Z.tif', /_(.+)\.tif/), '2026-01-15T10:30:00Z');
    assert.throws(() => timeFromName('a_20261315T103000Z.tif', /_(\w+)\.tif/), /not an RFC 3339/);
  });

  it('config: strict, a time_pattern without a group or not a regex is refused', () => {
    const base = { type: 'raster_file', path: 'in/*.tif', dataset: 'd', variable: 'v' };
    assert.equal(rasterFileSourceSchema.parse({ ...base, time_pattern: '(\\d+)' }).tile_size, 512);
    assert.throws(() => rasterFileSourceSchema.parse({ ...base, time_pattern: '\\d+' }), /capturing group/);
    assert.throws(() => rasterFileSourceSchema.parse({ ...base, time_pattern: '(' }), /not a regular expression/);
    assert.throws(() => rasterFileSourceSchema.parse({ ...base, time_pattern: '(\\d+)', tilesize: 3 }), /Unrecognized key/);
  });
});

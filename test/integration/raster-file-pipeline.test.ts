/**
 * A pipeline whose source is `raster_file` (a backfill replay of GeoTIFFs): its tiles are decoded
 * and assembled into one COG per file, on the hot tier's `type: cog` raster_backend; every tile
 * read has exactly one outcome, and tiles that fail decoding keep their own reason.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { runPipeline } from '../../src/pipeline/run.js';
import { gdalCheckCogs, gdalProblems, gdalPython } from '../support/cog.js';
import { referencePython } from '../support/python.js';
import { SqliteCatalog } from '../../src/catalog/sqlite.js';
import { demoConfig, tempDir } from '../support/fixtures.js';

const dir = tempDir('raster-pipeline');
after(() => rmSync(dir, { recursive: true, force: true }));

describe('raster_file source through the pipeline', () => {
  it('decodes every tile in the parse stage; a tile over max_record_bytes is too_large with its bytes', async () => {
    const script = `
import sys
from osgeo import gdal, osr
gdal.UseExceptions()
for name, w, h in (('a_20260115T103000Z.tif', 300, 200), ('b_20260116T103000Z.tif', 90, 40)):
    ds = gdal.GetDriverByName('GTiff').Create(sys.argv[1] + '/' + name, w, h, 1, gdal.GDT_UInt16, ['COMPRESS=LZW'])
    ds.SetGeoTransform([600000, 10, 0, 5000000, 0, -10])
    srs = osr.SpatialReference(); srs.ImportFromEPSG(32632); ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).Fill(7)
    ds = None`;
    execFileSync(gdalPython(), ['-c', script, dir]);
    const data = join(dir, 'out');
    const source = [
      'source:',
      '  type: raster_file',
      `  path: ${join(dir, '*.tif')}`,
      '  dataset: s2',
      '  variable: b04',
      '  time_pattern: "_(\\\\d{8}T\\\\d{6}Z)\\\\.tif$"',
      '  tile_size: 128',
      // 128 × 128 uint16 = 32 KiB: full tiles pass, one byte less refuses them.
      '  max_record_bytes: 32767',
    ].join('\n');
    const config = demoConfig(join(dir, 'unused.ndjson'), data, (y) =>
      y
        .replace(/source:\n(  .*\n)+/, `${source}\n`)
        .replace('  rules:\n', '  rules:\n    - match: { kind: raster }\n      memory_type: SatelliteMemory\n')
        .replace('      compression: { algorithm: zstd, level: low }\n', '      compression: { algorithm: zstd, level: low }\n      raster_backend: { type: cog, base_path: "${EARTHMEM_DATA:-data/demo}/cogs", organization: "{dataset}/{variable}" }\n'),
    );
    const summary = await runPipeline(config);
    // a: 3 × 2 tiles, of which 2 are full (128 × 128); b: 1 tile.
    assert.equal(summary.recordsRead, 7);
    assert.equal(summary.deadLettered, 2);
    assert.deepEqual(summary.deadLetterReasons, { too_large: 2 });
    assert.equal(summary.recordsWritten, 5);
    assert.equal(summary.complete, true);
    // One COG per file: a partial (its two full tiles were refused: the end of the replay writes what came), b complete.
    const catalog = new SqliteCatalog(join(data, 'catalog.sqlite'));
    const rows = (await catalog.list()).filter((r) => r.kind === 'raster');
    await catalog.close();
    assert.deepEqual(rows.map((r) => [r.key, r.raster?.partial, r.raster?.tiles, r.raster?.width, r.raster?.height, r.raster?.epsg]), [
      ['SatelliteMemory/s2/b04/a_20260115T103000Z_b04_20260115T103000Z.tif', true, 4, 300, 200, 32632],
      ['SatelliteMemory/s2/b04/b_20260116T103000Z_b04_20260116T103000Z.tif', false, 1, 90, 40, 32632],
    ]);
    for (const row of rows) assert.deepEqual(gdalProblems(gdalCheckCogs([{ path: row.uri, cogBlocksize: 256 }])[0]!), [], row.uri);
    const letters = readFileSync(join(data, 'dead-letter.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(letters.length, 2);
    const big = letters.find((l) => l.reason === 'too_large')!;
    assert.match(String(big.message), /over max_record_bytes 32767/);
    assert.match(JSON.stringify(big), /a_20260115T103000Z\.tif/);
  });

  it('tiles routed to a Zarr raster_backend append along time: one array per (dataset, variable, grid), read by xarray; a replay writes the same bytes', async () => {
    const zdir = join(dir, 'zarr-case');
    const script = `
import sys, os
from osgeo import gdal, osr
gdal.UseExceptions()
os.makedirs(sys.argv[1], exist_ok=True)
for day in (15, 16, 18):
    ds = gdal.GetDriverByName('GTiff').Create(f'{sys.argv[1]}/s2_202601{day}T103000Z.tif', 300, 200, 1, gdal.GDT_UInt16, ['COMPRESS=LZW'])
    ds.SetGeoTransform([600000, 10, 0, 5000000, 0, -10])
    srs = osr.SpatialReference(); srs.ImportFromEPSG(32632); ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1); band.SetNoDataValue(0); band.Fill(day)
    band.WriteArray(__import__('numpy').zeros((10, 10), dtype='uint16'))
    ds = None`;
    execFileSync(gdalPython(), ['-c', script, zdir]);
    const data = join(zdir, 'out');
    const source = [
      'source:',
      '  type: raster_file',
      `  path: ${join(zdir, '*.tif')}`,
      '  dataset: s2',
      '  variable: b04',
      '  time_pattern: "_(\\\\d{8}T\\\\d{6}Z)\\\\.tif$"',
      '  tile_size: 128',
    ].join('\n');
    const config = demoConfig(join(zdir, 'unused.ndjson'), data, (y) =>
      y
        .replace(/source:\n(  .*\n)+/, `${source}\n`)
        .replace('  rules:\n', '  rules:\n    - match: { kind: raster }\n      memory_type: SatelliteMemory\n')
        .replace(
          '      compression: { algorithm: zstd, level: low }\n',
          '      compression: { algorithm: zstd, level: low }\n      raster_backend: { type: zarr, store_path: "${EARTHMEM_DATA:-data/demo}/zarr", file_organization: "{dataset}/{year}", time_step: 1d, chunks: [1, 128, 128] }\n',
        ),
    );
    const first = await runPipeline(config);
    assert.equal(first.recordsRead, 18, '3 files of 3 × 2 tiles');
    assert.equal(first.deadLettered, 0);
    assert.equal(first.recordsWritten, 18);
    const rowsOf = async () => {
      const catalog = new SqliteCatalog(join(data, 'catalog.sqlite'));
      try {
        return (await catalog.list()).filter((r) => r.kind === 'raster');
      } finally {
        await catalog.close();
      }
    };
    const rows = await rowsOf();
    assert.equal(rows.length, 1, 'one store for the one (dataset, variable, grid)');
    const row = rows[0]!;
    assert.match(row.key, /^SatelliteMemory\/s2\/2026\/b04-[0-9a-f]{12}\.zarr$/);
    assert.equal(row.format, 'zarr');
    // Day 18 of the year's fixed 1-day steps is index 17: 18 steps, 1–14 and 17 all nodata.
    assert.equal(row.rows, 18);
    assert.equal(row.timeMinUs, Date.UTC(2026, 0, 15, 10, 30) * 1000);
    assert.equal(row.timeMaxUs, Date.UTC(2026, 0, 18, 10, 30) * 1000);
    const check = `
import json, sys, numpy as np, xarray as xr
ds = xr.open_zarr(sys.argv[1])
v = ds["b04"]
print(json.dumps({"dims": list(v.dims), "shape": list(v.shape),
  "time": [str(t) for t in ds.time.values.astype("datetime64[D]")[[14, 15, 16, 17]]],
  "means": [None if np.isnan(m) else float(m) for m in [float(np.nanmean(v.values[t])) if not np.isnan(v.values[t]).all() else float('nan') for t in (14, 15, 16, 17)]],
  "masked": int(np.isnan(v.values[14]).sum()), "x0": float(ds.x[0]), "y0": float(ds.y[0]),
  "geotransform": ds["spatial_ref"].attrs["GeoTransform"], "grid_mapping": v.encoding.get("grid_mapping", v.attrs.get("grid_mapping"))}))`;
    const seen = JSON.parse(execFileSync(referencePython(), ['-c', check, row.uri]).toString()) as Record<string, unknown>;
    assert.deepEqual(seen, {
      dims: ['time', 'y', 'x'],
      shape: [18, 200, 300],
      time: ['2026-01-15', '2026-01-16', '2026-01-17', '2026-01-18'],
      means: [15, 16, null, 18],
      masked: 100,
      x0: 600005,
      y0: 4999995,
      geotransform: '600000 10 0 5000000 0 -10',
      grid_mapping: 'spatial_ref',
    });
    // GDAL 3.6 (Debian's, the oldest reader we support) sees the COG's grid: geotransform, EPSG, nodata.
    const gdal = JSON.parse(execFileSync('/usr/bin/python3', [resolve('test/support/check_zarr_gdal.py'), row.uri, 'b04']).toString()) as { epsg: string; geotransform: number[]; nodata: number };
    assert.deepEqual([gdal.epsg, gdal.geotransform, gdal.nodata], ['32632', [600000, 10, 0, 5000000, 0, -10], 0]);
    // A replay of the same files appends the same cells: the store's bytes and its row stay as they were.
    const second = await runPipeline(config);
    assert.equal(second.recordsWritten, 18);
    const again = await rowsOf();
    assert.deepEqual(again.map((r) => [r.key, r.sha256, r.bytes, r.rows]), [[row.key, row.sha256, row.bytes, row.rows]]);
  });
});

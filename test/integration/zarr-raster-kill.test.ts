/**
 * Raster tiles appended to Zarr through the pipeline, under kill -9: a backfill replay of GeoTIFFs
 * killed at each crash point of an append (after its intent, mid-chunks, after the consolidated
 * metadata, after the append, after the catalog row), then run again, leaves a store whose every
 * key is byte-identical to a run without the crash, that xarray opens, with the same catalog row.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { MemoryCodex } from '../../src/index.js';
import { gdalPython } from '../support/cog.js';
import { tempDir } from '../support/fixtures.js';
import { runToCompletion, storeFiles } from '../support/zarr.js';
import { checkZarr } from '../support/python.js';

const base = tempDir('zarr-raster-kill');
const scenes = join(base, 'scenes');

function pipeline(dir: string): string {
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(
    file,
    `source:
  type: raster_file
  path: ${join(scenes, '*.tif')}
  dataset: s2
  variable: b04
  time_pattern: "_(\\\\d{8}T\\\\d{6}Z)\\\\.tif$"
  tile_size: 128
classify:
  rules:
    - { match: { kind: raster }, memory_type: SatelliteMemory }
  default: dead_letter
storage:
  tier_configs:
    warm:
      primary_backend: { type: zarr, store_path: ${join(dir, 'warm')}, file_organization: "{dataset}/{year}", time_step: 1d, chunks: [1, 128, 128] }
routing: { default: warm }
catalog: { type: sqlite, path: ${join(dir, 'catalog.sqlite')} }
dead_letter: { type: local_file, path: ${join(dir, 'dead.ndjson')} }
`,
  );
  return file;
}

async function catalogRows(file: string) {
  return (await MemoryCodex.fromFile(file).listObjects()).map((r) => `${r.key} ${r.kind} ${r.format} ${r.rows} ${r.sha256} ${r.bytes} ${r.timeMinUs} ${r.timeMaxUs} ${JSON.stringify(r.provenance)}`).sort();
}

describe('raster tiles into Zarr, killed at every crash point of an append', () => {
  const reference = join(base, 'reference');
  let expected: Record<string, string>;
  let expectedRows: string[];
  before(() => {
    // Three scenes of one grid on days 15, 16 and 18, each with its own values and a nodata corner.
    execFileSync(gdalPython(), [
      '-c',
      `
import sys, os, numpy as np
from osgeo import gdal, osr
gdal.UseExceptions()
os.makedirs(sys.argv[1], exist_ok=True)
for day in (15, 16, 18):
    ds = gdal.GetDriverByName('GTiff').Create(f'{sys.argv[1]}/s2_202601{day}T103000Z.tif', 300, 200, 1, gdal.GDT_Float32)
    ds.SetGeoTransform([600000, 10, 0, 5000000, 0, -10])
    srs = osr.SpatialReference(); srs.ImportFromEPSG(32632); ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1); band.SetNoDataValue(-9999)
    a = (np.arange(200 * 300, dtype='float32').reshape(200, 300) + day * 1e5).astype('float32'); a[:7, :7] = -9999
    band.WriteArray(a)
    ds = None`,
      scenes,
    ]);
    mkdirSync(reference, { recursive: true });
    const ok = runToCompletion(pipeline(reference));
    assert.equal(ok.status, 0, ok.stderr);
    expected = storeFiles(reference);
    assert.ok(Object.keys(expected).length >= 18, Object.keys(expected).join(' '));
    assert.ok(!Object.keys(expected).some((k) => k.includes('earthmem-append')), 'no intent left after a clean run');
  });

  it('a run without a crash: xarray reads every pixel of every scene at its time step', async () => {
    expectedRows = await catalogRows(join(reference, 'pipeline.yaml'));
    assert.equal(expectedRows.length, 1, expectedRows.join('\n'));
    const [row] = await MemoryCodex.fromFile(join(reference, 'pipeline.yaml')).listObjects();
    const got = checkZarr(row!.uri);
    assert.deepEqual(got.dims, { time: 18, y: 200, x: 300 });
    assert.deepEqual(got.time.slice(14), ['2026-01-15T00:00:00.000000', '2026-01-16T00:00:00.000000', '2026-01-17T00:00:00.000000', '2026-01-18T00:00:00.000000']);
    assert.equal(got.zarr_arrays.b04!.dtype, 'float32');
    // Each scene's pixels (day·1e5 + row·300 + column), its 7 × 7 nodata corner masked; days 1–14 and 17 all fill.
    const sumOf = (day: number) => { let n = 0; for (let i = 0; i < 60_000; i++) if (!(Math.floor(i / 300) < 7 && i % 300 < 7)) n += Math.fround(day * 1e5 + i); return n; };
    const perStep = got.values.b04!.per_step!;
    assert.deepEqual(perStep.map(([n]) => n), [...Array(14).fill(0), 59_951, 59_951, 0, 59_951]);
    for (const [t, day] of [[14, 15], [15, 16], [17, 18]] as const) assert.ok(Math.abs(perStep[t]![1] - sumOf(day)) < 1, `day ${day}: ${perStep[t]![1]} ≠ ${sumOf(day)}`);
  });

  for (const point of ['zarr.intent@2', 'zarr.chunk@3', 'zarr.chunk@10', 'zarr.committed@2', 'raster.zarr.appended@3', 'zarr.catalogued@1']) {
    it(`killed at ${point}, then run again: same bytes, same catalog row`, async () => {
      const dir = tempDir(`zarr-raster-kill-${point.replace(/[^a-z0-9]/gi, '-')}`);
      const file = pipeline(dir);
      const killed = runToCompletion(file, point);
      assert.equal(killed.signal, 'SIGKILL', `${killed.status} ${killed.stderr}`);
      const again = runToCompletion(file);
      assert.equal(again.status, 0, again.stderr);
      assert.deepEqual(storeFiles(dir), expected);
      assert.deepEqual(await catalogRows(file), expectedRows);
    });
  }
});

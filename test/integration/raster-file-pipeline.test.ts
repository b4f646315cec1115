/**
 * A pipeline whose source is `raster_file` (a backfill replay of GeoTIFFs): its tiles are decoded
 * and assembled into one COG per file, on the hot tier's `type: cog` raster_backend; every tile
 * read has exactly one outcome, and tiles that fail decoding keep their own reason.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runPipeline } from '../../src/pipeline/run.js';
import { gdalCheckCogs, gdalProblems, gdalPython } from '../support/cog.js';
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
});

/**
 * A pipeline whose source is `raster_file`: its envelopes are decoded in the parse stage (the
 * asynchronous admit path) and every tile read has exactly one outcome. Routing raster records
 * to a COG sink is the raster COG work (wt-raster-cog); until it is merged, decoded tiles are
 * dead-lettered as `unclassified`, and tiles that fail decoding keep their own reason.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runPipeline } from '../../src/pipeline/run.js';
import { gdalPython } from '../support/cog.js';
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
    const config = demoConfig(join(dir, 'unused.ndjson'), data, (y) => y.replace(/source:\n(  .*\n)+/, `${source}\n`));
    const summary = await runPipeline(config);
    // a: 3 × 2 tiles, of which 2 are full (128 × 128); b: 1 tile.
    assert.equal(summary.recordsRead, 7);
    assert.equal(summary.deadLettered, 7);
    assert.deepEqual(summary.deadLetterReasons, { too_large: 2, unclassified: 5 });
    const letters = readFileSync(join(data, 'dead-letter.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(letters.length, 7);
    const big = letters.find((l) => l.reason === 'too_large')!;
    assert.match(String(big.message), /over max_record_bytes 32767/);
    assert.match(JSON.stringify(big), /a_20260115T103000Z\.tif/);
  });
});

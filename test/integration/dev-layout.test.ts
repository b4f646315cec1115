/**
 * The spec's development layout (pipelines/dev.yaml): a file replay into SQLite + SpatiaLite
 * (hot) and local Zarr stores (warm, cold: CF timeSeries), with a SQLite catalog. No server.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { loadConfigFile } from '../../src/config/load.js';
import { writeSample } from '../../src/records/sample.js';
import { openStorage, readStored } from '../../src/pipeline/read.js';
import { pipelineSchema } from '../../src/pipeline/schema.js';
import { tempDir } from '../support/fixtures.js';
import { checkZarr } from '../support/python.js';

describe('development layout (pipelines/dev.yaml)', () => {
  it('replays a file into SpatiaLite and Zarr tiers; everything reads back once (SpatiaLite rows, xarray values)', { timeout: 300_000 }, async () => {
    const dir = tempDir('dev');
    const input = join(dir, 'in.ndjson');
    await writeSample(input, { points: 12_000, features: 150, badCopies: 1, seed: 3 });
    const env = { ...process.env, EARTHMEM_DATA: join(dir, 'data'), EARTHMEM_INPUT: input };
    const out = execFileSync(process.execPath, ['bin/earthmem.js', 'run', 'pipelines/dev.yaml'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(out, /written:\s+12,150/);

    const storage = await openStorage(loadConfigFile('pipelines/dev.yaml', pipelineSchema, env).config, env);
    try {
      const rows = await storage.catalog.list();
      assert.deepEqual([...new Set(rows.map((r) => `${r.tier} ${r.backend}`))].sort(), ['cold local_file', 'hot sqlite', 'warm local_file']);
      const ids: string[] = [];
      let zarrValues = 0;
      for (const row of rows) {
        if (row.format === 'zarr') {
          // Each store opens in xarray with its stations and decoded times; its values are the row's count.
          const got = checkZarr(row.uri);
          assert.equal(got.attrs.featureType, 'timeSeries');
          assert.equal(got.time_dtype, 'datetime64[ns]');
          assert.ok(got.station_name.length > 0 && got.station_name.every((s) => /^ST\d{4}$/.test(s)), got.station_name.join(','));
          const values = Object.values(got.values).reduce((n, v) => n + v.data.flat().filter((x) => x !== null).length, 0);
          assert.equal(values, row.rows, row.key);
          zarrValues += values;
          continue;
        }
        const content = await readStored(storage, row);
        assert.equal(content.kind, 'records');
        if (content.kind === 'records') ids.push(...content.records.map((r) => r.id!));
      }
      assert.equal(new Set(ids).size, ids.length);
      // The sample's stations report each variable less than once an hour: no two values share a cell.
      assert.equal(ids.length + zarrValues, 12_150);
    } finally {
      await storage.close();
    }

    // The hot rows are SpatiaLite geometries with a spatial index: a bbox query through it.
    const db = new Database(join(dir, 'data', 'hot_memory.db'), { readonly: true });
    try {
      db.loadExtension(process.env.SPATIALITE_MODULE ?? 'mod_spatialite');
      const tables = db.prepare("SELECT f_table_name AS t FROM geometry_columns WHERE spatial_index_enabled = 1").all() as { t: string }[];
      assert.ok(tables.length >= 1, 'a spatially indexed geometry column');
    } finally {
      db.close();
    }
  });
});

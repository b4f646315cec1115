/**
 * The spec's development layout (pipelines/dev.yaml): a file replay into SQLite + SpatiaLite
 * (hot) and local GeoParquet folders (warm, cold), with a SQLite catalog. No server.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { loadConfigFile } from '../../src/config/load.js';
import { writeSample } from '../../src/records/sample.js';
import { openStorage, readStored } from '../../src/pipeline/read.js';
import { pipelineSchema } from '../../src/pipeline/schema.js';
import { tempDir } from '../support/fixtures.js';
import { checkParquet } from '../support/python.js';

describe('development layout (pipelines/dev.yaml)', () => {
  it('replays a file into SpatiaLite and GeoParquet tiers; everything reads back once', { timeout: 300_000 }, async () => {
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
      const files: string[] = [];
      for (const row of rows) {
        const content = await readStored(storage, row);
        if (content.kind === 'records') ids.push(...content.records.map((r) => r.id!));
        else {
          const file = join(dir, `${files.length}.parquet`);
          writeFileSync(file, content.bytes);
          files.push(file);
        }
      }
      const check = checkParquet(files);
      for (const f of check.files) assert.deepEqual(f.problems, [], f.path);
      ids.push(...check.files.flatMap((f) => f.ids as string[]));
      assert.equal(ids.length, 12_150);
      assert.equal(new Set(ids).size, 12_150);
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

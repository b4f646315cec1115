/**
 * Database tiers in a running pipeline: points to InfluxDB (line protocol), features and
 * precipitation to MongoDB (FerretDB) documents, read back through the tiers; a second run of the
 * same input replaces rows under the same keys instead of adding them.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { writeSample } from '../../src/records/sample.js';
import { openStorage, readStored } from '../../src/pipeline/read.js';
import { runPipeline } from '../../src/pipeline/run.js';
import { pipelineSchema } from '../../src/pipeline/schema.js';
import { tempDir } from '../support/fixtures.js';

const pipeline = `
source: { type: file, path: "\${INPUT}" }
classify:
  rules:
    - { match: { variable: temperature }, memory_type: TemperatureMemory }
    - { match: { variable: precipitation }, memory_type: PrecipitationMemory }
    - { match: { kind: vector }, memory_type: HazardMemory }
  default: dead_letter
routing:
  default: hot
  memory_types: { PrecipitationMemory: warm, HazardMemory: warm }
batch: { max_rows: 3000 }
storage:
  tier_configs:
    hot:
      primary_backend:
        type: influxdb
        url: \${INFLUXDB_URL}
        username: \${INFLUXDB_USERNAME}
        password: \${INFLUXDB_PASSWORD}
        bucket: \${INFLUXDB_BUCKET}
        measurement_prefix: "\${RUN}_"
    warm:
      primary_backend:
        type: mongodb
        connection_string: \${MONGODB_URL}
        database: \${RUN}
        write_concern: { w: majority }
        read_concern: majority
catalog: { type: sqlite, path: "\${DATA}/catalog.sqlite" }
dead_letter: { type: local_file, path: "\${DATA}/dead-letter.ndjson" }
`;

describe('database tiers in a pipeline (InfluxDB points, MongoDB documents)', () => {
  it('writes, reads back every record once, and a replay replaces instead of adding', { timeout: 300_000 }, async () => {
    for (const name of ['INFLUXDB_URL', 'MONGODB_URL']) assert.ok(process.env[name], `${name} is not set: run through npm test`);
    const dir = tempDir('records');
    const input = join(dir, 'in.ndjson');
    // Temperature and precipitation only (wind/humidity go to the dead letter as unclassified).
    await writeSample(input, { points: 4_000, features: 60, badCopies: 0, seed: 9 });
    const env = { ...process.env, INPUT: input, DATA: dir, RUN: `em_${Date.now().toString(36)}_${randomBytes(2).toString('hex')}` };
    const config = parseConfigText(pipeline, 'records.yaml', pipelineSchema, env);
    const first = await runPipeline(config);
    const second = await runPipeline(config);
    assert.equal(second.recordsWritten, first.recordsWritten);

    const storage = await openStorage(config, env);
    try {
      const rows = await storage.catalog.list();
      assert.deepEqual([...new Set(rows.map((r) => `${r.tier} ${r.backend} ${r.format}`))].sort(), ['hot influxdb influxdb-rows', 'warm mongodb mongodb-rows']);
      const ids: string[] = [];
      for (const row of rows) {
        const content = await readStored(storage, row);
        assert.equal(content.kind, 'records');
        if (content.kind === 'records') {
          assert.equal(content.records.length, row.rows, row.key);
          ids.push(...content.records.map((r) => r.id!));
        }
      }
      assert.equal(ids.length, first.recordsWritten);
      assert.equal(new Set(ids).size, ids.length, 'no record twice after the replay');
      assert.ok(ids.some((id) => id.startsWith('fire-')), 'features in MongoDB');
      // Clean up the run's MongoDB database and InfluxDB measurements through the stores.
      for (const row of rows) {
        const tier = storage.tiers.get(row.tier as 'hot')!;
        if (tier.primary.kind === 'records') await tier.primary.store.deleteRecords(row.key);
      }
    } finally {
      await storage.close();
    }
  });
});

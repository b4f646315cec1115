/**
 * Retries at start and in a MigrationJob, against the real PostgreSQL catalog behind a TCP relay
 * of the test's own (test/support/relay.ts; the shared server keeps running): a catalog
 * unreachable when the run starts is waited for under `catalog.retry` (one run-log line), not a
 * failure at once; a MigrationJob whose catalog goes away mid-job waits for it too. A
 * non-retriable failure at start (refused credentials) still fails at once.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { migrationJobSchema } from '../../src/aging/job.js';
import { executeMigration } from '../../src/aging/migration.js';
import { parseConfigText } from '../../src/config/load.js';
import { openStorage } from '../../src/pipeline/read.js';
import { pipelineSchema } from '../../src/pipeline/schema.js';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';
import { databaseUrl, killWorkers, startWorker } from '../support/kafka.js';
import { Relay } from '../support/relay.js';

const RETRY = '{ initial_backoff: 200ms, max_backoff: 1s, max_elapsed: 2m }';

/** The embedded default with a PostgreSQL catalog at `url` (interpolated from CATALOG_URL). */
function pipelineWithPostgres(dir: string, schema: string): string {
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(
    file,
    readFileSync('pipelines/demo.yaml', 'utf8').replace(
      /catalog:\n  type: sqlite\n  path: .*\n/,
      `catalog:\n  type: postgresql\n  connection_string: \${CATALOG_URL}\n  schema: ${schema}\n  retry: ${RETRY}\n`,
    ),
  );
  return file;
}

function through(relay: Relay): string {
  const url = new URL(databaseUrl());
  url.port = String(relay.port);
  return url.toString();
}

const target = () => ({ host: new URL(databaseUrl()).hostname, port: Number(new URL(databaseUrl()).port) });

describe('retries at start and in a MigrationJob (PostgreSQL catalog behind a relay)', () => {
  const relays: Relay[] = [];
  afterEach(async () => {
    killWorkers();
    for (const r of relays.splice(0)) await r.cut();
  });

  it('a catalog unreachable at start is retried under catalog.retry, told once, and the run completes', { timeout: 300_000 }, async () => {
    const dir = tempDir('startup-retry');
    const input = join(dir, 'in.ndjson');
    const sample = await writeSample(input, { points: 5_000, features: 10, badCopies: 1, seed: 9 });
    const relay = await Relay.start(target(), false);
    relays.push(relay);
    const pipeline = pipelineWithPostgres(dir, `t_startup_${Date.now()}`);
    const w = startWorker(pipeline, { EARTHMEM_DEMO_INPUT: input, EARTHMEM_DATA: join(dir, 'data'), CATALOG_URL: through(relay) });
    await new Promise((r) => setTimeout(r, 5_000));
    assert.equal(w.child.exitCode, null, `the run waits for the catalog instead of failing: ${w.output()}`);
    await relay.open();
    assert.equal(await w.exited, 0, w.output());
    const out = w.output();
    assert.match(out, /catalog postgresql: .*ECONNREFUSED.*: retrying \(for up to 2m00s\)/);
    assert.equal(out.match(/catalog postgresql: .*: retrying \(for up to/g)?.length, 1, `one line for the outage, not one per attempt:\n${out}`);
    assert.match(out, /catalog postgresql: recovered after/);
    assert.match(out, new RegExp(`written:\\s+${sample.valid.toLocaleString('en-US')}`));
  });

  it('a MigrationJob whose catalog goes away for 3 s waits for it and completes', { timeout: 300_000 }, async () => {
    const dir = tempDir('migration-retry');
    const input = join(dir, 'in.ndjson');
    await writeSample(input, { points: 5_000, features: 10, badCopies: 0, seed: 9 });
    const relay = await Relay.start(target());
    relays.push(relay);
    const pipeline = pipelineWithPostgres(dir, `t_migretry_${Date.now()}`);
    const env = { ...process.env, EARTHMEM_DEMO_INPUT: input, EARTHMEM_DATA: join(dir, 'data'), CATALOG_URL: through(relay) };
    const w = startWorker(pipeline, env);
    assert.equal(await w.exited, 0, w.output());

    const storage = await openStorage(parseConfigText(readFileSync(pipeline, 'utf8'), pipeline, pipelineSchema, env), env);
    try {
      const before = (await storage.catalog.list({ tier: 'hot' })).length;
      assert.ok(before > 0);
      await relay.cut();
      const lines: string[] = [];
      const job = executeMigration(storage, migrationJobSchema.parse({ id: 'hot-to-cold', source_tier: 'hot', destination_tier: 'cold' }), { log: (l) => lines.push(l) });
      await new Promise((r) => setTimeout(r, 3_000));
      await relay.open();
      const status = await job;
      assert.equal(status.state, 'completed', JSON.stringify(status));
      assert.ok(lines.some((l) => /^catalog postgresql: .*: retrying \(for up to 2m00s\)/.test(l)), lines.join('\n'));
      assert.ok(lines.some((l) => /^catalog postgresql: recovered after/.test(l)), lines.join('\n'));
      assert.equal((await storage.catalog.list({ tier: 'hot' })).length, 0, 'every hot object moved');
      assert.equal((await storage.catalog.list({ tier: 'cold' })).filter((r) => r.memoryType === 'TemperatureMemory').length, before);
    } finally {
      await storage.close();
    }
  });

  it('refused credentials at start fail at once', { timeout: 120_000 }, async () => {
    const dir = tempDir('startup-auth');
    const input = join(dir, 'in.ndjson');
    await writeSample(input, { points: 100, features: 0, badCopies: 0, seed: 9 });
    const bad = new URL(databaseUrl());
    bad.password = 'not-the-password';
    const pipeline = pipelineWithPostgres(dir, 't_startup_auth');
    const started = Date.now();
    const w = startWorker(pipeline, { EARTHMEM_DEMO_INPUT: input, EARTHMEM_DATA: join(dir, 'data'), CATALOG_URL: bad.toString() });
    assert.equal(await w.exited, 1, w.output());
    assert.ok(Date.now() - started < 60_000, 'no waiting on a permanent error');
    assert.doesNotMatch(w.output(), /retrying \(for up to/);
  });
});

/**
 * Redis (the hot tier's index_backend and its read cache) killed for 40 s mid-stream, on a
 * redis-server of the test's own (AOF with fsync always, so what it acknowledged survives the
 * kill): ingest goes on (the catalog is the truth, index entries wait in the tier's backlog),
 * `earthmem get` reads around the cache meanwhile, and once Redis is back the index catches up:
 * it holds every catalogued object of the tier.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { freePort } from '../support/relay.js';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { RedisIndex } from '../../connectors/redis/index.js';
import { redisBackendSchema } from '../../connectors/redis/config.js';
import { tempDir } from '../support/fixtures.js';
import { catalogRows, killWorkers, waitFor } from '../support/kafka.js';
import type { Scenario } from '../support/kafka-scenario.js';
import { describeFigures, rideOutOutage } from '../support/outage.js';

const PASSWORD = 'own-redis-test-password';

describe('fault: Redis (index and cache) down mid-stream', () => {
  let redis: ChildProcess | undefined;
  afterEach(killWorkers);
  after(() => redis?.kill('SIGKILL'));

  it('ingest continues, reads go around the cache, the index catches up: 0 lost, 0 duplicated', { timeout: 600_000 }, async (t) => {
    const dir = tempDir('own-redis');
    const port = await freePort();
    const url = `redis://:${PASSWORD}@127.0.0.1:${port}/0`;
    const start = async () => {
      redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--requirepass', PASSWORD], { stdio: 'ignore' });
      await waitFor('own redis-server to answer', async () => spawnSync('redis-cli', ['-p', String(port), '-a', PASSWORD, '--no-auth-warning', 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG', 30_000);
    };
    await start();
    let scenario: Scenario | undefined;
    let readAround: string | undefined;
    let rowsAtKill = 0;
    let rowsAtRestart = 0;
    const figures = await rideOutOutage({
      name: 'redis-down',
      service: {
        label: `own redis-server 127.0.0.1:${port}`,
        down: async () => {
          const gone = new Promise((r) => redis!.once('exit', r));
          redis!.kill('SIGKILL');
          await gone;
          rowsAtKill = (await catalogRows(scenario!.env.EARTHMEM_CATALOG_SCHEMA)).length;
          readAround = await getDuringOutage(scenario!);
        },
        up: async () => {
          rowsAtRestart = (await catalogRows(scenario!.env.EARTHMEM_CATALOG_SCHEMA)).length;
          await start();
        },
      },
      stalls: false,
      downMs: 40_000,
      target: /^redis index of tier hot/,
      edit: (pipeline, s) => {
        scenario = s;
        pipeline.storage.tier_configs.hot.index_backend = { type: 'redis', url, retry: { initial_backoff: '200ms', max_backoff: '2s' } };
        pipeline.storage.tier_configs.hot.cache_settings = { type: 'redis', url, max_size: '64MiB' };
      },
    });
    t.diagnostic(describeFigures(figures));
    t.diagnostic(`while Redis was down: ${readAround}; catalogued objects ${rowsAtKill} → ${rowsAtRestart}`);
    assert.ok(rowsAtRestart > rowsAtKill, `ingest went on while Redis was down: ${rowsAtKill} → ${rowsAtRestart} catalogued objects`);

    // The index caught up: every catalogued object of the tier is in it.
    const rows = (await catalogRows(figures.scenario.env.EARTHMEM_CATALOG_SCHEMA)).filter((r) => r.tier === 'hot');
    const index = new RedisIndex(redisBackendSchema.parse({ type: 'redis', url }));
    try {
      const missing: string[] = [];
      for (const row of rows) if ((await index.get(row.key)) === undefined) missing.push(row.key);
      assert.deepEqual(missing, [], `${missing.length} of ${rows.length} hot objects missing from the index`);
      t.diagnostic(`index holds all ${rows.length} hot objects`);
    } finally {
      await index.close();
    }
  });
});

/** `earthmem get` of a hot object while Redis is down: the bytes of the catalog, from the backend. */
async function getDuringOutage(s: Scenario): Promise<string> {
  const row = (await catalogRows(s.env.EARTHMEM_CATALOG_SCHEMA)).find((r) => r.tier === 'hot');
  assert.ok(row, 'a hot object to read');
  const out = join(s.dir, 'got.parquet');
  const started = Date.now();
  const r = spawnSync(process.execPath, ['bin/earthmem.js', 'get', join(s.dir, 'pipeline.yaml'), row.key, '--tier', 'hot', '--out', out], { env: { ...process.env, ...s.env }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `earthmem get while Redis is down: ${r.stderr}`);
  assert.equal(createHash('sha256').update(readFileSync(out)).digest('hex'), row.sha256, 'the bytes of the catalog');
  return `earthmem get ${row.key} read around the cache in ${Date.now() - started} ms`;
}


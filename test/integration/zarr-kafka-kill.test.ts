/**
 * Zarr appends fed by Kafka, a worker killed (-9) mid-append, and the redelivery from the
 * committed offsets by a restarted worker: the stores end byte-identical to those of a worker
 * that was never killed (batches flush by age here, so the two runs batch differently), and
 * xarray reads every value once.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';
import { brokers, createTopic, killWorkers, lag, produceWithKcat, startWorker, waitFor } from '../support/kafka.js';
import { joined, stop } from '../support/kafka-scenario.js';
import { checkZarr } from '../support/python.js';
import { MemoryCodex } from '../../src/index.js';

const id = `zk${Date.now().toString(36)}`;
const topic = `obs-${id}`;
const base = tempDir('zarr-kafka');
const POINTS = 3_000;

function pipeline(name: string): { file: string; dir: string; group: string } {
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  const group = `g-${id}-${name}`;
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(file, `source: { type: kafka, brokers: "${brokers()}", topics: [${topic}], group_id: ${group}, start: earliest, session_timeout: 10s }
classify: { rules: [{ match: { kind: point }, memory_type: StationMemory }], default: dead_letter }
batch: { max_rows: 250, max_age: 300ms, encode_workers: 0 }
storage: { tier_configs: { warm: { primary_backend: { type: zarr, store_path: ${join(dir, 'warm')}, timeseries_chunks: [4, 32] } } } }
routing: { default: warm }
catalog: { type: sqlite, path: ${join(dir, 'catalog.sqlite')} }
dead_letter: { type: local_file, path: ${join(dir, 'dead.ndjson')} }
`);
  return { file, dir, group };
}

function storeFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const root = join(dir, 'warm');
  for (const d of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (d.isFile() && !d.name.endsWith('.tmp')) out[join(d.parentPath, d.name).slice(root.length)] = createHash('sha256').update(readFileSync(join(d.parentPath, d.name))).digest('hex');
  }
  return out;
}

async function runToEnd(p: ReturnType<typeof pipeline>, from = topic): Promise<void> {
  const worker = startWorker(p.file, {});
  await joined(worker);
  await waitFor('every offset committed', async () => (await lag(from, p.group)) === 0, 120_000);
  await stop(worker);
}

function valuesIn(dir: string, stores = ['era5-land', 'noaa-isd']): number {
  let values = 0;
  for (const store of stores) {
    const got = checkZarr(join(dir, 'warm', 'StationMemory', '2024', '03', `${store}.zarr`));
    values += Object.values(got.values).reduce((n, v) => n + v.data.flat().filter((x) => x !== null).length, 0);
  }
  return values;
}

describe('Zarr appends from Kafka, a worker killed mid-append', () => {
  let expected: Record<string, string>;
  let expectedValues: number;
  before(async () => {
    const input = join(base, 'in.ndjson');
    await writeSample(input, { points: POINTS, features: 0, stations: 10, days: 3, badCopies: 0, seed: 21 });
    // One partition: a store's records come from one source partition (README: station order).
    await createTopic(topic, 1);
    produceWithKcat(topic, input);
    const reference = pipeline('reference');
    await runToEnd(reference);
    expected = storeFiles(reference.dir);
    assert.ok(Object.keys(expected).length > 20);
    // 3,000 points of 10 stations in 3 days: a few share a station, variable and hour (the later wins).
    expectedValues = valuesIn(reference.dir);
    assert.ok(expectedValues > 2_500 && expectedValues <= POINTS, String(expectedValues));
  });
  after(() => killWorkers());

  for (const point of ['zarr.chunk@12', 'zarr.metadata@5', 'zarr.catalogued@7']) {
    it(`killed at ${point}, redelivered to a new worker: the same bytes`, async () => {
      const p = pipeline(point.replace(/[^a-z0-9]/gi, '-'));
      const killed = startWorker(p.file, { EARTHMEM_FAILPOINT: point });
      const code = await Promise.race([killed.exited, new Promise<string>((r) => setTimeout(() => r('still running after 120 s'), 120_000).unref())]);
      assert.equal(code, null, `expected a SIGKILL, got ${String(code)}: ${killed.output().slice(-2000)}`);
      assert.equal(killed.child.signalCode, 'SIGKILL');
      assert.ok((await lag(topic, p.group)) > 0, 'killed before the end');
      await runToEnd(p);
      assert.deepEqual(storeFiles(p.dir), expected);
      assert.equal(valuesIn(p.dir), expectedValues);
    });
  }
});

describe('Zarr appends from two workers of one group into the same stores', () => {
  after(() => killWorkers());

  it('every value once, as by one worker alone; each catalog row matches its store', async () => {
    // Many small appends from both workers into the same two stores (the lock itself: test/unit/pipeline/store-lock.test.ts).
    const input = join(base, 'shared.ndjson');
    await writeSample(input, { points: 12_000, features: 0, stations: 8, days: 2, badCopies: 0, seed: 22 });
    const shared = `${topic}-shared`;
    await createTopic(shared, 4);
    produceWithKcat(shared, input);
    const one = pipeline('one-worker');
    const two = pipeline('two-workers');
    for (const p of [one, two]) writeFileSync(p.file, readFileSync(p.file, 'utf8').replace(`topics: [${topic}]`, `topics: [${shared}]`).replace('max_rows: 250', 'max_rows: 25'));
    await runToEnd(one, shared);
    const a = startWorker(two.file, {});
    const b = startWorker(two.file, {});
    await joined(a, b);
    await waitFor('every offset committed', async () => (await lag(shared, two.group)) === 0, 240_000);
    await stop(a, b);
    const values = (dir: string) => valuesIn(dir, ['era5-land', 'noaa-isd']);
    assert.equal(values(two.dir), values(one.dir), 'the same cells set as by one worker alone');
    const rows = await MemoryCodex.fromFile(two.file).listObjects();
    for (const row of rows) {
      const got = checkZarr(row.uri);
      assert.equal(Object.values(got.values).reduce((n, v) => n + v.data.flat().filter((x) => x !== null).length, 0), row.rows, row.key);
    }
    assert.ok(!Object.keys(storeFiles(two.dir)).some((k) => k.includes('earthmem-append')), 'no unfinished append left');
  });
});

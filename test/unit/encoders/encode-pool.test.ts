import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Batch } from '../../../src/core/batch.js';
import { EncodeError } from '../../../src/core/errors.js';
import type { ObservationRecord, PointRecord } from '../../../src/core/record.js';
import { packBatch } from '../../../src/encoders/arrow/batch-table.js';
import { EncodePool } from '../../../src/encoders/encode-pool.js';
import { GeoParquetEncoder, type ParquetOptions } from '../../../src/encoders/parquet/geoparquet.js';
import { random, randomBatch } from '../../support/random-batches.js';

const zstd: ParquetOptions = { compression: { algorithm: 'zstd', level: 'low' }, rowGroupSize: 1000 };

/** The storage order, defined on records: points by station, variable, time; features by time; ties by source position. */
function expectedOrder(records: readonly ObservationRecord[]): ObservationRecord[] {
  const text = (a: string | null, b: string | null) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1);
  return [...records].sort((a, b) => {
    const points = a.kind === 'point' && b.kind === 'point' ? text(a.station, b.station) || text(a.variable, b.variable) : 0;
    return points || a.timeUs - b.timeUs || text(a.position.source, b.position.source) || a.position.partition - b.position.partition || a.position.offset - b.position.offset;
  });
}

/** What an object keeps of a record (not its source position or payload size). */
function stored(record: ObservationRecord): unknown {
  const { position: _position, size: _size, key: _key, ...rest } = record;
  return { ...rest, ...(record.kind === 'point' ? {} : { bbox: record.bbox.map(String) }) };
}

function pointBatch(n: number, edit: (r: PointRecord, i: number) => void = () => undefined): Batch {
  const records = Array.from({ length: n }, (_, i): PointRecord => {
    const r: PointRecord = {
      kind: 'point', position: { source: 'p.ndjson', partition: 0, offset: i + 1 }, size: 100, id: `obs-${i}`, dataset: 'd', variable: 'temperature',
      timeUs: 1_709_251_200_000_000 + i, lon: 1, lat: 2, value: i, unit: 'K', quality: null, station: `ST${i % 7}`, elevation: null, attrs: null,
    };
    edit(r, i);
    return r;
  });
  return { memoryType: 'M', tier: 'hot', dataset: 'd', kind: 'point', partitionPath: 'p', records, bytes: n * 100, flushReason: 'rows' };
}

describe('encode pool', () => {
  const inProcess = new GeoParquetEncoder(zstd, 0);
  const pooled = new GeoParquetEncoder(zstd, 2);
  after(() => pooled.close());

  it('random batches encode to the same bytes in the pool and in process, rows in storage order', async () => {
    const snappy = new GeoParquetEncoder({ compression: { algorithm: 'snappy', level: 'low' }, rowGroupSize: 500 }, 2);
    try {
      for (let seed = 1; seed <= 24; seed++) {
        const kind = seed % 2 === 0 ? 'vector' : 'point';
        const size = 1 + Math.floor(random(seed * 31)() * 2500);
        const batch = randomBatch(seed, kind, size);
        // Encoded concurrently in the pool (two workers) and once in process.
        const [a, b, c, d] = await Promise.all([pooled.encode(batch), pooled.encode(batch), inProcess.encode(batch), snappy.encode(batch)]);
        const what = `seed ${seed}, ${size} ${kind} records`;
        assert.ok(Buffer.from(a.bytes).equals(c.bytes), `${what}: pooled and in-process bytes differ`);
        assert.ok(Buffer.from(b.bytes).equals(c.bytes), `${what}: two pooled encodes differ`);
        assert.deepEqual({ rows: a.rows, schema: a.schema }, { rows: c.rows, schema: c.schema });
        assert.equal(a.rows, size);
        // The bytes hold the records in storage order (snappy: pages compressed by parquet-wasm itself).
        for (const bytes of [a.bytes, d.bytes]) {
          const decoded = inProcess.decode(bytes, { source: 'x', partition: 0 }).records;
          assert.deepEqual(decoded.map(stored), expectedOrder(batch.records).map(stored), what);
        }
      }
    } finally {
      await snappy.close();
    }
  });

  it('gives the same bytes whatever order the records come in', async () => {
    const batch = randomBatch(99, 'point', 1500);
    const reversed = { ...batch, records: [...batch.records].reverse() };
    const [a, b] = await Promise.all([pooled.encode(batch), pooled.encode(reversed)]);
    assert.ok(Buffer.from(a.bytes).equals(b.bytes));
  });

  it('an encode error in the worker comes back as a non-retriable EncodeError with its message, as in process', async () => {
    // Times are whole microseconds; 1.5 cannot become an int64.
    const batch = pointBatch(10, (r, i) => i === 3 && (r.timeUs = 1.5));
    const failures = await Promise.all([pooled.encode(batch), inProcess.encode(batch)].map((p) => p.then(() => assert.fail('encoded'), (e: unknown) => e)));
    for (const error of failures) {
      assert.ok(error instanceof EncodeError);
      assert.equal(error.retriable, false);
      assert.equal(error.context.dataset, 'd');
      assert.match(error.describe(), /GeoParquet encoding failed \[stage=encode memory_type=M dataset=d\]: time 1.5 µs is not an integer in ±2\^53/);
    }
    assert.equal((failures[0] as EncodeError).describe(), (failures[1] as EncodeError).describe());
    // The worker lives on.
    assert.equal((await pooled.encode(pointBatch(5))).rows, 5);
  });

  it('a worker that dies fails its job with a retriable EncodeError and is replaced', async () => {
    // A 24 MB heap: the batch's 40 MB of attribute text runs the worker out of memory.
    const pool = new EncodePool(1, { maxQueued: 8, jobTimeoutMs: 60_000, resourceLimits: { maxOldGenerationSizeMb: 24 } });
    try {
      const text = 'x'.repeat(100_000);
      const error = await pool.encode(packBatch(pointBatch(400, (r) => (r.attrs = text))), zstd).then(() => assert.fail('encoded'), (e: unknown) => e);
      assert.ok(error instanceof EncodeError, String(error));
      assert.equal(error.retriable, true);
      assert.match(error.message, /encode worker \d+ (failed|exited)/);
      const ok = await pool.encode(packBatch(pointBatch(50)), zstd);
      assert.equal(ok.rows, 50);
      assert.equal(pool.started, 1);
    } finally {
      await pool.close();
    }
  });

  it('a worker over the job timeout is terminated and its job fails, retriable', async () => {
    const pool = new EncodePool(1, { maxQueued: 8, jobTimeoutMs: 1 });
    try {
      const error = await pool.encode(packBatch(pointBatch(20_000)), zstd).then(() => assert.fail('encoded'), (e: unknown) => e);
      assert.ok(error instanceof EncodeError);
      assert.equal(error.retriable, true);
      assert.match(error.message, /took more than 1 ms/);
    } finally {
      await pool.close();
    }
  });

  it('bounds the queue, starts workers on demand and refuses jobs once closed', async () => {
    const pool = new EncodePool(1, { maxQueued: 1, jobTimeoutMs: 60_000 });
    assert.equal(pool.started, 0, 'no worker before the first job');
    const running = pool.encode(packBatch(pointBatch(2000)), zstd);
    const queued = pool.encode(packBatch(pointBatch(2000)), zstd);
    const refused = await pool.encode(packBatch(pointBatch(10)), zstd).then(() => assert.fail('queued'), (e: unknown) => e);
    assert.ok(refused instanceof EncodeError && refused.retriable && /1 batches waiting/.test(refused.message), String(refused));
    assert.deepEqual((await Promise.all([running, queued])).map((r) => r.rows), [2000, 2000]);
    assert.equal(pool.started, 1);
    await pool.close();
    assert.equal(pool.started, 0);
    const closed = await pool.encode(packBatch(pointBatch(10)), zstd).then(() => assert.fail('encoded'), (e: unknown) => e);
    assert.ok(closed instanceof EncodeError && !closed.retriable);
  });

  it('idle workers never keep a process alive, even when nobody closes the encoder; workers take any node flags', async () => {
    const script = `
      import { GeoParquetEncoder } from ${JSON.stringify(resolve('dist/src/encoders/parquet/geoparquet.js'))};
      import { randomBatch } from ${JSON.stringify(resolve('dist/test/support/random-batches.js'))};
      const encoded = await new GeoParquetEncoder(${JSON.stringify(zstd)}, 2).encode(randomBatch(5, 'point', 300));
      console.log(encoded.rows);`;
    const started = Date.now();
    // V8 flags and --input-type: flags a worker refuses when given explicitly or with a worker file.
    const flags = ['--max-old-space-size=1024', '--stack-trace-limit=20', '--input-type=module'];
    const { stdout } = await promisify(execFile)(process.execPath, [...flags, '-e', script], { timeout: 30_000 });
    assert.equal(stdout.trim(), '300');
    assert.ok(Date.now() - started < 20_000);
  });
});

/**
 * The record-store conformance suite: the same tests against every `RecordStore` (PostGIS,
 * SpatiaLite, MongoDB, InfluxDB). Records must come back equal field by field: time to the
 * microsecond, geometry and coordinates exactly, attributes as the same JSON text.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ObservationRecord, PointRecord, VectorRecord } from '../../src/core/record.js';
import type { RecordStore } from '../../src/core/record-store.js';
import { NotFoundError, StorageError, isRetriable } from '../../src/core/errors.js';
import { withRetry } from '../../src/core/retry.js';

export interface RecordStoreSubject {
  name: string;
  open(): Promise<RecordStore>;
  openUnreachable?(): Promise<RecordStore>;
  secrets?: string[];
  /** Stores that keep only points (InfluxDB) skip the vector cases. */
  points?: boolean;
  vectors?: boolean;
}

export function samplePoints(n: number, source = 'obs', partition = 0, start = 0): PointRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: 'point' as const,
    position: { source, partition, offset: start + i },
    size: 120,
    id: `p-${start + i}`,
    dataset: 'stations',
    variable: 'temperature',
    timeUs: 1_767_225_600_000_000 + (start + i) * 1_000_001,
    lon: -122.4194 + i * 0.001,
    lat: 37.7749 - i * 0.0005,
    value: 12.5 + i / 8,
    unit: 'degC',
    quality: i % 2 === 0 ? 'good' : null,
    station: `st-${i % 3}`,
    elevation: i % 4 === 0 ? null : 15.25,
    attrs: i % 5 === 0 ? '{"sensor":"a\\"b"}' : null,
    key: i % 2 === 0 ? `k${i}` : null,
  }));
}

export function sampleVectors(n: number, source = 'obs', partition = 1, start = 0): VectorRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const x = 10 + i;
    return {
      kind: 'vector' as const,
      position: { source, partition, offset: start + i },
      size: 300,
      id: `v-${start + i}`,
      dataset: 'fires',
      variable: null,
      timeUs: 1_767_225_600_123_456 + i,
      geometry: { type: 'Polygon', coordinates: [[[x, 1], [x + 1, 1], [x + 1, 2], [x, 2], [x, 1]]] },
      properties: `{"name":"fire ${i}"}`,
      value: i === 0 ? null : i * 1.5,
      bbox: [x, 1, x + 1, 2] as [number, number, number, number],
      key: null,
    };
  });
}

function comparable(r: ObservationRecord): Record<string, unknown> {
  // `size` is the payload length on the way in; stores need not keep it. `key` is optional provenance.
  const { size: _size, key: _key, ...rest } = r;
  return rest;
}

export function recordStoreConformance(subject: RecordStoreSubject): void {
  const points = subject.points ?? true;
  const vectors = subject.vectors ?? true;
  describe(`record store conformance: ${subject.name}`, () => {
    const run = `conformance-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    const k = (key: string) => `${run}/${key}`;
    let store: RecordStore;

    before(async () => {
      store = await subject.open();
    });
    after(async () => {
      if (!store) return;
      for await (const key of store.listKeys(`${run}/`)) await store.deleteRecords(key);
      await store.close();
    });

    if (points) {
      it('round-trips point records field by field, in source order', async () => {
        const records = samplePoints(50);
        const result = await store.writeRecords(k('points/part-1'), { memoryType: 'TemperatureMemory', dataset: 'stations', records: [...records].reverse() });
        assert.equal(result.rows, 50);
        assert.ok(result.container.length > 0);
        const back = await store.readRecords(k('points/part-1'));
        assert.deepEqual(back.map(comparable), records.map(comparable));
        assert.equal(typeof store.uri(k('points/part-1')), 'string');
      });

      it('replaces the rows of a key when it is written again (no duplicates)', async () => {
        await store.writeRecords(k('points/again'), { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(20) });
        await store.writeRecords(k('points/again'), { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(7, 'obs', 0, 100) });
        const back = await store.readRecords(k('points/again'));
        assert.deepEqual(back.map((r) => r.id), samplePoints(7, 'obs', 0, 100).map((r) => r.id));
      });

      it('lists keys by prefix and deletes', async () => {
        await store.writeRecords(k('list/a/1'), { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(2) });
        await store.writeRecords(k('list/a/2'), { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(2) });
        await store.writeRecords(k('list/b/1'), { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(2) });
        const keys: string[] = [];
        for await (const key of store.listKeys(k('list/a/'))) keys.push(key);
        assert.deepEqual(keys.sort(), [k('list/a/1'), k('list/a/2')]);
        await store.deleteRecords(k('list/a/1'));
        await store.deleteRecords(k('list/a/1'));
        await assert.rejects(store.readRecords(k('list/a/1')), (e: unknown) => e instanceof NotFoundError && !isRetriable(e));
        assert.equal((await store.readRecords(k('list/a/2'))).length, 2);
      });

      it('gives a typed not-found error for a missing key', async () => {
        await assert.rejects(store.readRecords(k('missing')), (e: unknown) => e instanceof NotFoundError);
      });

      it('takes concurrent writers on distinct and on the same key', async () => {
        await Promise.all(
          Array.from({ length: 6 }, (_, i) =>
            store.writeRecords(k(`conc/${i}`), { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(30, 'obs', 0, i * 100) }),
          ),
        );
        await Promise.all(
          Array.from({ length: 4 }, (_, i) =>
            store.writeRecords(k('conc/same'), { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(10 + i, 'obs', 0, i * 100) }),
          ),
        );
        for (let i = 0; i < 6; i++) assert.equal((await store.readRecords(k(`conc/${i}`))).length, 30);
        const same = await store.readRecords(k('conc/same'));
        assert.ok([10, 11, 12, 13].includes(same.length), `one writer's rows, got ${same.length}`);
        const first = Number(same[0]!.id!.slice(2));
        assert.deepEqual(same.map((r) => r.id), samplePoints(same.length, 'obs', 0, first).map((r) => r.id));
      });
    }

    if (vectors) {
      it('round-trips vector features (geometry, bbox, properties) field by field', async () => {
        const records = sampleVectors(12);
        await store.writeRecords(k('vectors/part-1'), { memoryType: 'FireMemory', dataset: 'fires', records });
        const back = await store.readRecords(k('vectors/part-1'));
        assert.deepEqual(back.map(comparable), records.map(comparable));
      });
    }

    if (subject.openUnreachable) {
      it('retries while the server is down, until max_elapsed, then fails with a clear retriable error', { timeout: 120_000 }, async () => {
        let retries = 0;
        let gaveUp = 0;
        let dead: RecordStore | undefined;
        await assert.rejects(
          withRetry(
            async () => {
              dead ??= await subject.openUnreachable!();
              return dead.writeRecords(k('down'), { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(1) });
            },
            { maxElapsedMs: 1_000, initialBackoffMs: 50, maxBackoffMs: 100, onRetry: () => retries++, onGiveUp: () => gaveUp++ },
          ),
          (e: unknown) => {
            assert.ok(e instanceof StorageError, `expected StorageError, got ${String(e)}`);
            assert.equal(e.retriable, true, e.message);
            for (const secret of subject.secrets ?? []) assert.ok(!e.describe().includes(secret));
            return true;
          },
        );
        await (dead as RecordStore | undefined)?.close().catch(() => undefined);
        assert.ok(retries >= 2, `retried ${retries} times in 1 s`);
        assert.equal(gaveUp, 1);
      });
    }
  });
}

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sqliteBackendSchema } from '../../../connectors/sqlite/config.js';
import { SQLiteStorage } from '../../../connectors/sqlite/storage.js';
import type { RecordStore } from '../../../src/core/record-store.js';
import { CachedRecordStore } from '../../../src/storage/cached-record-store.js';
import { MemoryCacheStore } from '../../../src/storage/memory-cache-store.js';
import { recordStoreConformance, samplePoints } from '../../conformance/record-store-suite.js';

const sqlite = () =>
  new SQLiteStorage(sqliteBackendSchema.parse({ type: 'sqlite', database_path: join(mkdtempSync(join(tmpdir(), 'earthmem-crs-')), 'hot.db') }));
const cache = () => new MemoryCacheStore({ maxBytes: 8 * 1024 * 1024, policy: 'least-recently-used' });

for (const prefetching of [false, true]) {
  recordStoreConformance({ name: `sqlite + memory cache${prefetching ? ' (prefetching)' : ''}`, open: async () => new CachedRecordStore(sqlite(), cache(), { prefetching }) });
}

/** Counts the reads that reach the database. */
function counted(store: RecordStore): RecordStore & { reads: number } {
  const wrapper = Object.create(store) as RecordStore & { reads: number };
  wrapper.reads = 0;
  wrapper.readRecords = async (key: string) => {
    wrapper.reads++;
    return store.readRecords(key);
  };
  return wrapper;
}

describe('CachedRecordStore (cache_settings on a database tier)', () => {
  it('serves a repeated read from the cache and never a stale one after a write', async () => {
    const db = counted(sqlite());
    const store = new CachedRecordStore(db, cache());
    const set = { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(20) };
    await store.writeRecords('k', set);
    assert.equal((await store.readRecords('k')).length, 20);
    assert.equal((await store.readRecords('k')).length, 20);
    assert.equal(db.reads, 1, 'the second read is a cache hit');
    assert.equal((await store.cache.stats()).hits, 1);
    await store.writeRecords('k', { ...set, records: samplePoints(5, 'obs', 0, 100) });
    assert.deepEqual((await store.readRecords('k')).map((r) => r.id), samplePoints(5, 'obs', 0, 100).map((r) => r.id));
    assert.equal(db.reads, 2);
    await store.deleteRecords('k');
    await assert.rejects(store.readRecords('k'));
    await store.close();
  });

  it('with prefetching, a written key is read from the cache at once', async () => {
    const db = counted(sqlite());
    const store = new CachedRecordStore(db, cache(), { prefetching: true });
    await store.writeRecords('k', { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(10).reverse() });
    assert.deepEqual((await store.readRecords('k')).map((r) => r.id), samplePoints(10).map((r) => r.id));
    assert.equal(db.reads, 0);
    await store.close();
  });
});

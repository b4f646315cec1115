import type { ObservationRecord } from '../core/record.js';
import type { RecordSet, RecordStore, RecordWriteResult } from '../core/record-store.js';
import type { CacheStore } from './cache-store.js';

/**
 * `cache_settings` on a database tier (the spec's hot PostgreSQL with a Redis cache): the
 * records of a key, as JSON, in a CacheStore in front of the database. A read of a cached key
 * never reaches the database; a write or delete goes to the database first, then replaces
 * (`prefetching`: write-allocate) or drops the cached copy, so the cache never serves rows the
 * database no longer has. The cache is a copy: losing it loses nothing.
 */
export class CachedRecordStore implements RecordStore {
  readonly type: string;
  readonly location: string;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  constructor(
    readonly inner: RecordStore,
    readonly cache: CacheStore,
    private readonly options: { prefetching?: boolean } = {},
  ) {
    this.type = inner.type;
    this.location = inner.location;
  }

  uri(key: string): string {
    return this.inner.uri(key);
  }

  async writeRecords(key: string, set: RecordSet): Promise<RecordWriteResult> {
    const result = await this.inner.writeRecords(key, set);
    if (this.options.prefetching) {
      // Stored order is source order; cache what a read would return.
      const ordered = [...set.records].sort((a, b) =>
        a.position.source < b.position.source ? -1 : a.position.source > b.position.source ? 1 : a.position.partition - b.position.partition || a.position.offset - b.position.offset,
      );
      if (!(await this.cache.set(key, this.encode(ordered)))) await this.cache.delete(key);
    } else {
      await this.cache.delete(key);
    }
    return result;
  }

  async readRecords(key: string): Promise<ObservationRecord[]> {
    const cached = await this.cache.get(key);
    if (cached !== undefined) return JSON.parse(this.decoder.decode(cached)) as ObservationRecord[];
    const records = await this.inner.readRecords(key);
    await this.cache.set(key, this.encode(records));
    return records;
  }

  listKeys(prefix: string): AsyncIterable<string> {
    return this.inner.listKeys(prefix);
  }

  async deleteRecords(key: string): Promise<void> {
    await this.inner.deleteRecords(key);
    await this.cache.delete(key);
  }

  async close(): Promise<void> {
    try {
      await this.inner.close();
    } finally {
      await this.cache.close();
    }
  }

  private encode(records: readonly ObservationRecord[]): Uint8Array {
    return this.encoder.encode(JSON.stringify(records));
  }
}

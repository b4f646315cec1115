import type { Backend, Body, ObjectStat, PutOptions } from '../core/backend.js';
import { EarthMemoryError } from '../core/errors.js';
import { WrappedBackend } from './wrapped-backend.js';

/** Keys owed an invalidation while the cache is down, at most (then writes wait for the cache). */
const MAX_UNSETTLED = 10_000;
const SETTLE_INTERVAL_MS = 1_000;
import type { CacheStats, CacheStore } from './cache-store.js';

export interface CachedBackendOptions {
  /** Write-allocate (cache what is written) and load the next key after each get, in the background. */
  prefetching?: boolean;
  /** Called when the cache fails on a read path (the read then goes to the backend) or a prefetch fails. */
  onCacheError?: (error: unknown, operation: string, key: string) => void;
}

export interface CachedBackendStats extends CacheStats {
  /** Objects loaded into the cache by prefetching. */
  prefetched: number;
  /** Prefetches not started because one was still running. */
  prefetchSkipped: number;
  /** Cache failures that reads worked around, and failed prefetches. */
  cacheErrors: number;
}

/** A read in progress: a write to its key makes its result too old to cache. */
interface PendingRead {
  stale: boolean;
}

/**
 * A Backend in front of another, with a read cache (the spec's `cache_settings`): `get` and
 * `getRange` are served from the cache when they can; a miss reads the backend and caches the
 * object. Writes go to the backend first (write-through), then invalidate the cached copy, or
 * with `prefetching` replace it (write-allocate). The cache evicts by its policy (LRU/LFU) when
 * its bytes exceed its `maxBytes`. `stat` and `list` always ask the backend.
 *
 * The cache is an aid, never the truth: while it is down, reads go to the backend and writes
 * succeed, and a key written meanwhile is read around the cache until its stale copy is deleted.
 *
 * A read that started before a write to the same key finishes is not cached (in this process;
 * between workers sharing a Redis cache, a read racing another worker's write can leave the old
 * bytes cached until the next write or eviction).
 */
export class CachedBackend extends WrappedBackend {
  private readonly pendingReads = new Map<string, Set<PendingRead>>();
  /** The last write of each key being written, to queue the next one behind it. */
  private readonly writesByKey = new Map<string, Promise<void>>();
  private prefetch: Promise<void> | undefined;
  private prefetched = 0;
  private prefetchSkipped = 0;
  private cacheErrors = 0;
  private readonly prefetching: boolean;
  /** Keys written while the cache was down: their cached copy may be old, so reads go around it. */
  private readonly unsettled = new Set<string>();
  private settleAfter = 0;

  constructor(
    inner: Backend,
    readonly cache: CacheStore,
    private readonly options: CachedBackendOptions = {},
  ) {
    super(inner);
    this.prefetching = options.prefetching ?? false;
  }

  /** Writes of one key run one after another, so the cache ends with what the backend ends with. */
  override put(key: string, body: Body, options?: PutOptions): Promise<ObjectStat> {
    return this.serialized(key, async () => {
      this.invalidatePendingReads(key);
      const capture = this.prefetching ? new Capture(this.cache.maxBytes) : undefined;
      const stat = await this.inner.put(key, capture && !(body instanceof Uint8Array) ? capture.tee(body) : body, options);
      this.invalidatePendingReads(key);
      const written = body instanceof Uint8Array ? (body.byteLength <= this.cache.maxBytes ? body : undefined) : capture?.bytes();
      await this.invalidate(key, () => (capture && written ? this.cache.set(key, written).then(() => undefined) : this.cache.delete(key)));
      return stat;
    });
  }

  override async get(key: string): Promise<Uint8Array> {
    if (!(await this.trusted(key))) return this.inner.get(key);
    const cached = await this.fromCache('get', key, () => this.cache.get(key));
    if (cached) {
      this.schedulePrefetch(key);
      return cached;
    }
    const { bytes } = await this.readThrough(key);
    this.schedulePrefetch(key);
    return bytes;
  }

  override async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    if (length > 0 && (await this.trusted(key))) {
      const cached = await this.fromCache('getRange', key, () => this.cache.getRange(key, offset, length));
      if (cached) return cached;
    }
    return this.inner.getRange(key, offset, length);
  }

  override delete(key: string): Promise<void> {
    return this.serialized(key, async () => {
      this.invalidatePendingReads(key);
      await this.inner.delete(key);
      this.invalidatePendingReads(key);
      await this.invalidate(key, () => this.cache.delete(key));
    });
  }

  /** Resolves when no prefetch is running. */
  async idle(): Promise<void> {
    while (this.prefetch) await this.prefetch;
  }

  async stats(): Promise<CachedBackendStats> {
    return { ...(await this.cache.stats()), prefetched: this.prefetched, prefetchSkipped: this.prefetchSkipped, cacheErrors: this.cacheErrors };
  }

  /** Closes the cache and the backend behind it. */
  override async close(): Promise<void> {
    await this.idle();
    await this.cache.close();
    await this.inner.close();
  }

  /** Reads the backend and caches the bytes, unless a write to the key overtook the read. */
  private async readThrough(key: string): Promise<{ bytes: Uint8Array; cached: boolean }> {
    const read: PendingRead = { stale: false };
    let reads = this.pendingReads.get(key);
    if (!reads) this.pendingReads.set(key, (reads = new Set()));
    reads.add(read);
    try {
      const bytes = await this.inner.get(key);
      let cached = false;
      if (!read.stale && !this.unsettled.has(key) && bytes.byteLength <= this.cache.maxBytes) {
        cached = await this.cache.set(key, bytes).catch((error: unknown) => (this.report(error, 'set', key), false));
      }
      return { bytes, cached };
    } finally {
      reads.delete(read);
      if (reads.size === 0) this.pendingReads.delete(key);
    }
  }

  /**
   * Runs the cache's part of a write. The backend already has the new bytes, so when the cache is
   * down (a retriable failure) the write succeeds anyway and the key is owed an invalidation:
   * reads of it go around the cache until `trusted` has deleted its cached copy. At most
   * MAX_UNSETTLED keys are owed; beyond that the write fails (and is retried by its caller).
   */
  private async invalidate(key: string, update: () => Promise<void>): Promise<void> {
    try {
      await update();
      this.unsettled.delete(key);
    } catch (error) {
      if (!(error instanceof EarthMemoryError && error.retriable) || this.unsettled.size >= MAX_UNSETTLED) throw error;
      this.unsettled.add(key);
      this.report(error, 'invalidate', key);
    }
  }

  /**
   * False while the key's cached copy may be older than the backend's (its invalidation is
   * owed). Owed invalidations are settled first, at most once a second while the cache fails.
   */
  private async trusted(key: string): Promise<boolean> {
    if (this.unsettled.size === 0) return true;
    if (Date.now() >= this.settleAfter) {
      this.settleAfter = Date.now() + SETTLE_INTERVAL_MS;
      try {
        for (const owed of [...this.unsettled]) {
          await this.cache.delete(owed);
          this.unsettled.delete(owed);
        }
      } catch (error) {
        this.report(error, 'invalidate', key);
      }
    }
    return !this.unsettled.has(key);
  }

  private serialized<T>(key: string, write: () => Promise<T>): Promise<T> {
    const previous = this.writesByKey.get(key) ?? Promise.resolve();
    const result = previous.then(write);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.writesByKey.set(key, tail);
    void tail.then(() => {
      if (this.writesByKey.get(key) === tail) this.writesByKey.delete(key);
    });
    return result;
  }

  private invalidatePendingReads(key: string): void {
    for (const read of this.pendingReads.get(key) ?? []) read.stale = true;
  }

  /** A cache failure on a read is reported and treated as a miss. */
  private async fromCache(operation: string, key: string, read: () => Promise<Uint8Array | undefined>): Promise<Uint8Array | undefined> {
    try {
      return await read();
    } catch (error) {
      this.report(error, operation, key);
      return undefined;
    }
  }

  /** With prefetching: cache the key after `key` in listing order, at most one prefetch at a time. */
  private schedulePrefetch(key: string): void {
    if (!this.prefetching) return;
    if (this.prefetch) {
      this.prefetchSkipped++;
      return;
    }
    this.prefetch = this.prefetchAfter(key)
      .catch((error: unknown) => this.report(error, 'prefetch', key))
      .finally(() => {
        this.prefetch = undefined;
      });
  }

  private async prefetchAfter(key: string): Promise<void> {
    const next = await this.nextKey(key);
    if (next === undefined || (await this.cache.has(next))) return;
    if ((await this.readThrough(next)).cached) this.prefetched++;
  }

  /** The smallest key after `key` in the same folder (keys sharing everything up to the last `/`). */
  private async nextKey(key: string): Promise<string | undefined> {
    const folder = key.slice(0, key.lastIndexOf('/') + 1);
    let next: string | undefined;
    for await (const entry of this.inner.list(folder)) {
      if (entry.key > key && (next === undefined || entry.key < next)) next = entry.key;
    }
    return next;
  }

  private report(error: unknown, operation: string, key: string): void {
    this.cacheErrors++;
    this.options.onCacheError?.(error, operation, key);
  }
}

/** Keeps a copy of a streamed body as it goes to the backend, while it fits the cache. */
class Capture {
  private parts: Uint8Array[] | undefined = [];
  private size = 0;

  constructor(private readonly limit: number) {}

  async *tee(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const chunk of body) {
      if (this.parts) {
        this.size += chunk.byteLength;
        // The producer may reuse its chunk buffers: keep copies.
        if (this.size > this.limit) this.parts = undefined;
        else this.parts.push(chunk.slice());
      }
      yield chunk;
    }
  }

  bytes(): Uint8Array | undefined {
    if (!this.parts) return undefined;
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.byteLength;
    }
    this.parts = undefined;
    return out;
  }
}

import type { EvictionPolicy } from './cache-config.js';

export interface CacheStats {
  hits: number;
  misses: number;
  evictions: number;
  entries: number;
  /** Bytes cached now; at most `maxBytes` once a `set` has returned. */
  bytes: number;
  maxBytes: number;
}

/**
 * Where CachedBackend keeps cached objects, with the accounting it needs: total bytes, hits and
 * misses, and a rank per entry (last use for LRU, use count for LFU) that `set` evicts by until
 * the total fits `maxBytes`.
 */
export interface CacheStore {
  readonly type: string;
  readonly maxBytes: number;
  readonly policy: EvictionPolicy;
  /** The cached bytes (a hit, which ranks the entry up), or undefined (a miss). */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Bytes [offset, offset+length) of a cached entry (a hit), or undefined (a miss). */
  getRange(key: string, offset: number, length: number): Promise<Uint8Array | undefined>;
  /** Whether `key` is cached, without counting a hit or miss. */
  has(key: string): Promise<boolean>;
  /** Caches `bytes` under `key` and evicts other entries until the total fits; false when `bytes` alone exceeds `maxBytes` (then not cached). */
  set(key: string, bytes: Uint8Array): Promise<boolean>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  stats(): Promise<CacheStats>;
  close(): Promise<void>;
}

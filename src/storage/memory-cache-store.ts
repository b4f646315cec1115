import type { EvictionPolicy } from './cache-config.js';
import type { CacheStats, CacheStore } from './cache-store.js';

interface Entry {
  bytes: Uint8Array;
  uses: number;
}

/**
 * A cache in this process's memory. Map order is recency (a use moves the entry to the end), so
 * LRU evicts from the front; LFU evicts the entry with the fewest uses, the least recent first
 * among equals. Entries are copies: callers may change what they passed in or got back.
 */
export class MemoryCacheStore implements CacheStore {
  readonly type = 'memory';
  readonly maxBytes: number;
  readonly policy: EvictionPolicy;
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(options: { maxBytes: number; policy: EvictionPolicy }) {
    this.maxBytes = options.maxBytes;
    this.policy = options.policy;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return this.use(key)?.bytes.slice();
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array | undefined> {
    return this.use(key)?.bytes.slice(offset, offset + Math.max(0, length));
  }

  async has(key: string): Promise<boolean> {
    return this.entries.has(key);
  }

  async set(key: string, bytes: Uint8Array): Promise<boolean> {
    const previous = this.entries.get(key);
    this.remove(key);
    if (bytes.byteLength > this.maxBytes) return false;
    // A replaced entry keeps its use count (LFU); a set is not a use.
    this.entries.set(key, { bytes: bytes.slice(), uses: previous?.uses ?? 0 });
    this.bytes += bytes.byteLength;
    while (this.bytes > this.maxBytes) {
      const victim = this.victim(key);
      if (victim === undefined) break;
      this.remove(victim);
      this.evictions++;
    }
    return true;
  }

  async delete(key: string): Promise<void> {
    this.remove(key);
  }

  async stats(): Promise<CacheStats> {
    return { hits: this.hits, misses: this.misses, evictions: this.evictions, entries: this.entries.size, bytes: this.bytes, maxBytes: this.maxBytes };
  }

  async close(): Promise<void> {
    this.entries.clear();
    this.bytes = 0;
  }

  private use(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (!entry) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    entry.uses++;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry;
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.bytes -= entry.bytes.byteLength;
  }

  /** The entry to evict, never `keep` (the one just set). */
  private victim(keep: string): string | undefined {
    let victim: string | undefined;
    let fewest = Infinity;
    for (const [key, entry] of this.entries) {
      if (key === keep) continue;
      if (this.policy === 'least-recently-used') return key;
      if (entry.uses < fewest) {
        victim = key;
        fewest = entry.uses;
      }
    }
    return victim;
  }
}

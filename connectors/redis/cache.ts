import { ConfigError } from '../../src/core/errors.js';
import type { CacheSettings, EvictionPolicy } from '../../src/storage/cache-config.js';
import type { CacheStats, CacheStore } from '../../src/storage/cache-store.js';
import { RedisConnection, resolveRedisConnection, type ResolvedRedisConnection } from './client.js';

/**
 * Keys under the prefix P:
 *   P d:<key>  the cached bytes (a string)
 *   P rank     sorted set: LRU = a shared counter value at the last use, LFU = number of uses
 *   P sizes    hash key → bytes, so eviction and delete know what to subtract
 *   P bytes    total cached bytes
 *   P clock    the LRU counter (INCR), one order for every worker
 *   P stats    hash: hits, misses, evictions
 * Every change runs in one Lua script, so workers sharing the cache agree on the total and on
 * what to evict. The scripts touch keys they compute (P d:<victim>): one Redis node, not Cluster.
 */

/** KEYS: data, rank, clock, stats. ARGV: member, lru|lfu, whole|range, start, end. */
const getScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HINCRBY', KEYS[4], 'misses', 1)
  return false
end
if ARGV[2] == 'lru' then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
else
  redis.call('ZINCRBY', KEYS[2], 1, ARGV[1])
end
redis.call('HINCRBY', KEYS[4], 'hits', 1)
if ARGV[3] == 'range' then return redis.call('GETRANGE', KEYS[1], ARGV[4], ARGV[5]) end
return redis.call('GET', KEYS[1])
`;

/** KEYS: data, rank, sizes, bytes, clock, stats. ARGV: member, value, maxBytes, lru|lfu, data prefix. */
const setScript = `
local member, value, maxBytes, policy, dataPrefix = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local size = string.len(value)
local old = redis.call('HGET', KEYS[3], member)
if old then redis.call('DECRBY', KEYS[4], old) end
if size > maxBytes then
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[3], member)
  redis.call('ZREM', KEYS[2], member)
  return 0
end
redis.call('SET', KEYS[1], value)
redis.call('HSET', KEYS[3], member, size)
local total = redis.call('INCRBY', KEYS[4], size)
if policy == 'lru' then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[5]), member)
else
  -- a set is not a use; a replaced entry keeps its count
  redis.call('ZADD', KEYS[2], 'NX', 0, member)
end
local evicted = 0
while total > maxBytes do
  local lowest = redis.call('ZRANGE', KEYS[2], 0, 1)
  local victim = lowest[1]
  if victim == member then victim = lowest[2] end
  if not victim then break end
  local victimSize = redis.call('HGET', KEYS[3], victim) or '0'
  redis.call('DEL', dataPrefix .. victim)
  redis.call('HDEL', KEYS[3], victim)
  redis.call('ZREM', KEYS[2], victim)
  total = redis.call('DECRBY', KEYS[4], victimSize)
  evicted = evicted + 1
end
if evicted > 0 then redis.call('HINCRBY', KEYS[6], 'evictions', evicted) end
return 1
`;

/** KEYS: data, rank, sizes, bytes. ARGV: member. */
const deleteScript = `
local old = redis.call('HGET', KEYS[3], ARGV[1])
if old then redis.call('DECRBY', KEYS[4], old) end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;

interface CacheCommands {
  earthmemCacheGetBuffer(...args: string[]): Promise<Buffer | null>;
  earthmemCacheSet(...args: (string | Buffer)[]): Promise<number>;
  earthmemCacheDelete(...args: string[]): Promise<number>;
}

export interface RedisCacheStoreOptions {
  connection: ResolvedRedisConnection;
  /** Default `earthmem:cache:`. */
  keyPrefix?: string;
  maxBytes: number;
  policy: EvictionPolicy;
}

/**
 * A cache shared by every worker that points at the same Redis and prefix. LFU ties (equal use
 * counts) go to the key that sorts first. Redis keeps the bytes in memory: give the server a
 * `maxmemory` above `max_size` (and no eviction policy of its own on these keys).
 */
export class RedisCacheStore implements CacheStore {
  readonly type = 'redis';
  readonly maxBytes: number;
  readonly policy: EvictionPolicy;
  readonly location: string;
  private readonly connection: RedisConnection;
  private readonly prefix: string;
  private readonly scoring: 'lru' | 'lfu';

  /** From a tier's `cache_settings` with `type: redis`. */
  static fromSettings(settings: CacheSettings): RedisCacheStore {
    if (settings.url === undefined) throw new ConfigError('cache_settings: type: redis needs url');
    return new RedisCacheStore({
      connection: resolveRedisConnection({ url: settings.url, tls: false, connect_timeout: 5_000, command_timeout: 30_000 }),
      keyPrefix: settings.key_prefix,
      maxBytes: settings.max_size,
      policy: settings.eviction_policy,
    });
  }

  constructor(options: RedisCacheStoreOptions) {
    this.connection = new RedisConnection(options.connection, 'earthmem-cache');
    this.prefix = options.keyPrefix ?? 'earthmem:cache:';
    this.maxBytes = options.maxBytes;
    this.policy = options.policy;
    this.scoring = options.policy === 'least-recently-used' ? 'lru' : 'lfu';
    this.location = `${this.connection.location}#${this.prefix}`;
    this.connection.client.defineCommand('earthmemCacheGet', { numberOfKeys: 4, lua: getScript });
    this.connection.client.defineCommand('earthmemCacheSet', { numberOfKeys: 6, lua: setScript });
    this.connection.client.defineCommand('earthmemCacheDelete', { numberOfKeys: 4, lua: deleteScript });
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.read('cache get', key, ['whole', '0', '0']);
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array | undefined> {
    // GETRANGE's end is inclusive, and -1 would mean "to the end": an empty range is not asked for.
    if (length <= 0) return undefined;
    return this.read('cache getRange', key, ['range', String(offset), String(offset + length - 1)]);
  }

  has(key: string): Promise<boolean> {
    return this.connection.run('cache has', key, async (redis) => (await redis.exists(this.dataKey(key))) === 1);
  }

  set(key: string, bytes: Uint8Array): Promise<boolean> {
    const value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return this.connection.run('cache set', key, async (redis) => {
      const stored = await commands(redis).earthmemCacheSet(
        this.dataKey(key), this.key('rank'), this.key('sizes'), this.key('bytes'), this.key('clock'), this.key('stats'),
        key, value, String(this.maxBytes), this.scoring, this.key('d:'),
      );
      return stored === 1;
    });
  }

  async delete(key: string): Promise<void> {
    await this.connection.run('cache delete', key, (redis) =>
      commands(redis).earthmemCacheDelete(this.dataKey(key), this.key('rank'), this.key('sizes'), this.key('bytes'), key),
    );
  }

  stats(): Promise<CacheStats> {
    return this.connection.run('cache stats', undefined, async (redis) => {
      const results = await redis.multi().hmget(this.key('stats'), 'hits', 'misses', 'evictions').get(this.key('bytes')).zcard(this.key('rank')).exec();
      const failed = results?.find(([error]) => error);
      if (!results || failed) throw failed?.[0] ?? new Error('Connection is closed.');
      const [hits, misses, evictions] = (results[0]![1] as (string | null)[]).map(Number);
      return {
        hits: hits!,
        misses: misses!,
        evictions: evictions!,
        bytes: Number(results[1]![1] ?? 0),
        entries: results[2]![1] as number,
        maxBytes: this.maxBytes,
      };
    });
  }

  close(): Promise<void> {
    return this.connection.close();
  }

  private read(operation: string, key: string, mode: [string, string, string]): Promise<Uint8Array | undefined> {
    return this.connection.run(operation, key, async (redis) => {
      const value = await commands(redis).earthmemCacheGetBuffer(this.dataKey(key), this.key('rank'), this.key('clock'), this.key('stats'), key, this.scoring, ...mode);
      return value === null ? undefined : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    });
  }

  private key(name: string): string {
    return this.prefix + name;
  }

  private dataKey(key: string): string {
    return `${this.prefix}d:${key}`;
  }
}

function commands(redis: unknown): CacheCommands {
  return redis as CacheCommands;
}

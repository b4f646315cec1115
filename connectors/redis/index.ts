import type { IndexEntry, ObjectIndex } from '../../src/core/object-index.js';
import { RedisConnection, resolveRedisConnection } from './client.js';
import type { RedisBackendConfig } from './config.js';

/**
 * Index keys under `<key_prefix>idx:`:
 *   e:<key>  hash of the entry's fields (the only key with the entry's ttl)
 *   tmin     sorted set, score = minTimeUs
 *   lon/lat  sorted sets, score = minLon / minLat
 *   span     hash: the largest time, lon and lat extent ever added
 * A range query reads the candidates whose minimum lies in [from - largest extent, to] from one
 * sorted set (for a bbox: the intersection of the lon and lat candidates), then keeps those that
 * really overlap by the entry's own fields. Scores are doubles: exact for microsecond times
 * (< 2^53) and for coordinates.
 *
 * The scripts touch keys they compute (`e:<key>`), so the index needs a single Redis node or
 * primary, not Redis Cluster.
 */
const entryFields = ['key', 'tier', 'memoryType', 'dataset', 'minLon', 'minLat', 'maxLon', 'maxLat', 'minTimeUs', 'maxTimeUs', 'uri', 'bytes'] as const;

/** KEYS: entry, tmin, lon, lat, span. ARGV: key, ttl ms ('' = none), field, value, … */
const addScript = `
local key, ttl = ARGV[1], ARGV[2]
local f = {}
for i = 3, #ARGV, 2 do f[ARGV[i]] = ARGV[i + 1] end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], f.minTimeUs, key)
redis.call('ZADD', KEYS[3], f.minLon, key)
redis.call('ZADD', KEYS[4], f.minLat, key)
local function grow(name, extent)
  if extent > tonumber(redis.call('HGET', KEYS[5], name) or '0') then
    redis.call('HSET', KEYS[5], name, string.format('%.17g', extent))
  end
end
grow('time', tonumber(f.maxTimeUs) - tonumber(f.minTimeUs))
grow('lon', tonumber(f.maxLon) - tonumber(f.minLon))
grow('lat', tonumber(f.maxLat) - tonumber(f.minLat))
if ttl ~= '' then
  for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1
`;

/** Shared by the queries: entries of the candidates that still exist, expired ones cleaned from the sets. */
const readCandidates = `
local function entries(prefix, candidates, keep)
  local out = {}
  for _, key in ipairs(candidates) do
    local fields = redis.call('HGETALL', prefix .. key)
    if #fields == 0 then
      redis.call('ZREM', KEYS[1], key)
      redis.call('ZREM', KEYS[2], key)
      redis.call('ZREM', KEYS[3], key)
    else
      local f = {}
      for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
      if keep(f) then table.insert(out, fields) end
    end
  end
  return out
end
local function num(x) return string.format('%.17g', x) end
`;

/** KEYS: tmin, lon, lat, span. ARGV: entry prefix, fromUs, toUs. */
const byTimeScript = `${readCandidates}
local from, to = tonumber(ARGV[2]), tonumber(ARGV[3])
local extent = tonumber(redis.call('HGET', KEYS[4], 'time') or '0')
local candidates = redis.call('ZRANGEBYSCORE', KEYS[1], num(from - extent), num(to))
return entries(ARGV[1], candidates, function(f) return tonumber(f.maxTimeUs) >= from and tonumber(f.minTimeUs) <= to end)
`;

/** KEYS: tmin, lon, lat, span. ARGV: entry prefix, minLon, minLat, maxLon, maxLat. */
const byBboxScript = `${readCandidates}
local minLon, minLat, maxLon, maxLat = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
-- the extents are differences of doubles: widen by a hair, the exact test below decides
local lonExtent = tonumber(redis.call('HGET', KEYS[4], 'lon') or '0') + 1e-9
local latExtent = tonumber(redis.call('HGET', KEYS[4], 'lat') or '0') + 1e-9
local byLon = redis.call('ZRANGEBYSCORE', KEYS[2], num(minLon - lonExtent), num(maxLon))
local byLat = redis.call('ZRANGEBYSCORE', KEYS[3], num(minLat - latExtent), num(maxLat))
local inLat = {}
for _, key in ipairs(byLat) do inLat[key] = true end
local candidates = {}
for _, key in ipairs(byLon) do if inLat[key] then table.insert(candidates, key) end end
return entries(ARGV[1], candidates, function(f)
  return tonumber(f.minLon) <= maxLon and tonumber(f.maxLon) >= minLon and tonumber(f.minLat) <= maxLat and tonumber(f.maxLat) >= minLat
end)
`;

interface IndexCommands {
  earthmemIndexAdd(...args: string[]): Promise<number>;
  earthmemIndexByTime(...args: string[]): Promise<string[][]>;
  earthmemIndexByBbox(...args: string[]): Promise<string[][]>;
}

/**
 * RedisIndex: the warm tier's `index_backend` (spec: RedisStorage(host, port, db, ttl)). Entries
 * live `ttl` after their last `add`; an expired entry is gone from `get` at once and from the
 * range lookups too (their scripts drop sorted-set members whose hash has expired).
 */
export class RedisIndex implements ObjectIndex {
  readonly type = 'redis';
  readonly location: string;
  private readonly connection: RedisConnection;
  private readonly prefix: string;
  private readonly ttlMs: number | undefined;

  constructor(config: RedisBackendConfig) {
    this.connection = new RedisConnection(resolveRedisConnection(config), 'earthmem-index');
    this.prefix = `${config.key_prefix}idx:`;
    this.ttlMs = config.ttl === undefined ? undefined : Math.max(1, Math.round(config.ttl));
    this.location = `${this.connection.location}#${this.prefix}`;
    this.connection.client.defineCommand('earthmemIndexAdd', { numberOfKeys: 5, lua: addScript });
    this.connection.client.defineCommand('earthmemIndexByTime', { numberOfKeys: 4, lua: byTimeScript });
    this.connection.client.defineCommand('earthmemIndexByBbox', { numberOfKeys: 4, lua: byBboxScript });
  }

  async add(entry: IndexEntry): Promise<void> {
    const [minLon, minLat, maxLon, maxLat] = entry.bbox;
    const values: Record<(typeof entryFields)[number], string | number> = { ...entry, minLon, minLat, maxLon, maxLat };
    const fields = entryFields.flatMap((name) => [name, String(values[name])]);
    await this.connection.run('index add', entry.key, (redis) =>
      commands(redis).earthmemIndexAdd(this.entryKey(entry.key), ...this.setKeys(), this.prefix + 'span', entry.key, String(this.ttlMs ?? ''), ...fields),
    );
  }

  async get(key: string): Promise<IndexEntry | undefined> {
    return this.connection.run('index get', key, async (redis) => {
      const fields = await redis.hgetall(this.entryKey(key));
      if (Object.keys(fields).length > 0) return entryOf(fields);
      // Expired or removed: drop the sorted-set members now rather than at the next range query.
      await redis.multi().zrem(this.setKeys()[0], key).zrem(this.setKeys()[1], key).zrem(this.setKeys()[2], key).exec();
      return undefined;
    });
  }

  async byBbox(bbox: [number, number, number, number]): Promise<IndexEntry[]> {
    const rows = await this.connection.run('index byBbox', undefined, (redis) =>
      commands(redis).earthmemIndexByBbox(...this.setKeys(), this.prefix + 'span', this.prefix + 'e:', ...bbox.map(String)),
    );
    return sorted(rows);
  }

  async byTime(fromUs: number, toUs: number): Promise<IndexEntry[]> {
    const rows = await this.connection.run('index byTime', undefined, (redis) =>
      commands(redis).earthmemIndexByTime(...this.setKeys(), this.prefix + 'span', this.prefix + 'e:', String(fromUs), String(toUs)),
    );
    return sorted(rows);
  }

  async remove(key: string): Promise<void> {
    const [tmin, lon, lat] = this.setKeys();
    await this.connection.run('index remove', key, (redis) =>
      redis.multi().del(this.entryKey(key)).zrem(tmin, key).zrem(lon, key).zrem(lat, key).exec(),
    );
  }

  close(): Promise<void> {
    return this.connection.close();
  }

  private entryKey(key: string): string {
    return `${this.prefix}e:${key}`;
  }

  private setKeys(): [string, string, string] {
    return [`${this.prefix}tmin`, `${this.prefix}lon`, `${this.prefix}lat`];
  }
}

function commands(redis: unknown): IndexCommands {
  return redis as IndexCommands;
}

function entryOf(fields: Record<string, string>): IndexEntry {
  return {
    key: fields.key!,
    tier: fields.tier!,
    memoryType: fields.memoryType!,
    dataset: fields.dataset!,
    bbox: [Number(fields.minLon), Number(fields.minLat), Number(fields.maxLon), Number(fields.maxLat)],
    minTimeUs: Number(fields.minTimeUs),
    maxTimeUs: Number(fields.maxTimeUs),
    uri: fields.uri!,
    bytes: Number(fields.bytes),
  };
}

/** Script replies are flat HGETALL arrays. */
function sorted(rows: string[][]): IndexEntry[] {
  return rows
    .map((flat) => {
      const fields: Record<string, string> = {};
      for (let i = 0; i < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
      return entryOf(fields);
    })
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

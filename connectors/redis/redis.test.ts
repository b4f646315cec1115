import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { AccessDeniedError, ConfigError, NotFoundError, StorageError } from '../../src/core/errors.js';
import type { IndexEntry } from '../../src/core/object-index.js';
import { backendConformance, listKeys } from '../../test/conformance/backend-suite.js';
import { resolveRedisConnection } from './client.js';
import { redisBackendSchema } from './config.js';
import { RedisIndex } from './index.js';
import { RedisStorage } from './storage.js';
import { deleteByPrefix, rawClient, redisEnv, runPrefix } from './test-support.js';

const prefix = runPrefix('redis');
const config = (options: Record<string, unknown>) => redisBackendSchema.parse({ type: 'redis', key_prefix: prefix, ...options });
const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

after(() => deleteByPrefix(prefix));

backendConformance({
  name: 'redis',
  open: async () => new RedisStorage(config({ url: redisEnv().url })),
  openUnreachable: async () => new RedisStorage(config({ host: '127.0.0.1', port: 1, password: redisEnv().password, connect_timeout: '1s' })),
  openBadCredentials: async () => new RedisStorage(config({ url: redisEnv().url, password: 'not-the-password' })),
  secrets: [redisEnv().password],
});

describe('redis storage specifics', () => {
  it('takes url or host/port/db, never both, and keeps the password out of location and uri', () => {
    const { url, password } = redisEnv();
    assert.throws(() => resolveRedisConnection(config({ url, host: '127.0.0.1' })), ConfigError);
    assert.throws(() => resolveRedisConnection(config({})), ConfigError);
    assert.throws(
      () => resolveRedisConnection(config({ url: `http://:${password}@127.0.0.1:1/0` })),
      (e: unknown) => e instanceof ConfigError && !e.message.includes(password),
    );
    const fromUrl = resolveRedisConnection(config({ url }));
    assert.equal(fromUrl.password, password);
    assert.equal(fromUrl.host, '127.0.0.1');
    const fromHost = resolveRedisConnection(config({ host: '127.0.0.1', port: 6380, db: 2 }));
    assert.deepEqual([fromHost.port, fromHost.db, fromHost.password], [6380, 2, undefined]);
    assert.equal(redisBackendSchema.safeParse({ type: 'redis', host: 'h', bogus: 1 }).success, false);
    assert.equal(config({ url, ttl: 604800 }).ttl, 604_800_000, 'a bare ttl number is seconds');
    const storage = new RedisStorage(config({ url }));
    assert.ok(!storage.location.includes(password) && !storage.uri('k').includes(password), storage.location);
  });

  it('lists keys holding glob characters literally', async () => {
    const storage = new RedisStorage(config({ url: redisEnv().url }));
    try {
      const keys = ['glob/a*b', 'glob/a?b', 'glob/[x]', 'glob/back\\slash', 'glob/aXb'];
      for (const key of keys) await storage.put(key, text(key));
      assert.deepEqual(await listKeys(storage, 'glob/a*'), ['glob/a*b']);
      assert.deepEqual(await listKeys(storage, 'glob/[x'), ['glob/[x]']);
      assert.deepEqual(await listKeys(storage, 'glob/back\\'), ['glob/back\\slash']);
      assert.deepEqual(await listKeys(storage, 'glob/'), [...keys].sort());
      for (const key of keys) await storage.delete(key);
    } finally {
      await storage.close();
    }
  });

  it('expires objects after ttl; a streamed put without ttl keeps no expiry from its temp key', { timeout: 20_000 }, async () => {
    const expiring = new RedisStorage(config({ url: redisEnv().url, ttl: '1s' }));
    const lasting = new RedisStorage(config({ url: redisEnv().url }));
    const redis = rawClient();
    try {
      await expiring.put('ttl/small', text('x'));
      await expiring.put('ttl/streamed', (async function* () { yield text('a'); yield text('b'); })());
      await lasting.put('ttl/lasting', (async function* () { yield text('keep'); })());
      const pttl = await redis.pttl(`${prefix}o:ttl/streamed`);
      assert.ok(pttl > 0 && pttl <= 1000, `pttl ${pttl}`);
      assert.equal(await redis.pttl(`${prefix}o:ttl/lasting`), -1);
      assert.equal((await redis.keys(`${prefix}t:*`)).length, 0, 'no temp key left behind');
      await sleep(1300);
      await assert.rejects(expiring.get('ttl/small'), NotFoundError);
      await assert.rejects(expiring.get('ttl/streamed'), NotFoundError);
      assert.equal(decode(await lasting.get('ttl/lasting')), 'keep');
      await lasting.delete('ttl/lasting');
    } finally {
      redis.disconnect();
      await expiring.close();
      await lasting.close();
    }
  });

  it('reconnects on the next operation after the server dropped the connection', async () => {
    const storage = new RedisStorage(config({ url: redisEnv().url }));
    const redis = rawClient();
    try {
      await storage.put('reconnect', text('1'));
      const clients = (await redis.client('LIST', 'TYPE', 'NORMAL')) as string;
      const ids = clients.split('\n').filter((line) => / name=earthmem-storage /.test(line)).map((line) => /id=(\d+)/.exec(line)![1]!);
      assert.ok(ids.length > 0, clients);
      for (const id of ids) await redis.client('KILL', 'ID', id);
      await sleep(100);
      // The first call after the kill may see the dead socket (retriable); the next one reconnects.
      const attempt = () => storage.get('reconnect');
      const first = await attempt().catch((error: unknown) => error);
      if (first instanceof Error) assert.ok(first instanceof StorageError && first.retriable, String(first));
      assert.equal(decode(await attempt()), '1');
      await storage.delete('reconnect');
    } finally {
      redis.disconnect();
      await storage.close();
    }
  });
});

describe('redis index', () => {
  const entry = (key: string, bbox: [number, number, number, number], minTimeUs: number, maxTimeUs: number): IndexEntry => ({
    key,
    tier: 'warm',
    memoryType: 'FireMemory',
    dataset: 'fires',
    bbox,
    minTimeUs,
    maxTimeUs,
    uri: `s3://earth-memory-warm/data/${key}`,
    bytes: 1234,
  });
  const T = 1_767_225_600_000_000;
  const keys = (entries: IndexEntry[]) => entries.map((e) => e.key);

  it('gets entries back field by field and finds them by bbox (intersects) and by time (overlaps)', async () => {
    const index = new RedisIndex(config({ url: redisEnv().url, key_prefix: `${prefix}lookups:` }));
    try {
      const a = entry('a.parquet', [0, 0, 1, 1], T, T + 10);
      const b = entry('b.parquet', [10, 10, 20, 20], T + 20, T + 30);
      const world = entry('world.parquet', [-180, -90, 180, 90], T + 100, T + 1_000_000_000);
      const touching = entry('touching.parquet', [1, 1, 2, 2], T + 10, T + 10);
      const precise = entry('precise.parquet', [-122.4194, 37.7749, -122.4194, 37.7749], T + 1_000_001, T + 1_000_001);
      for (const e of [a, b, world, touching, precise]) await index.add(e);

      assert.deepEqual(await index.get('a.parquet'), a);
      assert.deepEqual(await index.get('precise.parquet'), precise);
      assert.equal(await index.get('missing.parquet'), undefined);

      assert.deepEqual(keys(await index.byBbox([0.5, 0.5, 1, 1])), ['a.parquet', 'touching.parquet', 'world.parquet']);
      assert.deepEqual(keys(await index.byBbox([5, 5, 6, 6])), ['world.parquet']);
      assert.deepEqual(keys(await index.byBbox([15, 15, 16, 16])), ['b.parquet', 'world.parquet']);
      assert.deepEqual(keys(await index.byBbox([-122.4194, 37.7749, -122.4194, 37.7749])), ['precise.parquet', 'world.parquet']);
      assert.deepEqual(keys(await index.byBbox([-122.41939, 37.7749, -122.4, 37.8])), ['world.parquet']);

      assert.deepEqual(keys(await index.byTime(T + 10, T + 10)), ['a.parquet', 'touching.parquet']);
      assert.deepEqual(keys(await index.byTime(T + 11, T + 19)), []);
      assert.deepEqual(keys(await index.byTime(T + 25, T + 150)), ['b.parquet', 'world.parquet']);
      assert.deepEqual(keys(await index.byTime(T + 1_000_001, T + 1_000_001)), ['precise.parquet', 'world.parquet']);
      assert.deepEqual(keys(await index.byTime(T + 500_000_000, T + 500_000_000)), ['world.parquet']);

      // Re-adding moves the entry; removing takes it out of every lookup.
      await index.add({ ...a, bbox: [50, 50, 51, 51] });
      assert.deepEqual(keys(await index.byBbox([0.5, 0.5, 1, 1])), ['touching.parquet', 'world.parquet']);
      assert.deepEqual(keys(await index.byBbox([50.5, 50.5, 50.6, 50.6])), ['a.parquet', 'world.parquet']);
      await index.remove('world.parquet');
      await index.remove('never-added.parquet');
      assert.deepEqual(keys(await index.byBbox([5, 5, 6, 6])), []);
      assert.equal(await index.get('world.parquet'), undefined);
      assert.deepEqual(keys(await index.byTime(T, T + 2_000_000_000)), ['a.parquet', 'b.parquet', 'precise.parquet', 'touching.parquet']);
    } finally {
      await index.close();
    }
  });

  it('expires entries after ttl, refreshes ttl on add, and drops expired members from the lookups', { timeout: 20_000 }, async () => {
    const indexPrefix = `${prefix}ttl-index:`;
    const index = new RedisIndex(config({ url: redisEnv().url, key_prefix: indexPrefix, ttl: 1 }));
    const redis = rawClient();
    try {
      await index.add(entry('old', [0, 0, 1, 1], T, T));
      await index.add(entry('refreshed', [0, 0, 1, 1], T, T));
      await sleep(600);
      await index.add(entry('refreshed', [0, 0, 1, 1], T, T));
      await index.add(entry('young', [0, 0, 1, 1], T, T));
      await sleep(700);
      // 1.3 s after the first adds: `old` expired; `refreshed` and `young` were (re)added 0.7 s ago.
      assert.equal(await index.get('old'), undefined);
      assert.deepEqual(keys(await index.byTime(T, T)), ['refreshed', 'young']);
      assert.deepEqual(keys(await index.byBbox([0, 0, 1, 1])), ['refreshed', 'young']);
      assert.deepEqual((await redis.zrange(`${indexPrefix}idx:tmin`, 0, -1)).sort(), ['refreshed', 'young'], 'expired member removed');
      await sleep(1200);
      assert.deepEqual(keys(await index.byTime(T, T)), []);
      assert.equal(await index.get('young'), undefined);
    } finally {
      redis.disconnect();
      await index.close();
    }
  });

  it('fails at once with AccessDeniedError on a wrong password, without the password in the error', async () => {
    const index = new RedisIndex(config({ url: redisEnv().url, password: 'not-the-password' }));
    try {
      await assert.rejects(index.get('x'), (error: unknown) => {
        assert.ok(error instanceof AccessDeniedError, String(error));
        assert.ok(!error.describe().includes(redisEnv().password));
        return true;
      });
    } finally {
      await index.close();
    }
  });
});

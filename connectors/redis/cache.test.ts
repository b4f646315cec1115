import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NotFoundError } from '../../src/core/errors.js';
import { CachedBackend } from '../../src/storage/cached-backend.js';
import { cacheSettingsSchema, type EvictionPolicy } from '../../src/storage/cache-config.js';
import type { CacheStore } from '../../src/storage/cache-store.js';
import { MemoryCacheStore } from '../../src/storage/memory-cache-store.js';
import { backendConformance } from '../../test/conformance/backend-suite.js';
import { LocalFileStorage } from '../local-file/storage.js';
import { RedisCacheStore } from './cache.js';
import { resolveRedisConnection } from './client.js';
import { deleteByPrefix, redisEnv, runPrefix } from './test-support.js';

const prefix = runPrefix('cache');
const root = await mkdtemp(join(tmpdir(), 'earthmem-cache-'));
const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

after(() => deleteByPrefix(prefix));

let stores = 0;
const kinds: { name: string; open(maxBytes: number, policy: EvictionPolicy): CacheStore }[] = [
  { name: 'memory', open: (maxBytes, policy) => new MemoryCacheStore({ maxBytes, policy }) },
  {
    name: 'redis',
    open: (maxBytes, policy) =>
      new RedisCacheStore({
        connection: resolveRedisConnection({ url: redisEnv().url, tls: false, connect_timeout: 2000, command_timeout: 30_000 }),
        keyPrefix: `${prefix}store-${++stores}:`,
        maxBytes,
        policy,
      }),
  },
];

/** A cached local folder of its own; `direct` writes behind the cache's back. */
function cachedFolder(store: CacheStore, prefetching = false) {
  const base_path = join(root, `folder-${++stores}`);
  const direct = new LocalFileStorage({ base_path, permissions: 'rw-r--r--' });
  const cached = new CachedBackend(new LocalFileStorage({ base_path, permissions: 'rw-r--r--' }), store, { prefetching });
  return { direct, cached };
}

backendConformance({
  name: 'cached local_file + redis cache',
  open: async () => {
    const store = kinds[1]!.open(256 * 1024 * 1024, 'least-recently-used');
    return new CachedBackend(new LocalFileStorage({ base_path: join(root, 'conformance'), permissions: 'rw-r--r--' }), store, { prefetching: true });
  },
});

describe('cache_settings', () => {
  it('parses the spec examples and rejects what does not fit', () => {
    const hot = cacheSettingsSchema.parse({ max_size: '50GB', eviction_policy: 'least-recently-used', prefetching: true });
    assert.deepEqual([hot.type, hot.max_size, hot.prefetching], ['memory', 50e9, true]);
    const warm = cacheSettingsSchema.parse({ max_size: '200GB', eviction_policy: 'least-frequently-used' });
    assert.equal(warm.prefetching, false);
    const production = cacheSettingsSchema.parse({ type: 'redis', url: 'redis://127.0.0.1:6379/0', max_size: '10GB' });
    assert.equal(production.eviction_policy, 'least-recently-used');
    assert.equal(cacheSettingsSchema.safeParse({ type: 'redis', max_size: '1GB' }).success, false, 'redis needs url');
    assert.equal(cacheSettingsSchema.safeParse({ max_size: '1GB', eviction_policy: 'random' }).success, false);
    assert.equal(cacheSettingsSchema.safeParse({ max_size: '1GB', size: 1 }).success, false);
  });
});

for (const kind of kinds) {
  describe(`CachedBackend with the ${kind.name} cache store`, () => {
    const closing: CachedBackend[] = [];
    after(async () => {
      for (const backend of closing) await backend.close();
    });
    const open = (maxBytes: number, policy: EvictionPolicy = 'least-recently-used', prefetching = false) => {
      const folder = cachedFolder(kind.open(maxBytes, policy), prefetching);
      closing.push(folder.cached);
      return folder;
    };

    it('counts misses and hits, and serves hits without the backend', async () => {
      const { direct, cached } = open(1024);
      await cached.put('a/1', text('one'));
      assert.equal(decode(await cached.get('a/1')), 'one');
      assert.equal(decode(await cached.get('a/1')), 'one');
      await direct.delete('a/1');
      assert.equal(decode(await cached.get('a/1')), 'one', 'a hit does not read the backend');
      assert.deepEqual(await cached.getRange('a/1', 1, 5), text('ne'));
      await assert.rejects(cached.get('a/missing'), NotFoundError);
      const stats = await cached.stats();
      assert.deepEqual([stats.misses, stats.hits, stats.entries, stats.bytes], [2, 3, 1, 3]);
    });

    it('invalidates on put and delete (write-through)', async () => {
      const { cached } = open(1024);
      await cached.put('w/1', text('old'));
      await cached.get('w/1');
      assert.ok(await cached.cache.has('w/1'));
      await cached.put('w/1', text('new'));
      assert.equal(await cached.cache.has('w/1'), false);
      assert.equal(decode(await cached.get('w/1')), 'new');
      await cached.delete('w/1');
      assert.equal(await cached.cache.has('w/1'), false);
      await assert.rejects(cached.get('w/1'), NotFoundError);
    });

    it('keeps the cached bytes within max_size and never caches an object larger than it', async () => {
      const { cached } = open(250);
      for (let i = 0; i < 6; i++) {
        await cached.put(`m/${i}`, bytes(100, i));
        await cached.get(`m/${i}`);
        assert.ok((await cached.stats()).bytes <= 250);
      }
      const stats = await cached.stats();
      assert.deepEqual([stats.entries, stats.bytes, stats.evictions], [2, 200, 4]);
      await cached.put('m/big', bytes(251, 9));
      await cached.get('m/big');
      await cached.get('m/big');
      assert.equal(await cached.cache.has('m/big'), false);
      assert.equal((await cached.stats()).misses, 8);
    });

    for (const [policy, evicted, kept] of [
      ['least-recently-used', 'e/a', 'e/b'],
      ['least-frequently-used', 'e/b', 'e/a'],
    ] as const) {
      it(`${policy} evicts ${evicted}, keeps ${kept}`, async () => {
        const { cached } = open(300, policy);
        for (const key of ['e/a', 'e/b', 'e/c', 'e/d']) await cached.put(key, bytes(100, 1));
        // a: used three times but longest ago; b and c: used once, later.
        await cached.get('e/a');
        await cached.get('e/a');
        await cached.get('e/a');
        await cached.get('e/b');
        await cached.get('e/c');
        await cached.get('e/d');
        assert.equal(await cached.cache.has(evicted), false, `${evicted} evicted`);
        assert.ok(await cached.cache.has(kept), `${kept} kept`);
        assert.ok(await cached.cache.has('e/d'));
        assert.equal((await cached.stats()).evictions, 1);
      });
    }

    it('with prefetching, caches what is written (streamed too) and loads the next key after a get', async () => {
      const { direct, cached } = open(1000, 'least-recently-used', true);
      await cached.put('p/written', text('allocated'));
      await cached.put('p/streamed', (async function* () { yield text('str'); yield text('eamed'); })());
      await cached.put('p/too-big', (async function* () { yield bytes(600, 1); yield bytes(600, 2); })());
      assert.equal(decode((await cached.cache.get('p/written'))!), 'allocated');
      assert.equal(decode((await cached.cache.get('p/streamed'))!), 'streamed');
      assert.equal(await cached.cache.has('p/too-big'), false);

      for (const key of ['q/1', 'q/2', 'q/3', 'q/sub/9']) await direct.put(key, text(key));
      await cached.get('q/1');
      await cached.idle();
      assert.ok(await cached.cache.has('q/2'), 'q/2 prefetched after q/1');
      assert.equal(await cached.cache.has('q/3'), false, 'one key ahead only');
      const before = await cached.stats();
      assert.equal(decode(await cached.get('q/2')), 'q/2');
      assert.equal((await cached.stats()).hits, before.hits + 1);
      await cached.idle();
      assert.ok(await cached.cache.has('q/3'));
      assert.ok((await cached.stats()).prefetched >= 2);
    });
  });
}

describe('two workers sharing a redis cache', () => {
  it('see one accounting, and a write by one invalidates the other', async () => {
    const keyPrefix = `${prefix}shared:`;
    const store = () =>
      new RedisCacheStore({
        connection: resolveRedisConnection({ url: redisEnv().url, tls: false, connect_timeout: 2000, command_timeout: 30_000 }),
        keyPrefix,
        maxBytes: 250,
        policy: 'least-recently-used',
      });
    const base_path = join(root, 'shared');
    const one = new CachedBackend(new LocalFileStorage({ base_path, permissions: 'rw-r--r--' }), store());
    const two = new CachedBackend(new LocalFileStorage({ base_path, permissions: 'rw-r--r--' }), store());
    try {
      await one.put('s/1', bytes(100, 1));
      await one.get('s/1');
      assert.deepEqual(await two.get('s/1'), bytes(100, 1));
      assert.equal((await two.stats()).hits, 1, "worker two hit worker one's entry");
      await Promise.all([1, 2, 3, 4].map((i) => one.put(`s/x${i}`, bytes(100, i)).then(() => (i % 2 ? one : two).get(`s/x${i}`))));
      const stats = await one.stats();
      assert.ok(stats.bytes <= 250 && stats.entries === 2, JSON.stringify(stats));
      await two.put('s/x4', bytes(100, 44));
      assert.deepEqual(await one.get('s/x4'), bytes(100, 44));
    } finally {
      await one.close();
      await two.close();
    }
  });
});

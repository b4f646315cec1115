/**
 * The Zarr store lock (withStoreLock): two writers of one store that share nothing but the
 * catalog (two tiers opened apart, as two workers open theirs) take turns, and a lease left by a
 * killed holder is waited out, not broken.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SqliteCatalog } from '../../../src/catalog/sqlite.js';
import { parseConfigValue } from '../../../src/config/load.js';
import { pipelineSchema } from '../../../src/pipeline/schema.js';
import { closeTier, openTier, withStoreLock, type StoreSink } from '../../../src/pipeline/tier-writer.js';
import { tempDir } from '../../support/fixtures.js';

const dir = tempDir('store-lock');
const config = parseConfigValue(
  {
    source: { type: 'file', path: 'in.ndjson' },
    storage: { tier_configs: { warm: { primary_backend: { type: 'zarr', store_path: join(dir, 'warm') } } } },
    routing: { default: 'warm' },
    catalog: { type: 'sqlite', path: join(dir, 'catalog.sqlite') },
    dead_letter: { type: 'local_file', path: join(dir, 'dl.ndjson') },
  },
  'p.yaml',
  pipelineSchema,
);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The shared catalog and `count` Zarr sinks opened apart (as `count` workers open theirs), closed after `use`. */
async function withSinks(count: number, use: (catalog: SqliteCatalog, sinks: StoreSink[]) => Promise<void>): Promise<void> {
  const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'));
  const tiers = await Promise.all(Array.from({ length: count }, () => openTier('warm', config.storage.tier_configs.warm!, config)));
  try {
    await use(catalog, tiers.map((t) => t.primary as StoreSink));
  } finally {
    await Promise.all(tiers.map(closeTier));
    await catalog.close();
  }
}

describe('withStoreLock', () => {
  it('two writers of one store, each with its own sink: their work never overlaps, and a third store is not held up', async () => {
    await withSinks(2, async (catalog, sinks) => {
      const spans: { who: number; root: string; start: number; end: number }[] = [];
      const work = (who: number, root: string) => async () => {
        const start = performance.now();
        await sleep(60);
        spans.push({ who, root, start, end: performance.now() });
      };
      const root = 'M/2024/03/d.zarr';
      await Promise.all([
        ...[0, 1, 2].map(() => withStoreLock(sinks[0]!, catalog, root, {}, work(0, root), { shared: true })),
        ...[0, 1, 2].map(() => withStoreLock(sinks[1]!, catalog, root, {}, work(1, root), { shared: true })),
        withStoreLock(sinks[1]!, catalog, 'M/2024/03/other.zarr', {}, work(1, 'other'), { shared: true }),
      ]);
      const same = spans.filter((s) => s.root === root).sort((a, b) => a.start - b.start);
      assert.equal(same.length, 6);
      for (let i = 1; i < same.length; i++) assert.ok(same[i]!.start >= same[i - 1]!.end, `appends ${i - 1} and ${i} overlap: ${JSON.stringify(same)}`);
      assert.deepEqual(new Set(same.map((s) => s.who)), new Set([0, 1]));
      const other = spans.find((s) => s.root === 'other')!;
      assert.ok(other.end - other.start < 200 && other.start - same[0]!.start < 100, 'another store runs beside');
      assert.equal(await catalog.lease(`zarr store ${sinks[0]!.uri(root)}`), undefined, 'released after');
    });
  });

  it("waits for a killed holder's lease to expire, then goes on", async () => {
    await withSinks(1, async (catalog, [sink]) => {
      const root = 'M/2024/04/d.zarr';
      // A worker killed while appending: its lease stays until it expires (1.5 s here).
      assert.ok(await catalog.acquireLease(`zarr store ${sink.uri(root)}`, 'killed-worker', 1_500));
      const started = performance.now();
      let ranAt = 0;
      await withStoreLock(sink, catalog, root, {}, async () => {
        ranAt = performance.now();
      }, { shared: true });
      assert.ok(ranAt - started >= 1_300, `ran after ${Math.round(ranAt - started)} ms, before the lease expired`);
    });
  });

  it('takes over at once a lease whose holder was killed on this host', async () => {
    await withSinks(1, async (catalog, [sink]) => {
      const root = 'M/2024/05/d.zarr';
      const gone = spawnSync(process.execPath, ['-e', '']);
      assert.ok(await catalog.acquireLease(`zarr store ${sink.uri(root)}`, `${hostname()}:${gone.pid}:dead`, 60_000));
      const started = performance.now();
      await withStoreLock(sink, catalog, root, {}, async () => undefined, { shared: true });
      assert.ok(performance.now() - started < 1_000, 'no wait for the 60 s lease');
    });
  });

  it('a source no other worker reads takes no lease', async () => {
    await withSinks(1, async (catalog, [sink]) => {
      const root = 'M/2024/06/d.zarr';
      assert.ok(await catalog.acquireLease(`zarr store ${sink.uri(root)}`, 'another-worker', 60_000));
      let ran = false;
      await withStoreLock(sink, catalog, root, {}, async () => {
        ran = true;
      }, { shared: false });
      assert.ok(ran);
    });
  });
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { inspect } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { CATALOG_SCHEMA_VERSION, type Catalog, type CatalogEntry, type CatalogRow, type SourcePartition } from '../../src/catalog/catalog.js';
import { PostgresCatalog } from '../../src/catalog/postgresql.js';
import { SqliteCatalog } from '../../src/catalog/sqlite.js';
import { CatalogError, FencedError } from '../../src/core/errors.js';
import { tempDir } from '../support/fixtures.js';

const isoTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

function entry(overrides: Partial<CatalogEntry> = {}): CatalogEntry {
  return {
    key: 'TemperatureMemory/2024/03/ghcn/part-00000100-00001099.parquet',
    tier: 'hot',
    backend: 'local_file',
    uri: 'file:///data/hot/TemperatureMemory/2024/03/ghcn/part-00000100-00001099.parquet',
    memoryType: 'TemperatureMemory',
    dataset: 'ghcn',
    kind: 'point',
    partitionPath: '2024/03/ghcn',
    format: 'geoparquet',
    codec: 'zstd',
    codecLevel: 9,
    bytes: 6_000_000_123,
    rows: 1000,
    timeMinUs: 1_709_251_200_000_000,
    timeMaxUs: 1_711_929_599_999_999,
    bbox: [-122.515625, 37.25, -121.75, 38.1],
    sha256: 'a'.repeat(64),
    provenance: [{ source: 'observations', partition: 0, firstOffset: 100, lastOffset: 1099, count: 1000 }],
    state: 'committed',
    ...overrides,
  };
}

/** A single-partition entry covering `firstOffset..lastOffset` of `source`[`partition`]. */
function covering(key: string, source: string, partition: number, firstOffset: number, lastOffset: number,
  overrides: Partial<CatalogEntry> = {}): CatalogEntry {
  return entry({
    key,
    provenance: [{ source, partition, firstOffset, lastOffset, count: lastOffset - firstOffset + 1 }],
    ...overrides,
  });
}

/** The entry part of a row (what `upsert` was given), checked to hold no other fields. */
function stored(row: CatalogRow): CatalogEntry {
  const { createdAt, updatedAt, lastAccessedAt, accessCount, tierSince, ...rest } = row;
  return rest;
}

async function withCatalog(open: () => Promise<Catalog>, use: (catalog: Catalog) => Promise<void>): Promise<void> {
  const catalog = await open();
  try {
    await use(catalog);
  } finally {
    await catalog.close();
  }
}

/** The Catalog contract: every implementation must pass this suite; `open` gives an empty catalog. */
function catalogConformance(name: string, open: () => Promise<Catalog>): void {
  describe(`Catalog conformance: ${name}`, () => {
    it('round-trips every field of an entry, with numbers as numbers and times as ISO strings', () =>
      withCatalog(open, async (catalog) => {
        const point = entry();
        const polygons = entry({
          key: 'HazardMemory/firms/year=2024/month=03/part-0.parquet',
          tier: 'cold',
          backend: 's3',
          uri: 's3://bucket/cold/HazardMemory/firms/year=2024/month=03/part-0.parquet',
          memoryType: 'HazardMemory',
          dataset: 'firms',
          kind: 'vector',
          partitionPath: 'firms/year=2024/month=03',
          codec: 'snappy',
          codecLevel: null,
          bytes: 0,
          rows: 1,
          timeMinUs: -86_400_000_000,
          timeMaxUs: 0,
          bbox: [-180, -90, 180, 90],
          sha256: 'b'.repeat(64),
          provenance: [
            { source: 'fires', partition: 3, firstOffset: 7, lastOffset: 9, count: 2 },
            { source: 'fires', partition: 1, firstOffset: 0, lastOffset: 4_000_000_000_000, count: 5 },
          ],
          state: 'migrating',
        });
        const before = Date.now();
        await catalog.upsert([point, polygons]);
        const after = Date.now();
        const rows = await catalog.list();
        assert.deepEqual(rows.map(stored), [polygons, point], 'ordered by tier, key');
        // Same key order as given (the CLI prints provenance as JSON).
        assert.equal(JSON.stringify(rows[0]!.provenance), JSON.stringify(polygons.provenance));
        for (const row of rows) {
          assert.match(row.createdAt, isoTime);
          assert.equal(row.updatedAt, row.createdAt);
          // The server's clock may be used: same machine here, so a loose bound.
          const created = Date.parse(row.createdAt);
          assert.ok(created >= before - 5_000 && created <= after + 5_000, `createdAt ${row.createdAt} is now`);
          assert.equal(row.lastAccessedAt, null);
          assert.equal(row.accessCount, 0);
          for (const value of [row.bytes, row.rows, row.timeMinUs, row.timeMaxUs, row.accessCount, ...row.bbox]) {
            assert.equal(typeof value, 'number');
          }
        }
      }));

    it('round-trips a raster object with its scene fields (schema version 3), NaN nodata and windows included', () =>
      withCatalog(open, async (catalog) => {
        const scene = entry({
          key: 'SatelliteMemory/sentinel2/2024/03/S2A_ndvi_20240301T103000Z.tif',
          tier: 'hot',
          kind: 'raster',
          format: 'cog',
          codec: 'deflate',
          codecLevel: 6,
          rows: 15,
          raster: {
            sceneId: 'S2A', variable: 'ndvi', epsg: 32633, width: 700, height: 530, dtype: 'float32', bands: 1, nodata: 'nan', overviews: 2,
            bboxNative: [500000, 5294700, 507000, 5300000], partial: true, missingBlocks: 2, tiles: 15, windows: [[0, 0, 200, 150], [200, 0, 200, 150]],
          },
        });
        await catalog.upsert([scene]);
        const [row] = await catalog.list({ key: scene.key });
        assert.deepEqual(stored(row!), scene);
        // JSONB reorders keys: compare the values, not the text.
        assert.deepEqual(row!.raster, scene.raster);
      }));

    it('orders rows by tier then key in byte order', () =>
      withCatalog(open, async (catalog) => {
        const keys = ['b', 'B', '_b', 'a', 'ä', 'a/b', 'a-b', 'A'];
        await catalog.upsert(keys.map((key) => entry({ key, tier: 'warm' })));
        await catalog.upsert([entry({ key: 'z', tier: 'cold' })]);
        const rows = await catalog.list();
        const byteOrder = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        assert.deepEqual(rows.map((r) => `${r.tier}:${r.key}`), ['cold:z', ...byteOrder.map((k) => `warm:${k}`)]);
      }));

    it('a replay of the same entry leaves the row identical; a changed object keeps createdAt and access counts', () =>
      withCatalog(open, async (catalog) => {
        const original = entry();
        await catalog.upsert([original]);
        const [first] = await catalog.list();
        await sleep(20);
        await catalog.upsert([original]);
        assert.deepEqual(await catalog.list(), [first], 'replay changes nothing, not even updatedAt');

        await catalog.recordAccess(original.tier, original.key);
        await sleep(20);
        const rewritten = entry({ sha256: 'c'.repeat(64), bytes: 42, rows: 7, codecLevel: null, state: 'migrating' });
        await catalog.upsert([rewritten]);
        const [second, ...others] = await catalog.list();
        assert.deepEqual(others, []);
        assert.deepEqual(stored(second!), rewritten);
        assert.equal(second!.createdAt, first!.createdAt);
        assert.ok(second!.updatedAt > first!.updatedAt, 'a new checksum moves updatedAt');
        assert.equal(second!.accessCount, 1);
        assert.notEqual(second!.lastAccessedAt, null);
      }));

    it('the same key in one upsert: the last entry wins', () =>
      withCatalog(open, async (catalog) => {
        await catalog.upsert([entry({ rows: 1 }), entry({ key: 'other' }), entry({ rows: 3, sha256: 'd'.repeat(64) })]);
        const rows = await catalog.list();
        assert.deepEqual(rows.map((r) => [r.key, r.rows]), [['TemperatureMemory/2024/03/ghcn/part-00000100-00001099.parquet', 3], ['other', 1000]]);
      }));

    it('an object lives in one tier: the same object upserted in a second tier is not written, and is reported', () =>
      withCatalog(open, async (catalog) => {
        const hot = entry();
        const warm = entry({ tier: 'warm', backend: 's3', uri: 's3://bucket/warm/x', codec: 'lz4_raw', codecLevel: null });
        assert.deepEqual(await catalog.upsert([hot]), []);
        assert.deepEqual(await catalog.upsert([warm]), [{ entry: warm, tier: 'hot' }]);
        assert.deepEqual((await catalog.list()).map(stored), [hot]);
      }));

    it('filters by memory type, tier and dataset, together', () =>
      withCatalog(open, async (catalog) => {
        await catalog.upsert([
          entry({ key: 't-hot-ghcn' }),
          entry({ key: 't-hot-isd', dataset: 'isd' }),
          entry({ key: 't-warm-ghcn', tier: 'warm' }),
          entry({ key: 'p-hot-ghcn', memoryType: 'PrecipitationMemory' }),
        ]);
        const keys = async (filter: Parameters<Catalog['list']>[0]) => (await catalog.list(filter)).map((r) => r.key);
        assert.deepEqual(await keys({ memoryType: 'TemperatureMemory' }), ['t-hot-ghcn', 't-hot-isd', 't-warm-ghcn']);
        assert.deepEqual(await keys({ tier: 'hot' }), ['p-hot-ghcn', 't-hot-ghcn', 't-hot-isd']);
        assert.deepEqual(await keys({ dataset: 'isd' }), ['t-hot-isd']);
        assert.deepEqual(await keys({ memoryType: 'TemperatureMemory', tier: 'hot', dataset: 'ghcn' }), ['t-hot-ghcn']);
        assert.deepEqual(await keys({ tier: 'glacier' }), []);
        assert.deepEqual(await keys({}), ['p-hot-ghcn', 't-hot-ghcn', 't-hot-isd', 't-warm-ghcn']);
      }));

    it('recordAccess counts accesses of one (tier, key) and ignores unknown ones', () =>
      withCatalog(open, async (catalog) => {
        await catalog.upsert([entry(), entry({ tier: 'warm' })]);
        const before = Date.now();
        await catalog.recordAccess('hot', entry().key);
        await catalog.recordAccess('hot', entry().key);
        await catalog.recordAccess('hot', 'no/such/key');
        const [hot, warm] = await catalog.list();
        assert.equal(hot!.accessCount, 2);
        assert.match(hot!.lastAccessedAt!, isoTime);
        assert.ok(Date.parse(hot!.lastAccessedAt!) >= before - 5_000);
        assert.equal(hot!.updatedAt, hot!.createdAt, 'an access is not an update');
        assert.equal(warm!.accessCount, 0);
        assert.equal(warm!.lastAccessedAt, null);
      }));

    it('coverage: single-partition objects, in any state, of the partition with lastOffset >= fromOffset, by firstOffset', () =>
      withCatalog(open, async (catalog) => {
        await catalog.upsert([
          covering('b-200', 'obs', 0, 200, 299, { tier: 'warm', memoryType: 'AtmosphereMemory', dataset: 'isd', partitionPath: 'p/2' }),
          covering('a-200', 'obs', 0, 200, 250, { tier: 'warm' }),
          covering('z-200', 'obs', 0, 200, 220, { tier: 'cold', kind: 'vector' }),
          covering('a-100', 'obs', 0, 100, 199),
          covering('h-150', 'obs', 0, 150, 160),
          covering('before', 'obs', 0, 0, 149),
          covering('migrating', 'obs', 0, 300, 399, { state: 'migrating' }),
          covering('other-partition', 'obs', 1, 0, 999),
          covering('other-source', 'obs2', 0, 0, 999),
          entry({
            key: 'two-partitions',
            provenance: [
              { source: 'obs', partition: 0, firstOffset: 500, lastOffset: 599, count: 100 },
              { source: 'obs', partition: 1, firstOffset: 500, lastOffset: 599, count: 100 },
            ],
          }),
          entry({ key: 'no-provenance', provenance: [] }),
        ]);
        const ranges = await catalog.coverage('obs', 0, 150);
        const range = (key: string, tier: string, firstOffset: number, lastOffset: number, extra = {}) => ({
          key, tier, memoryType: 'TemperatureMemory', kind: 'point', dataset: 'ghcn', partitionPath: '2024/03/ghcn',
          source: 'obs', partition: 0, firstOffset, lastOffset, ...extra,
        });
        assert.deepEqual(ranges, [
          range('a-100', 'hot', 100, 199),
          range('h-150', 'hot', 150, 160),
          range('z-200', 'cold', 200, 220, { kind: 'vector' }),
          range('a-200', 'warm', 200, 250),
          range('b-200', 'warm', 200, 299, { memoryType: 'AtmosphereMemory', dataset: 'isd', partitionPath: 'p/2' }),
          range('migrating', 'hot', 300, 399),
        ]);
        assert.deepEqual((await catalog.coverage('obs', 0, 299)).map((r) => r.key), ['b-200', 'migrating'], 'lastOffset == fromOffset counts');
        // An object in the middle of a move still covers its records: it is durable where it is.
        assert.deepEqual((await catalog.coverage('obs', 0, 300)).map((r) => r.key), ['migrating']);
        assert.deepEqual(await catalog.coverage('obs', 0, 400), []);
        assert.deepEqual(await catalog.coverage('obs', 7, 0), []);
        assert.deepEqual((await catalog.coverage('obs', 1, 0)).map((r) => r.key), ['other-partition']);

        // A single-partition object rewritten with two ranges no longer covers anything.
        await catalog.upsert([entry({ key: 'a-100', provenance: [
          { source: 'obs', partition: 0, firstOffset: 100, lastOffset: 199, count: 100 },
          { source: 'obs', partition: 1, firstOffset: 0, lastOffset: 0, count: 1 },
        ] })]);
        assert.deepEqual((await catalog.coverage('obs', 0, 0)).map((r) => r.key), ['before', 'h-150', 'z-200', 'a-200', 'b-200', 'migrating']);
      }));

    it('claimPartitions bumps each partition\'s epoch, from 1, and returns claims in the order asked', () =>
      withCatalog(open, async (catalog) => {
        const p0 = { source: 'obs', partition: 0 };
        const p1 = { source: 'obs', partition: 1 };
        const q0 = { source: 'other', partition: 0 };
        assert.deepEqual(await catalog.claimPartitions('w1', [p0, p1]), [{ ...p0, epoch: 1 }, { ...p1, epoch: 1 }]);
        assert.deepEqual(await catalog.claimPartitions('w2', [p0]), [{ ...p0, epoch: 2 }]);
        assert.deepEqual(await catalog.claimPartitions('w3', [q0, p1, p0]), [
          { ...q0, epoch: 1 }, { ...p1, epoch: 2 }, { ...p0, epoch: 3 },
        ]);
        assert.deepEqual(await catalog.claimPartitions('w3', []), []);
      }));

    it('an upsert fenced by a superseded claim writes nothing and throws FencedError; the current claim writes', () =>
      withCatalog(open, async (catalog) => {
        const p0 = { source: 'obs', partition: 0 };
        const p1 = { source: 'obs', partition: 1 };
        const [old0, old1] = await catalog.claimPartitions('worker-a', [p0, p1]);
        const first = covering('k1', 'obs', 0, 0, 9);
        await catalog.upsert([first], [old0!, old1!]);
        const [current0] = await catalog.claimPartitions('worker-b', [p0]);

        const isFenced = (error: unknown) => {
          assert.ok(error instanceof FencedError, `FencedError expected, got ${inspect(error)}`);
          assert.equal(error.retriable, false);
          assert.equal(error.context.source, 'obs');
          assert.equal(error.context.partition, 0);
          return true;
        };
        const rewrite = covering('k1', 'obs', 0, 0, 9, { sha256: 'e'.repeat(64) });
        await assert.rejects(catalog.upsert([covering('k2', 'obs', 0, 10, 19), rewrite], [old0!]), isFenced);
        await assert.rejects(catalog.upsert([covering('k2', 'obs', 0, 10, 19)], [old1!, old0!]), isFenced, 'one stale claim is enough');
        await assert.rejects(catalog.upsert([], [old0!]), isFenced, 'a fence alone is checked too');
        await assert.rejects(
          catalog.upsert([covering('k3', 'obs', 5, 0, 1)], [{ source: 'obs', partition: 5, epoch: 1 }]),
          (error) => error instanceof FencedError,
          'a partition never claimed fences every claim',
        );
        assert.deepEqual((await catalog.list()).map(stored), [first], 'nothing of a fenced upsert is written');

        const second = covering('k2', 'obs', 0, 10, 19);
        await catalog.upsert([second, rewrite], [current0!, old1!]);
        assert.deepEqual((await catalog.list()).map(stored), [rewrite, second]);
      }));

    it('keeps a migration journal: a job and its steps once, steps forward, object state migrating while copied', () =>
      withCatalog(open, async (catalog) => {
        const a = entry({ key: 'a.parquet' });
        const b = entry({ key: 'b.parquet', bytes: 10 });
        await catalog.upsert([a, b]);
        const steps = [
          { sourceTier: 'hot', sourceKey: 'a.parquet', destinationTier: 'warm', bytes: a.bytes },
          { sourceTier: 'hot', sourceKey: 'b.parquet', destinationTier: 'warm', bytes: b.bytes },
        ];
        await catalog.createMigrationJob({ id: 'job-1', spec: { source_tier: 'hot', destination_tier: 'warm' }, planHash: 'h1' }, steps);
        // The same id again (a resume) changes nothing, even with another plan.
        await catalog.createMigrationJob({ id: 'job-1', spec: {}, planHash: 'h2' }, steps.slice(0, 1));
        const created = (await catalog.migrationJob('job-1'))!;
        assert.equal(created.job.planHash, 'h1');
        assert.deepEqual(created.job.spec, { source_tier: 'hot', destination_tier: 'warm' });
        assert.equal(created.job.state, 'planned');
        assert.match(created.job.createdAt, isoTime);
        assert.deepEqual(created.steps.map((s) => [s.sourceKey, s.state, s.bytes, s.written]), [['a.parquet', 'planned', a.bytes, null], ['b.parquet', 'planned', 10, null]]);
        assert.equal(await catalog.migrationJob('nope'), undefined);

        const written = { key: 'a.parquet', backend: 's3', uri: 's3://w/a.parquet', format: 'parquet', codec: 'zstd', codecLevel: 19, bytes: 99, rows: 1000, sha256: 'd'.repeat(64), manifest: { keys: [{ key: 'a.parquet', bytes: 99, sha256: 'd'.repeat(64) }], rows: 1000, bbox: [0, 0, 1, 1] as [number, number, number, number], timeMinUs: 1, timeMaxUs: 2, schema: ['id', 'geometry'], contentHash: 'e'.repeat(64) } };
        await catalog.updateMigrationStep('job-1', 'hot', 'a.parquet', 'copied', { written });
        assert.equal((await catalog.list({ key: 'a.parquet' }))[0]!.state, 'migrating');
        await catalog.updateMigrationStep('job-1', 'hot', 'a.parquet', 'verified');
        await catalog.updateMigrationStep('job-1', 'hot', 'b.parquet', 'copied', { written: { ...written, key: 'b.parquet' } });
        await catalog.updateMigrationStep('job-1', 'hot', 'b.parquet', 'failed', { note: 'sha256 differs at the destination' });
        assert.equal((await catalog.list({ key: 'b.parquet' }))[0]!.state, 'committed', 'a failed move leaves the source as it was');
        await catalog.setMigrationJobState('job-1', 'running');
        const later = (await catalog.migrationJob('job-1'))!;
        assert.equal(later.job.state, 'running');
        assert.deepEqual(later.steps.map((s) => [s.state, s.written, s.note]), [['verified', written, null], ['failed', { ...written, key: 'b.parquet' }, 'sha256 differs at the destination']]);
        assert.deepEqual((await catalog.openMigrationSteps()).map((s) => s.sourceKey).sort(), ['a.parquet', 'b.parquet']);
      }));

    it('switches an object\'s tier in one transaction, keeping its created and access times; refuses a changed source', () =>
      withCatalog(open, async (catalog) => {
        const source = entry({ key: 'a.parquet' });
        await catalog.upsert([source]);
        await catalog.recordAccess('hot', 'a.parquet');
        const [before] = await catalog.list();
        await catalog.createMigrationJob({ id: 'job-2', spec: {}, planHash: 'h' }, [{ sourceTier: 'hot', sourceKey: 'a.parquet', destinationTier: 'cold', bytes: source.bytes }]);
        const moved = { ...source, tier: 'cold', backend: 'gcs', uri: 'gs://c/a.parquet', codecLevel: 19, bytes: 5, sha256: 'f'.repeat(64) };
        await assert.rejects(
          catalog.switchTier('job-2', [{ tier: 'hot', key: 'a.parquet', sha256: 'not-it' }], moved),
          (error: unknown) => error instanceof CatalogError && /no longer the object that was planned \(rewritten\)/.test(error.message),
        );
        assert.deepEqual((await catalog.list()).map((r) => r.tier), ['hot'], 'a refused switch changes nothing');
        await catalog.switchTier('job-2', [{ tier: 'hot', key: 'a.parquet', sha256: source.sha256 }], moved);
        const rows = await catalog.list();
        assert.equal(rows.length, 1);
        assert.deepEqual(stored(rows[0]!), moved);
        assert.equal(rows[0]!.createdAt, before!.createdAt);
        assert.equal(rows[0]!.accessCount, 1);
        assert.equal(rows[0]!.lastAccessedAt, before!.lastAccessedAt);
        assert.equal((await catalog.migrationJob('job-2'))!.steps[0]!.state, 'switched');
        // Coverage follows the object to its new tier.
        assert.deepEqual((await catalog.coverage('observations', 0, 0)).map((r) => r.tier), ['cold']);
        await assert.rejects(catalog.switchTier('job-2', [{ tier: 'hot', key: 'a.parquet', sha256: source.sha256 }], moved), /\(gone\)/);
        await catalog.updateMigrationStep('job-2', 'hot', 'a.parquet', 'source_deleted');
        assert.deepEqual(await catalog.openMigrationSteps(), []);

        // A late rebuild of the moved object (a redelivery routed to hot) is not catalogued again:
        // the same object, even as rows (another extension), lives in cold now.
        assert.deepEqual(await catalog.upsert([source]), [{ entry: source, tier: 'cold' }]);
        const asRows = { ...source, key: 'a.rows', format: 'sqlite-rows' };
        assert.deepEqual(await catalog.upsert([asRows, entry({ key: 'b.parquet' })]), [{ entry: asRows, tier: 'cold' }]);
        assert.deepEqual((await catalog.list()).map((r) => `${r.tier} ${r.key}`), ['cold a.parquet', 'hot b.parquet']);
      }));

    it('leases: one owner at a time, renewable by its owner, free again when released or expired', () =>
      withCatalog(open, async (catalog) => {
        assert.equal(await catalog.acquireLease('aging', 'a', 60_000), true);
        assert.equal(await catalog.acquireLease('aging', 'b', 60_000), false, 'held by a');
        assert.equal(await catalog.acquireLease('aging', 'a', 60_000), true, 'a renews');
        assert.equal((await catalog.lease('aging'))?.owner, 'a');
        await catalog.releaseLease('aging', 'b');
        assert.equal((await catalog.lease('aging'))?.owner, 'a', 'only the owner releases');
        await catalog.releaseLease('aging', 'a');
        assert.equal(await catalog.lease('aging'), undefined);
        assert.equal(await catalog.acquireLease('aging', 'b', 1), true);
        await sleep(20);
        assert.equal(await catalog.lease('aging'), undefined, 'expired');
        assert.equal(await catalog.acquireLease('aging', 'c', 60_000), true, 'an expired lease is taken over');
        // Migration jobs by id prefix, oldest first.
        await catalog.createMigrationJob({ id: 'aging:hot-to-warm:1', spec: {}, planHash: 'h' }, []);
        await sleep(5);
        await catalog.createMigrationJob({ id: 'aging:hot-to-warm:2', spec: {}, planHash: 'h' }, []);
        await catalog.createMigrationJob({ id: 'aging:warm-to-cold:1', spec: {}, planHash: 'h' }, []);
        assert.deepEqual((await catalog.migrationJobs('aging:hot-to-warm:')).map((j) => j.id), ['aging:hot-to-warm:1', 'aging:hot-to-warm:2']);
      }));

    it('close can be called twice', async () => {
      const catalog = await open();
      await catalog.close();
      await catalog.close();
    });
  });
}

// --- SQLite: a fresh file per catalog -------------------------------------------------------

const sqliteDirs: string[] = [];
catalogConformance('sqlite', async () => {
  const dir = tempDir('catalog');
  sqliteDirs.push(dir);
  return new SqliteCatalog(join(dir, 'catalog.sqlite'));
});
after(() => {
  for (const dir of sqliteDirs) rmSync(dir, { recursive: true, force: true });
});

describe('SqliteCatalog schema versions', () => {
  it('upgrades a catalog file written by the first release in place, keeping every row', async () => {
    const dir = tempDir('catalog-v1');
    sqliteDirs.push(dir);
    const file = join(dir, 'catalog.sqlite');
    copyFileSync('test/fixtures/catalog-v1.sqlite', file);
    const v1 = new Database(file, { readonly: true });
    const v1Rows = v1.prepare('SELECT * FROM objects ORDER BY tier, key').all();
    assert.equal((v1.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'catalog_meta'").get() as { n: number }).n, 0, 'the fixture is a first-release file');
    v1.close();
    assert.equal(v1Rows.length, 14);

    const catalog = new SqliteCatalog(file);
    assert.equal(catalog.schemaVersion, CATALOG_SCHEMA_VERSION);
    const rows = await catalog.list();
    assert.deepEqual(rows.map((r) => r.key), (v1Rows as { key: string }[]).map((r) => r.key));
    await catalog.createMigrationJob({ id: 'after-upgrade', spec: {}, planHash: 'h' }, []);
    await catalog.close();
    // Opening again is a no-op; the rows are the first release's, column for column.
    const again = new SqliteCatalog(file);
    assert.equal(again.schemaVersion, CATALOG_SCHEMA_VERSION);
    await again.close();
    const upgraded = new Database(file, { readonly: true });
    const rowsNow = upgraded.prepare('SELECT * FROM objects ORDER BY tier, key').all() as { key: string; object_id: string; tier_since: string; created_at: string; raster: string | null }[];
    upgraded.close();
    assert.deepEqual(rowsNow.map(({ object_id: _id, tier_since: _since, raster: _raster, ...rest }) => rest), v1Rows);
    // Version 3's raster column: empty for the batches of earlier releases.
    for (const r of rowsNow) assert.equal(r.raster, null);
    // The identity column the upgrade adds is filled in for every first-release row.
    for (const r of rowsNow) assert.equal(r.object_id, r.key.replace(/\.parquet$/, ''));
    for (const r of rowsNow) assert.equal(r.tier_since, r.created_at, 'an object is in its tier since it was written');
  });

  it('refuses a catalog from a newer release, naming both versions', () => {
    const dir = tempDir('catalog-future');
    sqliteDirs.push(dir);
    const file = join(dir, 'catalog.sqlite');
    new SqliteCatalog(file).close();
    const db = new Database(file);
    db.prepare("UPDATE catalog_meta SET value = 99 WHERE name = 'schema_version'").run();
    db.close();
    assert.throws(() => new SqliteCatalog(file), (error: unknown) => error instanceof CatalogError && /schema version 99, newer than this earthmem knows \(3\): upgrade earthmem/.test(error.message));
  });
});

// --- PostgreSQL: a real server, one random schema for this run, emptied for each catalog -----

function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) {
    throw new Error(
      'DATABASE_URL is not set: the PostgreSQL catalog suite needs a real server. Start one and export its settings: '
        + 'scripts/services up postgres && set -a && eval "$(scripts/services env postgres)" && set +a',
    );
  }
  return url;
}

const runSchema = `earthmem_test_${randomBytes(6).toString('hex')}`;
/** Schemas this run may have created; all dropped at the end. */
const createdSchemas = [runSchema];
let adminPool: pg.Pool | undefined;

function admin(): pg.Pool {
  adminPool ??= new pg.Pool({ connectionString: databaseUrl(), max: 2 });
  return adminPool;
}

async function openPostgres(schema = runSchema): Promise<PostgresCatalog> {
  return PostgresCatalog.open({ connectionString: databaseUrl(), schema });
}

async function openEmptyPostgres(): Promise<PostgresCatalog> {
  const catalog = await openPostgres();
  await admin().query(`TRUNCATE ${runSchema}.objects, ${runSchema}.partition_claims, ${runSchema}.migration_steps, ${runSchema}.migration_jobs, ${runSchema}.leases, ${runSchema}.aging_runs, ${runSchema}.object_accesses`);
  return catalog;
}

/** DATABASE_URL with another password (kept valid as a URL). */
function withPassword(password: string, port?: number): string {
  const url = new URL(databaseUrl());
  url.password = password;
  if (port !== undefined) url.port = String(port);
  return url.toString();
}

catalogConformance('postgresql', openEmptyPostgres);

describe('PostgresCatalog', () => {
  it('upgrades a first-release schema in place, keeping every row', async () => {
    const schema = `${runSchema}_v1`;
    createdSchemas.push(schema);
    await admin().query(readFileSync('test/fixtures/catalog-v1-postgresql.sql', 'utf8').replaceAll('__SCHEMA__', schema));
    await admin().query(
      `INSERT INTO ${schema}.objects (tier, key, backend, uri, memory_type, dataset, kind, partition_path, format, codec, codec_level, bytes, rows,
         time_min_us, time_max_us, bbox_min_lon, bbox_min_lat, bbox_max_lon, bbox_max_lat, sha256, provenance, source, source_partition,
         first_offset, last_offset, state, created_at, updated_at)
       VALUES ('hot', 'k.parquet', 'local_file', '/d/k.parquet', 'TemperatureMemory', 'ghcn', 'point', '2024/03/ghcn', 'parquet', 'zstd', 1, 10, 2,
         1, 2, 0, 0, 1, 1, $1, '[{"source":"obs","partition":0,"firstOffset":0,"lastOffset":1,"count":2}]', 'obs', 0, 0, 1, 'committed', now(), now())`,
      ['a'.repeat(64)],
    );
    const catalog = await openPostgres(schema);
    try {
      assert.equal(await catalog.schemaVersion(), CATALOG_SCHEMA_VERSION);
      assert.deepEqual((await catalog.list()).map((r) => [r.tier, r.key, r.rows]), [['hot', 'k.parquet', 2]]);
      assert.deepEqual((await admin().query(`SELECT object_id FROM ${schema}.objects`)).rows, [{ object_id: 'k' }], 'the identity column is filled in');
      await catalog.createMigrationJob({ id: 'after-upgrade', spec: {}, planHash: 'h' }, [{ sourceTier: 'hot', sourceKey: 'k.parquet', destinationTier: 'warm', bytes: 10 }]);
      assert.equal((await catalog.migrationJob('after-upgrade'))!.steps.length, 1);
    } finally {
      await catalog.close();
    }
    const again = await openPostgres(schema);
    assert.equal(await again.schemaVersion(), CATALOG_SCHEMA_VERSION);
    await again.close();
  });

  it('opens concurrently from several workers on a schema that does not exist yet', async () => {
    const schema = `${runSchema}_open`;
    createdSchemas.push(schema);
    const workers = await Promise.all(Array.from({ length: 6 }, () => openPostgres(schema)));
    try {
      await workers[0]!.upsert([entry()]);
      assert.deepEqual((await workers[5]!.list()).map(stored), [entry()], 'the workers share one catalog');
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  it('returns exactly the rows SQLite returns for the same upserts', async () => {
    const postgres = await openEmptyPostgres();
    const dir = tempDir('catalog');
    sqliteDirs.push(dir);
    const sqlite = new SqliteCatalog(join(dir, 'catalog.sqlite'));
    try {
      const entries = [
        entry(),
        entry({ key: 'k/2', codecLevel: null, bbox: [0.1, 0.2, 0.30000000000000004, 1e-300] }),
        entry({ key: 'k/3', tier: 'cold', kind: 'vector', provenance: [] }),
      ];
      for (const catalog of [sqlite, postgres]) {
        await catalog.upsert(entries);
        await catalog.recordAccess('hot', 'k/2');
        await catalog.upsert([entry({ key: 'k/2', rows: 5, sha256: 'f'.repeat(64) })]);
      }
      const withoutTimes = (rows: CatalogRow[]) =>
        JSON.stringify(rows.map(({ createdAt, updatedAt, lastAccessedAt, tierSince, ...rest }) => ({ ...rest, accessed: lastAccessedAt !== null })));
      assert.equal(withoutTimes(await postgres.list()), withoutTimes(await sqlite.list()));
      assert.deepEqual(await postgres.coverage('observations', 0, 0), await sqlite.coverage('observations', 0, 0));
    } finally {
      await sqlite.close();
      await postgres.close();
    }
  });

  it('location is the connection string without its password', async () => {
    const catalog = new PostgresCatalog({
      connectionString: 'postgresql://earthmem:s3cr3t-pw@127.0.0.1:15432/earthmem?password=other-pw&sslmode=disable',
    });
    await catalog.close();
    assert.equal(catalog.type, 'postgresql');
    assert.equal(catalog.location, 'postgresql://earthmem@127.0.0.1:15432/earthmem?sslmode=disable');
  });

  it('refuses a schema name that is not a plain identifier, and a connection string that is not a URL', () => {
    assert.throws(
      () => new PostgresCatalog({ connectionString: databaseUrl(), schema: 'x"; DROP SCHEMA public; --' }),
      (error) => error instanceof CatalogError && !error.retriable && /schema/.test(error.message),
    );
    const secret = 'p@ss word';
    assert.throws(
      () => new PostgresCatalog({ connectionString: `postgresql://u:${secret}@127.0.0.1:bad/db` }),
      (error) => error instanceof CatalogError && !inspect(error, { depth: 10 }).includes(secret),
    );
  });

  it('a wrong password is a non-retriable CatalogError that never shows the password', async () => {
    const password = `wrong-${randomBytes(8).toString('hex')}`;
    await assert.rejects(PostgresCatalog.open({ connectionString: withPassword(password) }), (error) => {
      assert.ok(error instanceof CatalogError, `CatalogError expected, got ${inspect(error)}`);
      assert.equal(error.retriable, false);
      assert.equal(error.context.connector, 'postgresql');
      assert.equal((error.cause as { code?: string }).code, '28P01');
      for (const text of [error.message, error.describe(), inspect(error, { depth: 10 }), error.stack ?? '']) {
        assert.ok(!text.includes(password), `password leaked in: ${text}`);
      }
      return true;
    });
  });

  it('an unreachable server is a retriable CatalogError that never shows the password', async () => {
    const password = `secret-${randomBytes(8).toString('hex')}`;
    await assert.rejects(PostgresCatalog.open({ connectionString: withPassword(password, 1) }), (error) => {
      assert.ok(error instanceof CatalogError, `CatalogError expected, got ${inspect(error)}`);
      assert.equal(error.retriable, true);
      assert.equal(error.context.connector, 'postgresql');
      assert.ok(error.cause !== undefined);
      for (const text of [error.message, error.describe(), inspect(error, { depth: 10 })]) {
        assert.ok(!text.includes(password), `password leaked in: ${text}`);
      }
      return true;
    });
  });

  it('two workers (two pools) upsert 200 distinct keys each at once, fenced by their own claims', async () => {
    const [a, b] = await Promise.all([openEmptyPostgres(), openPostgres()]);
    try {
      const write = async (catalog: Catalog, worker: string, partition: SourcePartition) => {
        const claims = await catalog.claimPartitions(worker, [partition]);
        await Promise.all(Array.from({ length: 200 }, (_, i) =>
          catalog.upsert([covering(`${worker}/${String(i).padStart(3, '0')}`, partition.source, partition.partition, i, i)], claims)));
      };
      await Promise.all([write(a, 'worker-a', { source: 'obs', partition: 0 }), write(b, 'worker-b', { source: 'obs', partition: 1 })]);
      const rows = await a.list();
      assert.equal(rows.length, 400);
      assert.equal(rows.filter((r) => r.key.startsWith('worker-a/')).length, 200);
      assert.equal((await b.coverage('obs', 1, 0)).length, 200);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('two workers writing the same keys in opposite orders at once do not deadlock', async () => {
    const [a, b] = await Promise.all([openEmptyPostgres(), openPostgres()]);
    try {
      const keys = Array.from({ length: 50 }, (_, i) => `shared/${String(i).padStart(2, '0')}`);
      const write = (catalog: Catalog, order: string[], sha: string) =>
        Promise.all(Array.from({ length: 10 }, () => catalog.upsert(order.map((key) => entry({ key, sha256: sha })))));
      await Promise.all([write(a, keys, 'a'.repeat(64)), write(b, [...keys].reverse(), 'b'.repeat(64))]);
      const rows = await b.list();
      assert.deepEqual(rows.map((r) => r.key), keys);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('once another worker\'s claim returns, no upsert fenced by the old claim commits', async () => {
    const [a, b] = await Promise.all([openEmptyPostgres(), openPostgres()]);
    try {
      const partition = { source: 'obs', partition: 0 };
      const succeeded: string[] = [];
      // Several rounds of: worker A writes on 8 lanes with its claim, B claims the partition.
      for (let round = 0; round < 5; round++) {
        const [oldClaim] = await a.claimPartitions('worker-a', [partition]);
        let claimReturned = false;
        let stop = false;
        let successesInRound = 0;
        let fencedAfterClaim = 0;
        const startedAfterClaimAndSucceeded: string[] = [];
        const lane = async (laneId: number) => {
          for (let i = 0; !stop; i++) {
            const key = `race/${round}/${laneId}/${String(i).padStart(5, '0')}`;
            const startedAfterClaim = claimReturned;
            try {
              await a.upsert([covering(key, 'obs', 0, i, i)], [oldClaim!]);
              succeeded.push(key);
              successesInRound++;
              if (startedAfterClaim) startedAfterClaimAndSucceeded.push(key);
            } catch (error) {
              if (!(error instanceof FencedError)) throw error;
              if (startedAfterClaim) fencedAfterClaim++;
            }
          }
        };
        const lanes = Promise.all(Array.from({ length: 8 }, (_, id) => lane(id)));
        while (successesInRound < 20) await sleep(2);
        const [newClaim] = await b.claimPartitions('worker-b', [partition]);
        claimReturned = true;
        const rowsWhenClaimed = (await b.list()).map((r) => r.key);
        while (fencedAfterClaim < 16) await sleep(2);
        stop = true;
        await lanes;

        assert.equal(newClaim!.epoch, oldClaim!.epoch + 1);
        assert.deepEqual(startedAfterClaimAndSucceeded, [], 'an upsert started after the claim succeeded');
        const rows = (await b.list()).map((r) => r.key);
        assert.deepEqual(rows, rowsWhenClaimed, 'a row of the old claim was committed after the new claim returned');
        assert.deepEqual(rows, [...succeeded].sort(), 'rows are exactly the successful upserts');
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

after(async () => {
  if (adminPool === undefined) return;
  try {
    for (const schema of createdSchemas) await adminPool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await adminPool.end();
  }
});

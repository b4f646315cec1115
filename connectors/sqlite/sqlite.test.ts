import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, StorageError, isRetriable } from '../../src/core/errors.js';
import type { VectorRecord } from '../../src/core/record.js';
import { backendConformance } from '../../test/conformance/backend-suite.js';
import { recordStoreConformance, samplePoints, sampleVectors } from '../../test/conformance/record-store-suite.js';
import { sqliteBackendSchema } from './config.js';
import { SQLiteStorage } from './storage.js';

const dir = await mkdtemp(join(tmpdir(), 'earthmem-sqlite-'));

/** The path `scripts/services up spatialite` installed; the tests fail (not skip) without it. */
function spatialiteModule(): string {
  const path = process.env.SPATIALITE_MODULE;
  if (!path) throw new Error('SPATIALITE_MODULE is not set: run the tests through scripts/test.mjs (it runs `scripts/services up spatialite`)');
  return path;
}

function open(options: Record<string, unknown>): SQLiteStorage {
  return new SQLiteStorage(sqliteBackendSchema.parse({ type: 'sqlite', ...options }));
}

const text = (s: string) => new TextEncoder().encode(s);

backendConformance({
  name: 'sqlite',
  open: async () => open({ database_path: join(dir, 'objects.db') }),
});

recordStoreConformance({
  name: 'sqlite (spatialite)',
  open: async () => open({ database_path: join(dir, 'records-spatialite.db'), spatialite_enabled: true, spatialite_module: spatialiteModule() }),
});

recordStoreConformance({
  name: 'sqlite (no spatialite)',
  open: async () => open({ database_path: join(dir, 'records-plain.db') }),
});

describe('sqlite specifics', () => {
  const opened: SQLiteStorage[] = [];
  const track = (storage: SQLiteStorage) => (opened.push(storage), storage);
  after(async () => {
    for (const storage of opened) await storage.close();
  });

  it('names the package to install when SpatiaLite is enabled but missing', () => {
    assert.throws(
      () => open({ database_path: join(dir, 'no-module.db'), spatialite_enabled: true, spatialite_module: join(dir, 'missing', 'mod_spatialite.so') }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.match(error.message, /libsqlite3-mod-spatialite/);
        assert.match(error.message, /spatialite_module/);
        return true;
      },
    );
  });

  it('gives a clear StorageError when the database folder cannot be created or written', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a folder');
    for (const database_path of [join(file, 'sub', 'x.db'), '/proc/earthmem-cannot-write.db']) {
      assert.throws(
        () => open({ database_path }),
        (error: unknown) => {
          assert.ok(error instanceof StorageError, String(error));
          assert.equal(isRetriable(error), false);
          assert.ok(error.message.startsWith('sqlite: cannot'), error.message);
          assert.ok(error.message.includes(database_path.startsWith('/proc') ? database_path : file), error.message);
          return true;
        },
      );
    }
  });

  it('rejects an in-memory database and unknown keys in the config', () => {
    assert.equal(sqliteBackendSchema.safeParse({ type: 'sqlite', database_path: ':memory:' }).success, false);
    assert.equal(sqliteBackendSchema.safeParse({ type: 'sqlite', database_path: 'x.db', spatialite: true }).success, false);
    const parsed = sqliteBackendSchema.parse({ type: 'sqlite', database_path: 'x.db' });
    assert.equal(parsed.busy_timeout, 5000);
    assert.equal(parsed.journal_mode, 'wal');
    assert.equal(parsed.srid, 4326);
    assert.equal(parsed.spatialite_enabled, false);
  });

  it('finds records through the spatial index, exactly (a triangle whose bbox matches is left out)', async () => {
    const path = join(dir, 'spatial.db');
    const storage = track(open({ database_path: path, spatialite_enabled: true, spatialite_module: spatialiteModule() }));
    await storage.writeRecords('sf/points', { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(10) });
    await storage.writeRecords('fires/polygons', { memoryType: 'FireMemory', dataset: 'fires', records: sampleVectors(5) });
    const triangle: VectorRecord = {
      ...sampleVectors(1, 'obs', 2)[0]!,
      id: 'triangle',
      geometry: { type: 'Polygon', coordinates: [[[0, 0], [10, 0], [0, 10], [0, 0]]] },
      bbox: [0, 0, 10, 10],
    };
    await storage.writeRecords('fires/triangle', { memoryType: 'FireMemory', dataset: 'fires', records: [triangle] });

    // Points 0..4 lie west of -122.415 (lon -122.4194 + i/1000); polygons 1 and 2 span lon 11..13; the triangle's corner (8..9, 8..9) is empty.
    const points = await storage.findRecords({ bbox: [-122.42, 37.77, -122.415, 37.78] });
    assert.deepEqual(points.map((f) => f.record.id), ['p-0', 'p-1', 'p-2', 'p-3', 'p-4']);
    assert.ok(points.every((f) => f.objectKey === 'sf/points'));
    const polygons = await storage.findRecords({ bbox: [11.5, 1.5, 12.5, 1.6] });
    assert.deepEqual(polygons.map((f) => f.record.id), ['v-1', 'v-2']);
    assert.deepEqual(await storage.findRecords({ bbox: [8, 8, 9, 9] }), []);
    assert.deepEqual((await storage.findRecords({ bbox: [1, 1, 2, 2] })).map((f) => f.record.id), ['triangle']);
    const timed = await storage.findRecords({ bbox: [-123, 37, -122, 38], fromUs: samplePoints(10)[2]!.timeUs, toUs: samplePoints(10)[3]!.timeUs });
    assert.deepEqual(timed.map((f) => f.record.id), ['p-2', 'p-3']);

    // The geometry columns carry the SRID and an R*Tree the query plan uses.
    const db = new Database(path, { readonly: true });
    try {
      db.loadExtension(spatialiteModule());
      assert.equal(db.prepare('SELECT count(*) FROM idx_earthmem_points_geom').pluck().get(), 10);
      assert.equal(db.prepare('SELECT count(*) FROM idx_earthmem_features_geom').pluck().get(), 6);
      assert.equal(db.prepare('SELECT DISTINCT ST_SRID(geom) FROM earthmem_features').pluck().get(), 4326);
      const plan = db
        .prepare(
          `EXPLAIN QUERY PLAN SELECT rowid FROM SpatialIndex WHERE f_table_name = 'earthmem_points' AND f_geometry_column = 'geom'
           AND search_frame = BuildMbr(0, 0, 1, 1, 4326)`,
        )
        .all() as { detail: string }[];
      assert.ok(plan.some((step) => /VIRTUAL TABLE/.test(step.detail)), JSON.stringify(plan));
    } finally {
      db.close();
    }

    await storage.deleteRecords('fires/polygons');
    assert.deepEqual(await storage.findRecords({ bbox: [11.5, 1.5, 12.5, 1.6] }), []);
  });

  it('transforms geometries into another srid and still reads records back exactly', async () => {
    const path = join(dir, 'mercator.db');
    const storage = track(open({ database_path: path, spatialite_enabled: true, spatialite_module: spatialiteModule(), srid: 3857 }));
    const records = samplePoints(3);
    await storage.writeRecords('m/points', { memoryType: 'TemperatureMemory', dataset: 'stations', records });
    assert.deepEqual((await storage.readRecords('m/points')).map((r) => r.kind === 'point' && [r.lon, r.lat]), records.map((r) => [r.lon, r.lat]));
    assert.deepEqual((await storage.findRecords({ bbox: [-122.4195, 37.7748, -122.4193, 37.775] })).map((f) => f.record.id), ['p-0']);
    const db = new Database(path, { readonly: true });
    try {
      db.loadExtension(spatialiteModule());
      const row = db.prepare('SELECT ST_SRID(geom) AS srid, ST_X(geom) AS x FROM earthmem_points ORDER BY source_offset LIMIT 1').get() as { srid: number; x: number };
      assert.equal(row.srid, 3857);
      assert.ok(Math.abs(row.x - -13627665.27) < 1, `x in metres: ${row.x}`);
    } finally {
      db.close();
    }
    await assert.rejects(
      async () => track(open({ database_path: path, spatialite_enabled: true, spatialite_module: spatialiteModule() })),
      (error: unknown) => error instanceof ConfigError && /srid 3857/.test(error.message),
    );
  });

  it('readers see the old object while a streamed put is in flight, then the whole new one', async () => {
    const path = join(dir, 'isolation.db');
    const writer = track(open({ database_path: path }));
    const otherProcessLike = track(open({ database_path: path, busy_timeout: '200ms' }));
    await writer.put('obj', text('old'));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const streaming = new Promise<void>((resolve) => (started = resolve));
    const body = (async function* () {
      yield text('new ');
      started();
      await gate;
      yield text('body');
    })();
    const putting = writer.put('obj', body);
    await streaming;
    assert.equal(new TextDecoder().decode(await writer.get('obj')), 'old');
    assert.equal(new TextDecoder().decode(await otherProcessLike.get('obj')), 'old');
    // A second connection cannot write while the first holds the write lock: retriable after busy_timeout.
    await assert.rejects(otherProcessLike.put('other', text('x')), (error: unknown) => {
      assert.ok(error instanceof StorageError, String(error));
      assert.equal(error.retriable, true);
      assert.match(error.message, /SQLITE_BUSY/);
      return true;
    });
    release();
    assert.equal((await putting).size, 8);
    assert.equal(new TextDecoder().decode(await otherProcessLike.get('obj')), 'new body');
  });

  it('rolls a failed streamed put back, keeping the previous object', async () => {
    const storage = track(open({ database_path: join(dir, 'rollback.db') }));
    await storage.put('obj', text('kept'));
    const failing = (async function* () {
      yield new Uint8Array(3 * 1024 * 1024);
      throw new Error('producer failed');
    })();
    await assert.rejects(storage.put('obj', failing), /producer failed|sqlite put failed/);
    assert.equal(new TextDecoder().decode(await storage.get('obj')), 'kept');
    assert.deepEqual(await storage.getRange('obj', 1, 2), text('ep'));
  });
});

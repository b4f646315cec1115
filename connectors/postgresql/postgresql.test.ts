import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { AccessDeniedError, ConfigError } from '../../src/core/errors.js';
import type { PointRecord } from '../../src/core/record.js';
import { backendConformance } from '../../test/conformance/backend-suite.js';
import { recordStoreConformance, samplePoints, sampleVectors } from '../../test/conformance/record-store-suite.js';
import { postgisBackendSchema, postgresqlBackendSchema, type PostgresqlBackendConfig } from './config.js';
import { PostgreSQLStorage } from './storage.js';

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  throw new Error('DATABASE_URL is not set: run `EARTHMEM_TEST_SERVICES=postgres node scripts/test.mjs connectors/postgresql` (it starts the server)');
}

/** Every schema this run creates starts with `run`; all are dropped at the end. */
const run = `em_t_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
const unreachablePassword = `unreachable-${randomBytes(6).toString('hex')}`;
const wrongPassword = `wrong-${randomBytes(6).toString('hex')}`;

function withUrl(change: (url: URL) => void): string {
  const url = new URL(databaseUrl!);
  change(url);
  return url.toString();
}
const unreachableUrl = withUrl((u) => {
  u.port = '1';
  u.password = unreachablePassword;
});
const badCredentialsUrl = withUrl((u) => {
  u.password = wrongPassword;
});

function config(schema: string, overrides: Record<string, unknown> = {}): PostgresqlBackendConfig {
  return postgresqlBackendSchema.parse({ type: 'postgresql', connection_string: databaseUrl, schema, ...overrides });
}

const admin = new pg.Client({ connectionString: databaseUrl });

before(async () => {
  await admin.connect();
});

after(async () => {
  const { rows } = await admin.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [`${run}%`]);
  for (const { nspname } of rows) await admin.query(`DROP SCHEMA ${pg.escapeIdentifier(nspname)} CASCADE`);
  // pg_partman keeps its configuration and template tables in its own schema.
  const partman = await admin.query<{ nspname: string }>(
    `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_partman'`,
  );
  if (partman.rows.length > 0) {
    const schema = pg.escapeIdentifier(partman.rows[0]!.nspname);
    await admin.query(`DELETE FROM ${schema}.part_config WHERE parent_table LIKE $1`, [`${run}%`]);
    const templates = await admin.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename LIKE $2`, [
      partman.rows[0]!.nspname,
      `template_${run}%`,
    ]);
    for (const { tablename } of templates.rows) await admin.query(`DROP TABLE ${schema}.${pg.escapeIdentifier(tablename)}`);
  }
  await admin.end();
});

const secrets = [unreachablePassword, wrongPassword];

backendConformance({
  name: 'postgresql',
  open: async () => PostgreSQLStorage.open(config(run)),
  openUnreachable: async () => new PostgreSQLStorage(config(run, { connection_string: unreachableUrl })),
  openBadCredentials: async () => new PostgreSQLStorage(config(run, { connection_string: badCredentialsUrl })),
  secrets,
});

recordStoreConformance({
  name: 'postgresql',
  open: async () => PostgreSQLStorage.open(config(run)),
  openUnreachable: async () => new PostgreSQLStorage(config(run, { connection_string: unreachableUrl })),
  secrets,
});

const dayUs = 86_400_000_000;
const utcUs = (year: number, month: number, day: number) => Date.UTC(year, month - 1, day) * 1000;

/** Points whose times start at `startUs`, one every `stepUs`. */
function pointsAt(n: number, startUs: number, stepUs: number, offset = 0): PointRecord[] {
  return samplePoints(n, 'obs', 0, offset).map((p, i) => ({ ...p, timeUs: startUs + i * stepUs }));
}

async function childrenOf(schema: string, table: string): Promise<string[]> {
  const { rows } = await admin.query<{ child: string }>(
    `SELECT c.relname AS child FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass($1) ORDER BY 1`,
    [`${pg.escapeIdentifier(schema)}.${table}`],
  );
  return rows.map((r) => r.child);
}

describe('postgresql specifics', () => {
  const stores: PostgreSQLStorage[] = [];
  const open = async (schema: string, overrides: Record<string, unknown> = {}) => {
    const store = await PostgreSQLStorage.open(config(schema, overrides));
    stores.push(store);
    return store;
  };
  after(async () => {
    for (const store of stores) await store.close();
  });

  it('config: defaults, the postgis alias, unknown keys and cross-key rules', () => {
    const c = postgresqlBackendSchema.parse({ type: 'postgresql', connection_string: 'postgresql://u:p@127.0.0.1:5432/db' });
    assert.equal(c.schema, 'public');
    assert.equal(c.postgis_enabled, true);
    assert.equal(c.srid, 4326);
    assert.equal(c.spatial_index, true);
    assert.equal(c.timescaledb_enabled, false);
    assert.equal(c.partitioning, 'native');
    assert.equal(c.partition_interval, 'month');
    assert.equal(c.topology, false);
    const gis = postgisBackendSchema.parse({ type: 'postgis', schema: 'vector_data', spatial_index: true, topology: true, srid: 4326 });
    assert.equal(gis.postgis_enabled, true);
    assert.equal(postgresqlBackendSchema.safeParse({ type: 'postgresql', pool_sise: 3 }).success, false);
    assert.equal(postgresqlBackendSchema.safeParse({ type: 'postgresql', schema: 'Bad-Name' }).success, false);
    assert.throws(
      () => new PostgreSQLStorage(postgresqlBackendSchema.parse({ type: 'postgresql', max_connections: 20, pool_size: 10 })),
      (e: unknown) => e instanceof ConfigError && /max_connections/.test(e.message),
    );
    assert.throws(
      () => new PostgreSQLStorage(postgisBackendSchema.parse({ type: 'postgis', postgis_enabled: false })),
      (e: unknown) => e instanceof ConfigError && /postgis_enabled/.test(e.message),
    );
    assert.throws(
      () => new PostgreSQLStorage(config(run, { connection_string: 'not a url with secret-pw' })),
      (e: unknown) => e instanceof ConfigError && !(e as ConfigError).describe().includes('secret-pw'),
    );
  });

  it('location and uri name host, port, database and schema, never the user or password', async () => {
    const store = new PostgreSQLStorage(config(run, { connection_string: badCredentialsUrl }));
    const { hostname, port, pathname } = new URL(databaseUrl);
    assert.equal(store.location, `postgresql://${hostname}:${port}${pathname}/${run}`);
    assert.equal(store.uri('a b/c.parquet'), `${store.location}#a%20b/c.parquet`);
    assert.ok(!store.location.includes(wrongPassword) && !store.location.includes('@'));
    await store.close();
  });

  it('bad credentials on writeRecords: AccessDeniedError at once, no secret in it', async () => {
    const store = new PostgreSQLStorage(config(run, { connection_string: badCredentialsUrl }));
    await assert.rejects(
      store.writeRecords('denied', { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(1) }),
      (e: unknown) => e instanceof AccessDeniedError && !e.retriable && !e.describe().includes(wrongPassword),
    );
    await store.close();
  });

  it('creates GiST indexes on the geometry columns (and BRIN on observed_at)', async () => {
    await open(run);
    const { rows } = await admin.query<{ tablename: string; indexdef: string }>(
      `SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY 1, 2`,
      [run],
    );
    for (const table of ['earthmem_points', 'earthmem_features']) {
      assert.ok(rows.some((r) => r.tablename === table && /USING gist \(geom\)/.test(r.indexdef)), `GiST on ${table}.geom`);
      assert.ok(rows.some((r) => r.tablename === table && /USING brin \(observed_at\)/.test(r.indexdef)), `BRIN on ${table}.observed_at`);
    }
  });

  it('creates one partition per month of the batch, and rows land in it', async () => {
    const store = await open(run);
    const jan = pointsAt(3, utcUs(2026, 1, 30), dayUs); // 30 Jan, 31 Jan, 1 Feb
    const mar = pointsAt(2, utcUs(2026, 3, 31), 1, 10);
    await store.writeRecords('months/1', { memoryType: 'TemperatureMemory', dataset: 'stations', records: [...jan, ...mar] });
    const children = await childrenOf(run, 'earthmem_points');
    for (const name of ['earthmem_points_p2026_01', 'earthmem_points_p2026_02', 'earthmem_points_p2026_03']) assert.ok(children.includes(name), name);
    assert.ok(!children.includes('earthmem_points_p2026_04'));
    const { rows } = await admin.query<{ part: string; n: string }>(
      `SELECT tableoid::regclass::text AS part, count(*) AS n FROM ${pg.escapeIdentifier(run)}.earthmem_points WHERE object_key = 'months/1' GROUP BY 1 ORDER BY 1`,
    );
    assert.deepEqual(
      rows.map((r) => [r.part.split('.').pop(), Number(r.n)]),
      [['earthmem_points_p2026_01', 2], ['earthmem_points_p2026_02', 1], ['earthmem_points_p2026_03', 2]],
    );
    const back = await store.readRecords('months/1');
    assert.deepEqual(back.map((r) => r.timeUs), [...jan, ...mar].map((r) => r.timeUs));
  });

  it('finds the right rows with a spatial query (ST_Intersects with a bbox)', async () => {
    const store = await open(run);
    const points = samplePoints(50, 'spatial');
    await store.writeRecords('spatial/points', { memoryType: 'TemperatureMemory', dataset: 'stations', records: points });
    await store.writeRecords('spatial/features', { memoryType: 'FireMemory', dataset: 'fires', records: sampleVectors(8, 'spatial') });
    const box = [-122.4160, 37.7700, -122.4050, 37.7740];
    const expected = points.filter((p) => p.lon >= box[0]! && p.lon <= box[2]! && p.lat >= box[1]! && p.lat <= box[3]!).map((p) => p.id);
    assert.ok(expected.length > 0 && expected.length < points.length);
    const found = await admin.query<{ record_id: string }>(
      `SELECT record_id FROM ${pg.escapeIdentifier(run)}.earthmem_points
        WHERE object_key = 'spatial/points' AND ST_Intersects(geom, ST_MakeEnvelope($1, $2, $3, $4, 4326)) ORDER BY source_offset`,
      box,
    );
    assert.deepEqual(found.rows.map((r) => r.record_id), expected);
    const fires = await admin.query<{ record_id: string }>(
      `SELECT record_id FROM ${pg.escapeIdentifier(run)}.earthmem_features
        WHERE object_key = 'spatial/features' AND ST_Intersects(geom, ST_MakeEnvelope(12.5, 1.2, 14.5, 1.8, 4326)) ORDER BY source_offset`,
    );
    assert.deepEqual(fires.rows.map((r) => r.record_id), ['v-2', 'v-3', 'v-4']);
  });

  it('stores the configured SRID (3857) and still returns the exact WGS84 records', async () => {
    const schema = `${run}_3857`;
    const store = await open(schema, { srid: 3857 });
    const points = samplePoints(5);
    const vectors = sampleVectors(3);
    await store.writeRecords('srid', { memoryType: 'Mixed', dataset: 'stations', records: [...points, ...vectors] });
    const q = pg.escapeIdentifier(schema);
    const srids = await admin.query<{ srid: number; find: number }>(
      `SELECT DISTINCT ST_SRID(geom) AS srid, Find_SRID($1, 'earthmem_points', 'geom') AS find FROM ${q}.earthmem_points
       UNION SELECT DISTINCT ST_SRID(geom), Find_SRID($1, 'earthmem_features', 'geom') FROM ${q}.earthmem_features`,
      [schema],
    );
    assert.deepEqual(srids.rows, [{ srid: 3857, find: 3857 }]);
    const projected = await admin.query<{ x: number; back: number; lon: number }>(
      `SELECT ST_X(geom) AS x, ST_X(ST_Transform(geom, 4326)) AS back, lon FROM ${q}.earthmem_points LIMIT 1`,
    );
    assert.ok(Math.abs(projected.rows[0]!.x) > 1e6, 'x is in metres');
    assert.ok(Math.abs(projected.rows[0]!.back - projected.rows[0]!.lon) < 1e-9, 'transformed back to the same longitude');
    const back = await store.readRecords('srid');
    assert.deepEqual(back, [...points, ...vectors]);
  });

  it('pg_partman mode: create_parent once, then daily children for the batch, nothing in the default', async () => {
    const schema = `${run}_partman`;
    const store = await open(schema, { partitioning: 'pg_partman', partition_interval: 'day' });
    const records = pointsAt(4, utcUs(2020, 3, 1) + 3_600_000_000, dayUs / 2); // 1 Mar 01:00 … 2 Mar 13:00
    await store.writeRecords('partman/1', { memoryType: 'TemperatureMemory', dataset: 'stations', records });
    await store.writeRecords('partman/1', { memoryType: 'TemperatureMemory', dataset: 'stations', records });
    const config = await admin.query<{ parent_table: string; partition_interval: string }>(
      `SELECT parent_table, partition_interval FROM partman.part_config WHERE parent_table LIKE $1 ORDER BY 1`,
      [`${schema}.%`],
    );
    assert.deepEqual(config.rows.map((r) => r.parent_table), [`${schema}.earthmem_features`, `${schema}.earthmem_points`]);
    assert.equal(config.rows[0]!.partition_interval, '1 day');
    const children = await childrenOf(schema, 'earthmem_points');
    assert.ok(children.includes('earthmem_points_p2020_03_01') && children.includes('earthmem_points_p2020_03_02'), children.join(' '));
    const q = pg.escapeIdentifier(schema);
    const inDefault = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${q}.earthmem_points_default`);
    assert.equal(Number(inDefault.rows[0]!.n), 0);
    assert.deepEqual(await store.readRecords('partman/1'), records);
  });

  it('timescaledb_enabled: true fails with a clear ConfigError (the extension is not installed here)', async () => {
    const available = await admin.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'`);
    assert.equal(available.rows.length, 0, 'this test expects a server without TimescaleDB');
    await assert.rejects(PostgreSQLStorage.open(config(`${run}_tsdb`, { timescaledb_enabled: true })), (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
      assert.match(e.message, /timescaledb/);
      assert.match(e.message, /not have the timescaledb extension installed/);
      assert.match(e.message, /partitioning: native or partitioning: pg_partman/);
      return true;
    });
  });

  it('partitioning none and postgis_enabled false: plain tables, no geometry, same records', async () => {
    const schema = `${run}_plain`;
    const store = await open(schema, { partitioning: 'none', postgis_enabled: false });
    const records = [...samplePoints(4), ...sampleVectors(3)];
    await store.writeRecords('plain', { memoryType: 'Mixed', dataset: 'stations', records });
    assert.deepEqual(await store.readRecords('plain'), records);
    const kinds = await admin.query<{ relname: string; relkind: string }>(
      `SELECT relname, relkind FROM pg_class WHERE relnamespace = $1::regnamespace AND relname IN ('earthmem_points', 'earthmem_features') ORDER BY 1`,
      [schema],
    );
    assert.deepEqual(kinds.rows, [{ relname: 'earthmem_features', relkind: 'r' }, { relname: 'earthmem_points', relkind: 'r' }]);
    const geom = await admin.query(`SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'geom'`, [schema]);
    assert.equal(geom.rows.length, 0);
  });

  it('refuses tables made with other settings (partitioning, SRID)', async () => {
    await open(run);
    await assert.rejects(PostgreSQLStorage.open(config(run, { partitioning: 'none' })), (e: unknown) => e instanceof ConfigError && /partitioning/.test(e.message));
    await assert.rejects(PostgreSQLStorage.open(config(run, { srid: 3857 })), (e: unknown) => e instanceof ConfigError && /SRID 4326/.test(e.message));
  });

  it('writes 100k points in one key (throughput)', { timeout: 300_000 }, async (t) => {
    const store = await open(run);
    const records = samplePoints(100_000, 'bulk');
    const started = process.hrtime.bigint();
    const result = await store.writeRecords('bulk/100k', { memoryType: 'TemperatureMemory', dataset: 'stations', records });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    assert.equal(result.rows, 100_000);
    const readStarted = process.hrtime.bigint();
    const back = await store.readRecords('bulk/100k');
    const readSeconds = Number(process.hrtime.bigint() - readStarted) / 1e9;
    assert.equal(back.length, 100_000);
    assert.deepEqual(back[99_999], records[99_999]);
    const line = `writeRecords 100k points: ${seconds.toFixed(2)} s = ${Math.round(100_000 / seconds)} rows/s; readRecords: ${Math.round(100_000 / readSeconds)} rows/s`;
    t.diagnostic(line);
    console.log(line);
  });
});

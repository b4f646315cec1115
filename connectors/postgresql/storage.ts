import pg from 'pg';
import { declareCapabilities, type Backend, type Body, type ObjectStat, type PutOptions } from '../../src/core/backend.js';
import { partsOf } from '../../src/core/body.js';
import { ConfigError, NotFoundError, StorageError, type ErrorContext } from '../../src/core/errors.js';
import type { ObservationRecord, PointRecord, VectorRecord } from '../../src/core/record.js';
import type { RecordSet, RecordStore, RecordWriteResult } from '../../src/core/record-store.js';
import { poolCap, postgresqlConfigProblems, type PostgresqlStorageConfig } from './config.js';
import { partitionName, periodsOf, timestampLiteral, type Period } from './periods.js';
import {
  arrayLiteral, featureColumns, featureFromRow, pointColumns, pointFromRow, safeInteger, type Column,
} from './records.js';
import { connector, postgresFailure, serverAddress } from './server.js';

/** Objects are stored in rows of this many bytes: a 64 MiB put never builds one huge parameter. */
const chunkBytes = 1024 * 1024;
/** Chunks fetched per query when reading: bounds the memory of one result. */
const chunksPerRead = 16;
/** Rows per bulk INSERT (one array parameter per column, so no 65,535-parameter limit applies). */
const rowsPerInsert = 10_000;
/** Keys per page when listing. */
const listPage = 1_000;
/** An unreachable server otherwise hangs a connect forever (no TCP timeout on a silent drop). */
const connectTimeoutMs = 10_000;

const tables = {
  objects: 'earthmem_objects',
  chunks: 'earthmem_object_chunks',
  points: 'earthmem_points',
  features: 'earthmem_features',
  recordKeys: 'earthmem_record_keys',
} as const;

const partmanIntervals = { day: 'daily', week: 'weekly', month: 'monthly' } as const;
const timescaleIntervals = { day: '1 day', week: '7 days', month: '1 month' } as const;

/** How the record tables are split in time, from `partitioning` and `timescaledb_enabled`. */
type TimeLayout = 'none' | 'native' | 'pg_partman' | 'timescaledb';

interface KeyRow {
  point_rows: string;
  feature_rows: string;
  time_min_us: string | null;
  time_max_us: string | null;
}

/**
 * PostgreSQLStorage / PostGISStorage. As a Backend it keeps objects as rows of 1 MiB chunks (one
 * transaction per put). As a RecordStore it keeps records as rows: points in
 * `<schema>.earthmem_points`, vector features in `<schema>.earthmem_features`, time-partitioned on
 * `observed_at`, with a PostGIS `geom` column and GiST index, and one row per object key in
 * `earthmem_record_keys` (its row counts and time range let reads and deletes prune partitions).
 */
export class PostgreSQLStorage implements Backend, RecordStore {
  readonly type: 'postgresql' | 'postgis';
  readonly capabilities = declareCapabilities({ rangeReads: true, multipart: true });
  /** `postgresql://host:port/database/schema`: no user, no password. */
  readonly location: string;
  private readonly config: PostgresqlStorageConfig;
  private readonly server: string;
  private readonly pool: pg.Pool;
  private readonly layout: TimeLayout;
  /** Schema-qualified, quoted table names. */
  private readonly t: Record<keyof typeof tables, string>;
  private readiness: Promise<void> | undefined;
  /** Schema of the pg_partman extension, once prepared. */
  private partman = 'partman';
  /** Schema of the timescaledb extension, once prepared. */
  private timescale = 'public';
  /** Partitions known to exist: `<table> <period start ms>`. */
  private readonly partitions = new Set<string>();

  constructor(config: PostgresqlStorageConfig) {
    const problems = postgresqlConfigProblems(config);
    if (problems.length > 0) {
      throw new ConfigError(
        `invalid ${config.type} backend: ${problems.map(([key, message]) => `${key}: ${message}`).join('; ')}`,
        problems.map(([key, message]) => ({ file: '', path: key, message })),
        { context: { connector } },
      );
    }
    this.config = config;
    this.type = config.type;
    this.server = serverAddress(config.connection_string);
    this.location = `postgresql://${this.server}/${config.schema}`;
    this.layout = config.timescaledb_enabled ? 'timescaledb' : config.partitioning;
    const schema = pg.escapeIdentifier(config.schema);
    this.t = Object.fromEntries(
      Object.entries(tables).map(([role, name]) => [role, `${schema}.${pg.escapeIdentifier(name)}`]),
    ) as Record<keyof typeof tables, string>;
    this.pool = new pg.Pool({
      ...(config.connection_string === undefined ? {} : { connectionString: config.connection_string }),
      max: poolCap(config),
      connectionTimeoutMillis: connectTimeoutMs,
      application_name: 'earthmem',
      // Partition bounds, pg_partman's date_trunc and observed_at are all UTC.
      options: '-c TimeZone=UTC',
    });
    // An idle pooled connection broke: the pool has dropped it and the next query reconnects or
    // fails with its own error. Without a listener Node would crash the process on this event.
    this.pool.on('error', () => {});
  }

  /** Connects and creates what is missing (schema, extensions, tables, indexes); fails on a config the server cannot honour. */
  static async open(config: PostgresqlStorageConfig): Promise<PostgreSQLStorage> {
    const storage = new PostgreSQLStorage(config);
    try {
      await storage.ready('open');
    } catch (error) {
      await storage.close();
      throw error;
    }
    return storage;
  }

  uri(key: string): string {
    return `${this.location}#${encodeURIComponent(key).replace(/%2F/g, '/')}`;
  }

  async close(): Promise<void> {
    if (!this.pool.ended) await this.pool.end();
  }

  // ------------------------------------------------------------------ objects (Backend)

  async put(key: string, body: Body, options: PutOptions = {}): Promise<ObjectStat> {
    await this.ready('put', key);
    try {
      return await this.transaction('READ COMMITTED', async (client) => {
        await this.lockKey(client, 'object', key);
        await client.query(`DELETE FROM ${this.t.chunks} WHERE key = $1`, [key]);
        let size = 0;
        let seq = 0;
        for await (const part of partsOf(body, chunkBytes)) {
          if (part.byteLength === 0) continue;
          await client.query(`INSERT INTO ${this.t.chunks} (key, seq, bytes) VALUES ($1, $2, $3)`, [
            key,
            seq++,
            Buffer.from(part.buffer, part.byteOffset, part.byteLength),
          ]);
          size += part.byteLength;
        }
        const { rows } = await client.query<{ modified: Date }>(
          `INSERT INTO ${this.t.objects} (key, size, chunk_size, modified, content_type)
           VALUES ($1, $2, $3, clock_timestamp(), $4)
           ON CONFLICT (key) DO UPDATE SET size = EXCLUDED.size, chunk_size = EXCLUDED.chunk_size,
             modified = EXCLUDED.modified, content_type = EXCLUDED.content_type
           RETURNING modified`,
          [key, size, chunkBytes, options.contentType ?? null],
        );
        return { key, size, modified: rows[0]!.modified };
      });
    } catch (cause) {
      throw this.fail('put', key, cause);
    }
  }

  async get(key: string): Promise<Uint8Array> {
    return this.readBytes('get', key, 0, Number.MAX_SAFE_INTEGER);
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    return this.readBytes('getRange', key, offset, length);
  }

  async stat(key: string): Promise<ObjectStat> {
    await this.ready('stat', key);
    try {
      const { rows } = await this.pool.query<{ size: string; modified: Date }>(
        `SELECT size, modified FROM ${this.t.objects} WHERE key = $1`,
        [key],
      );
      if (rows.length === 0) throw new NotFoundError(key, { context: this.context('stat') });
      return { key, size: safeInteger(rows[0]!.size), modified: rows[0]!.modified };
    } catch (cause) {
      throw this.fail('stat', key, cause);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectStat> {
    await this.ready('list', prefix);
    let after: string | null = null;
    for (;;) {
      let rows: Array<{ key: string; size: string; modified: Date }>;
      try {
        ({ rows } = await this.pool.query<{ key: string; size: string; modified: Date }>(
          `SELECT key, size, modified FROM ${this.t.objects}
           WHERE key LIKE $1 AND ($2::text IS NULL OR key > $2) ORDER BY key LIMIT ${listPage}`,
          [likePrefix(prefix), after],
        ));
      } catch (cause) {
        throw this.fail('list', prefix, cause);
      }
      for (const row of rows) yield { key: row.key, size: safeInteger(row.size), modified: row.modified };
      if (rows.length < listPage) return;
      after = rows[rows.length - 1]!.key;
    }
  }

  async delete(key: string): Promise<void> {
    await this.ready('delete', key);
    try {
      await this.transaction('READ COMMITTED', async (client) => {
        await this.lockKey(client, 'object', key);
        await client.query(`DELETE FROM ${this.t.chunks} WHERE key = $1`, [key]);
        await client.query(`DELETE FROM ${this.t.objects} WHERE key = $1`, [key]);
      });
    } catch (cause) {
      throw this.fail('delete', key, cause);
    }
  }

  /**
   * Bytes [offset, offset+length) of an object, reading only the chunks (and, with `substring`
   * on uncompressed EXTERNAL storage, only the bytes) that hold them, in one snapshot.
   */
  private async readBytes(operation: string, key: string, offset: number, length: number): Promise<Uint8Array> {
    await this.ready(operation, key);
    try {
      return await this.transaction('REPEATABLE READ READ ONLY', async (client) => {
        const { rows } = await client.query<{ size: string; chunk_size: number }>(
          `SELECT size, chunk_size FROM ${this.t.objects} WHERE key = $1`,
          [key],
        );
        if (rows.length === 0) throw new NotFoundError(key, { context: this.context(operation) });
        const size = safeInteger(rows[0]!.size);
        const chunkSize = rows[0]!.chunk_size;
        const end = Math.min(size, offset + length);
        if (offset >= end) return new Uint8Array(0);
        const out = new Uint8Array(end - offset);
        const last = Math.floor((end - 1) / chunkSize);
        let filled = 0;
        for (let first = Math.floor(offset / chunkSize); first <= last; first += chunksPerRead) {
          // Text format (bytea as hex): node-postgres decodes every binary-format field as UTF-8 text.
          const result = await client.query<[number, Buffer]>({
            text: `SELECT seq, substring(bytes FROM (greatest($2::bigint - seq::bigint * $4, 0) + 1)::integer
                     FOR (least($3::bigint - seq::bigint * $4, $4) - greatest($2::bigint - seq::bigint * $4, 0))::integer)
                   FROM ${this.t.chunks} WHERE key = $1 AND seq BETWEEN $5 AND $6 ORDER BY seq`,
            values: [key, offset, end, chunkSize, first, Math.min(first + chunksPerRead - 1, last)],
            rowMode: 'array',
          });
          for (const [seq, bytes] of result.rows) {
            out.set(bytes, Math.max(seq * chunkSize - offset, 0));
            filled += bytes.byteLength;
          }
        }
        if (filled !== out.byteLength) {
          throw new StorageError(`${connector} ${operation}: object ${key} is missing chunks (${filled} of ${out.byteLength} bytes)`, {
            context: this.context(operation, key),
          });
        }
        return out;
      });
    } catch (cause) {
      throw this.fail(operation, key, cause);
    }
  }

  // ------------------------------------------------------------------ records (RecordStore)

  async writeRecords(key: string, set: RecordSet): Promise<RecordWriteResult> {
    await this.ready('writeRecords', key);
    const points = set.records.filter((r): r is PointRecord => r.kind === 'point');
    const features = set.records.filter((r): r is VectorRecord => r.kind === 'vector');
    try {
      if (points.length > 0) await this.ensurePartitions('points', points);
      if (features.length > 0) await this.ensurePartitions('features', features);
      await this.transaction('READ COMMITTED', async (client) => {
        await this.lockKey(client, 'records', key);
        await this.deleteRows(client, key);
        for (let at = 0; at < points.length; at += rowsPerInsert) {
          await this.insertRows(client, 'points', pointColumns, key, set.memoryType, points.slice(at, at + rowsPerInsert));
        }
        for (let at = 0; at < features.length; at += rowsPerInsert) {
          await this.insertRows(client, 'features', featureColumns, key, set.memoryType, features.slice(at, at + rowsPerInsert));
        }
        let timeMin: number | null = null;
        let timeMax: number | null = null;
        for (const r of set.records) {
          if (timeMin === null || r.timeUs < timeMin) timeMin = r.timeUs;
          if (timeMax === null || r.timeUs > timeMax) timeMax = r.timeUs;
        }
        await client.query(
          `INSERT INTO ${this.t.recordKeys} (object_key, memory_type, dataset, point_rows, feature_rows, time_min_us, time_max_us, written_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, now())
           ON CONFLICT (object_key) DO UPDATE SET memory_type = EXCLUDED.memory_type, dataset = EXCLUDED.dataset,
             point_rows = EXCLUDED.point_rows, feature_rows = EXCLUDED.feature_rows,
             time_min_us = EXCLUDED.time_min_us, time_max_us = EXCLUDED.time_max_us, written_at = EXCLUDED.written_at`,
          [key, set.memoryType, set.dataset, points.length, features.length, timeMin, timeMax],
        );
      });
    } catch (cause) {
      throw this.fail('writeRecords', key, cause);
    }
    const containers = [
      ...(points.length > 0 || features.length === 0 ? [this.qualified('points')] : []),
      ...(features.length > 0 ? [this.qualified('features')] : []),
    ];
    return { rows: set.records.length, bytes: set.records.reduce((sum, r) => sum + r.size, 0), container: containers.join(', ') };
  }

  async readRecords(key: string): Promise<ObservationRecord[]> {
    await this.ready('readRecords', key);
    try {
      const records = await this.transaction('REPEATABLE READ READ ONLY', async (client) => {
        const registered = await this.registeredKey(client, key);
        if (registered === undefined) throw new NotFoundError(key, { context: this.context('readRecords') });
        const out: ObservationRecord[] = [];
        if (safeInteger(registered.point_rows) > 0) {
          const { rows } = await client.query(this.selectRows('points', pointColumns), timeBounds(key, registered));
          for (const row of rows) out.push(pointFromRow(row));
        }
        if (safeInteger(registered.feature_rows) > 0) {
          const { rows } = await client.query(this.selectRows('features', featureColumns), timeBounds(key, registered));
          for (const row of rows) out.push(featureFromRow(row));
        }
        return out;
      });
      // Points and features come from two tables: one order by source position across both.
      return records.sort(bySourcePosition);
    } catch (cause) {
      throw this.fail('readRecords', key, cause);
    }
  }

  async *listKeys(prefix: string): AsyncIterable<string> {
    await this.ready('listKeys', prefix);
    let after: string | null = null;
    for (;;) {
      let rows: Array<{ object_key: string }>;
      try {
        ({ rows } = await this.pool.query<{ object_key: string }>(
          `SELECT object_key FROM ${this.t.recordKeys}
           WHERE object_key LIKE $1 AND ($2::text IS NULL OR object_key > $2) ORDER BY object_key LIMIT ${listPage}`,
          [likePrefix(prefix), after],
        ));
      } catch (cause) {
        throw this.fail('listKeys', prefix, cause);
      }
      for (const row of rows) yield row.object_key;
      if (rows.length < listPage) return;
      after = rows[rows.length - 1]!.object_key;
    }
  }

  async deleteRecords(key: string): Promise<void> {
    await this.ready('deleteRecords', key);
    try {
      await this.transaction('READ COMMITTED', async (client) => {
        await this.lockKey(client, 'records', key);
        await this.deleteRows(client, key);
        await client.query(`DELETE FROM ${this.t.recordKeys} WHERE object_key = $1`, [key]);
      });
    } catch (cause) {
      throw this.fail('deleteRecords', key, cause);
    }
  }

  /** Deletes the rows a key holds now, in the partitions of its recorded time range only. */
  private async deleteRows(client: pg.PoolClient, key: string): Promise<void> {
    const registered = await this.registeredKey(client, key);
    if (registered === undefined) return;
    if (safeInteger(registered.point_rows) > 0) {
      await client.query(`DELETE FROM ${this.t.points} WHERE object_key = $1 AND observed_at BETWEEN $2 AND $3`, timeBounds(key, registered));
    }
    if (safeInteger(registered.feature_rows) > 0) {
      await client.query(`DELETE FROM ${this.t.features} WHERE object_key = $1 AND observed_at BETWEEN $2 AND $3`, timeBounds(key, registered));
    }
  }

  private async registeredKey(client: pg.PoolClient, key: string): Promise<KeyRow | undefined> {
    const { rows } = await client.query<KeyRow>(
      `SELECT point_rows, feature_rows, time_min_us, time_max_us FROM ${this.t.recordKeys} WHERE object_key = $1`,
      [key],
    );
    return rows[0];
  }

  /** One statement for many rows: each column travels as one array parameter and is unnested server-side. */
  private async insertRows<R extends ObservationRecord>(
    client: pg.PoolClient,
    table: 'points' | 'features',
    columns: Column<R>[],
    key: string,
    memoryType: string,
    records: readonly R[],
  ): Promise<void> {
    const names = columns.map((c) => c.name);
    const arrays = columns.map((c) => arrayLiteral(records.map(c.value)));
    const unnest = columns.map((c, i) => `$${i + 3}::${c.type.replace(/ COLLATE .*/, '')}[]`);
    await client.query(
      `INSERT INTO ${this.t[table]} (object_key, memory_type, observed_at, ${names.join(', ')})
       SELECT $1, $2, timestamptz 'epoch' + u.time_us * interval '1 microsecond', ${names.map((n) => `u.${n}`).join(', ')}
       FROM unnest(${unnest.join(', ')}) AS u(${names.join(', ')})`,
      [key, memoryType, ...arrays],
    );
  }

  private selectRows<R>(table: 'points' | 'features', columns: Column<R>[]): string {
    return `SELECT ${columns.map((c) => c.name).join(', ')} FROM ${this.t[table]}
            WHERE object_key = $1 AND observed_at BETWEEN $2 AND $3
            ORDER BY source, source_partition, source_offset`;
  }

  /**
   * Makes sure the partitions for these records' periods exist before the write transaction
   * (DDL there would hold the parent's exclusive lock for the whole write). Serialized by an
   * advisory lock so concurrent writers do not race to create the same partition.
   */
  private async ensurePartitions(table: 'points' | 'features', records: readonly ObservationRecord[]): Promise<void> {
    if (this.layout !== 'native' && this.layout !== 'pg_partman') return;
    const interval = this.config.partition_interval;
    const missing = periodsOf(
      records.map((r) => r.timeUs),
      interval,
    ).filter((p) => !this.partitions.has(`${table} ${p.start.getTime()}`));
    if (missing.length === 0) return;
    await this.transaction('READ COMMITTED', async (client) => {
      await this.lockDdl(client);
      if (this.layout === 'pg_partman') {
        // Creates the children that do not exist yet (it checks by name) from each period start.
        await client.query(`SELECT ${pg.escapeIdentifier(this.partman)}.create_partition_time($1, $2::timestamptz[])`, [
          this.qualified(table),
          missing.map((p) => p.start.toISOString()),
        ]);
      } else {
        for (const period of missing) await this.createNativePartition(client, table, period);
      }
    });
    for (const period of missing) this.partitions.add(`${table} ${period.start.getTime()}`);
  }

  private async createNativePartition(client: pg.PoolClient, table: 'points' | 'features', period: Period): Promise<void> {
    const name = partitionName(tables[table], period, this.config.partition_interval);
    try {
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${pg.escapeIdentifier(this.config.schema)}.${pg.escapeIdentifier(name)}
         PARTITION OF ${this.t[table]} FOR VALUES FROM ('${period.start.toISOString()}') TO ('${period.end.toISOString()}')`,
      );
    } catch (cause) {
      if ((cause as { code?: string }).code === '42P17') {
        throw new ConfigError(
          `${this.qualified(table)} already has partitions that overlap ${name}: they were made with another partition_interval than "${this.config.partition_interval}"; keep the interval the table was created with`,
          [{ file: '', path: 'partition_interval', message: 'differs from the existing partitions' }],
          { cause, context: this.context('writeRecords') },
        );
      }
      throw cause;
    }
  }

  // ------------------------------------------------------------------ setup

  /** Prepares the database once per storage; a failed attempt (server down) is tried again by the next call. */
  private async ready(operation: string, key?: string): Promise<void> {
    this.readiness ??= this.prepare().catch((error: unknown) => {
      this.readiness = undefined;
      throw error;
    });
    try {
      await this.readiness;
    } catch (cause) {
      throw this.fail(operation, key, cause);
    }
  }

  private async prepare(): Promise<void> {
    const { schema, postgis_enabled: postgis } = this.config;
    await this.transaction('READ COMMITTED', async (client) => {
      // Concurrent CREATE ... IF NOT EXISTS can still collide in the system catalogs: openers take turns.
      await this.lockDdl(client);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(schema)}`);
      await this.createObjectTables(client);
      const postgisSchema = postgis ? await this.requireExtension(client, 'postgis', 'postgis_enabled', 'set postgis_enabled: false (no geometry columns)') : '';
      if (postgis) await this.checkSrid(client, postgisSchema);
      if (this.config.topology) await this.requireExtension(client, 'postgis_topology', 'topology', 'set topology: false');
      if (this.layout === 'timescaledb') this.timescale = await this.requireTimescale(client);
      if (this.layout === 'pg_partman') this.partman = await this.requireExtension(client, 'pg_partman', 'partitioning', 'choose partitioning: native', 'partman');
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${this.t.recordKeys} (
          object_key text COLLATE "C" PRIMARY KEY,
          memory_type text NOT NULL,
          dataset text NOT NULL,
          point_rows bigint NOT NULL,
          feature_rows bigint NOT NULL,
          time_min_us bigint,
          time_max_us bigint,
          written_at timestamptz NOT NULL
        )`);
      await this.createRecordTable(client, 'points', pointColumns, postgisSchema);
      await this.createRecordTable(client, 'features', featureColumns, postgisSchema);
    });
  }

  private async createObjectTables(client: pg.PoolClient): Promise<void> {
    // Only when missing: ALTER TABLE would take an exclusive lock on every open.
    if (await this.exists(client, this.t.chunks)) return;
    await client.query(`
      CREATE TABLE IF NOT EXISTS ${this.t.objects} (
        key text COLLATE "C" PRIMARY KEY,
        size bigint NOT NULL,
        chunk_size integer NOT NULL,
        modified timestamptz NOT NULL,
        content_type text
      );
      CREATE TABLE ${this.t.chunks} (
        key text COLLATE "C" NOT NULL,
        seq integer NOT NULL,
        bytes bytea NOT NULL,
        PRIMARY KEY (key, seq)
      );
      -- Objects are mostly compressed already; uncompressed out-of-line storage lets substring read a slice.
      ALTER TABLE ${this.t.chunks} ALTER COLUMN bytes SET STORAGE EXTERNAL;`);
  }

  /** Whether a table or index exists, without taking a lock on anything. */
  private async exists(client: pg.PoolClient, qualifiedName: string): Promise<boolean> {
    const { rows } = await client.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [qualifiedName]);
    return rows[0]!.found;
  }

  /**
   * The `geom` column of a record table: its type and the expression that generates it from the
   * exact columns (records are WGS84 lon/lat; another SRID is reached with ST_Transform).
   */
  private geometryColumn(table: 'points' | 'features', postgisSchema: string): string {
    const fn = (name: string) => `${pg.escapeIdentifier(postgisSchema)}.${name}`;
    const { srid } = this.config;
    const wgs84 =
      table === 'points'
        ? `${fn('ST_SetSRID')}(${fn('ST_MakePoint')}(lon, lat), 4326)`
        : `${fn('ST_Force2D')}(${fn('ST_SetSRID')}(${fn('ST_GeomFromGeoJSON')}(geometry_json), 4326))`;
    const expression = srid === 4326 ? wgs84 : `${fn('ST_Transform')}(${wgs84}, ${srid})`;
    return `geom ${fn('geometry')}(${table === 'points' ? 'Point' : 'Geometry'}, ${srid}) GENERATED ALWAYS AS (${expression}) STORED`;
  }

  /**
   * Creates a record table (partitioned, pg_partman-managed or a hypertable as configured) with
   * its indexes, or checks that the existing one matches the configuration.
   */
  private async createRecordTable<R>(
    client: pg.PoolClient,
    table: 'points' | 'features',
    columns: Column<R>[],
    postgisSchema: string,
  ): Promise<void> {
    const name = tables[table];
    const { rows } = await client.query<{ relkind: string }>('SELECT relkind FROM pg_class WHERE oid = to_regclass($1)', [this.t[table]]);
    if (rows.length > 0) {
      await this.checkExistingTable(client, table, rows[0]!.relkind, postgisSchema);
    } else {
      const partitioned = this.layout === 'native' || this.layout === 'pg_partman';
      const columnSql = columns.map((c) => `${c.name} ${c.type}${c.notNull ? ' NOT NULL' : ''}`);
      const geom = postgisSchema ? [this.geometryColumn(table, postgisSchema)] : [];
      await client.query(`
        CREATE TABLE ${this.t[table]} (
          object_key text COLLATE "C" NOT NULL,
          memory_type text NOT NULL,
          observed_at timestamptz NOT NULL,
          ${[...columnSql, ...geom].join(',\n          ')}
        ) ${partitioned ? 'PARTITION BY RANGE (observed_at)' : ''};
        CREATE INDEX ${name}_object_key ON ${this.t[table]} (object_key, source, source_partition, source_offset);
        CREATE INDEX ${name}_observed_at ON ${this.t[table]} USING brin (observed_at);`);
      if (this.layout === 'pg_partman') {
        await client.query(`SELECT ${pg.escapeIdentifier(this.partman)}.create_parent($1, 'observed_at', 'native', $2)`, [
          this.qualified(table),
          partmanIntervals[this.config.partition_interval],
        ]);
      }
      if (this.layout === 'timescaledb') {
        await client.query(`SELECT ${pg.escapeIdentifier(this.timescale)}.create_hypertable($1::regclass, 'observed_at', chunk_time_interval => $2::interval, if_not_exists => true)`, [
          this.t[table],
          timescaleIntervals[this.config.partition_interval],
        ]);
      }
    }
    // Checked first: CREATE INDEX IF NOT EXISTS would still wait for a SHARE lock behind running writers.
    const gist = `${pg.escapeIdentifier(this.config.schema)}.${name}_geom`;
    if (postgisSchema && this.config.spatial_index && !(await this.exists(client, gist))) {
      await client.query(`CREATE INDEX IF NOT EXISTS ${name}_geom ON ${this.t[table]} USING gist (geom)`);
    }
  }

  /** A table made by an earlier run with other settings is reported, not silently used differently. */
  private async checkExistingTable(client: pg.PoolClient, table: 'points' | 'features', relkind: string, postgisSchema: string): Promise<void> {
    const wantsGeometry = postgisSchema !== '';
    const qualified = this.qualified(table);
    const partitioned = relkind === 'p';
    const wantsPartitioned = this.layout === 'native' || this.layout === 'pg_partman';
    if (partitioned !== wantsPartitioned) {
      throw this.configError(
        'partitioning',
        `${qualified} exists ${partitioned ? 'with' : 'without'} declarative partitions, but the configuration (${this.layout}) wants it ${wantsPartitioned ? 'partitioned' : 'unpartitioned'}; use another schema or migrate the table`,
      );
    }
    const { rows } = await client.query<{ srid: number | null }>(
      `SELECT ${postgisSchema ? `${pg.escapeIdentifier(postgisSchema)}.postgis_typmod_srid(a.atttypmod)` : 'NULL'} AS srid
         FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = 'geom' AND NOT a.attisdropped`,
      [this.t[table]],
    );
    if (wantsGeometry && rows.length === 0) {
      throw this.configError('postgis_enabled', `${qualified} was created without a geom column (postgis_enabled: false); use another schema or add the column`);
    }
    if (wantsGeometry && rows[0]!.srid !== this.config.srid) {
      throw this.configError('srid', `${qualified}.geom has SRID ${rows[0]!.srid}, but srid is ${this.config.srid}; keep the SRID the table was created with`);
    }
    if (this.layout === 'pg_partman' || this.layout === 'native') {
      const managed = await this.partmanManages(client, table);
      if (managed !== (this.layout === 'pg_partman')) {
        throw this.configError(
          'partitioning',
          `${qualified} is ${managed ? '' : 'not '}managed by pg_partman, but partitioning is ${this.layout}; keep the partitioning the table was created with`,
        );
      }
    }
  }

  private async partmanManages(client: pg.PoolClient, table: 'points' | 'features'): Promise<boolean> {
    const { rows } = await client.query<{ schema: string }>(
      `SELECT n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_partman'`,
    );
    if (rows.length === 0) return false;
    const config = await client.query(`SELECT 1 FROM ${pg.escapeIdentifier(rows[0]!.schema)}.part_config WHERE parent_table = $1`, [
      this.qualified(table),
    ]);
    return config.rows.length > 0;
  }

  /**
   * Creates the extension if the server offers it and returns its schema; a server without it is a
   * configuration error naming the key that asked for it and what to choose instead.
   */
  private async requireExtension(client: pg.PoolClient, extension: string, key: string, instead: string, schema?: string): Promise<string> {
    const installed = await this.extensionSchema(client, extension);
    if (installed !== undefined) return installed;
    const { rows } = await client.query('SELECT 1 FROM pg_available_extensions WHERE name = $1', [extension]);
    if (rows.length === 0) {
      throw this.configError(key, `the PostgreSQL server at ${this.server} does not have the ${extension} extension installed; install it on the server, or ${instead}`);
    }
    if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(schema)}`);
    await client.query(`CREATE EXTENSION IF NOT EXISTS ${pg.escapeIdentifier(extension)}${schema === undefined ? '' : ` SCHEMA ${pg.escapeIdentifier(schema)}`} CASCADE`);
    return (await this.extensionSchema(client, extension))!;
  }

  private async requireTimescale(client: pg.PoolClient): Promise<string> {
    const { rows } = await client.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'`);
    if (rows.length === 0) {
      throw this.configError(
        'timescaledb_enabled',
        `timescaledb_enabled is true, but the PostgreSQL server at ${this.server} does not have the timescaledb extension installed (pg_available_extensions); ` +
          'install TimescaleDB on the server, or set timescaledb_enabled: false and choose partitioning: native or partitioning: pg_partman explicitly',
      );
    }
    try {
      await client.query('CREATE EXTENSION IF NOT EXISTS timescaledb');
    } catch (cause) {
      // Typically: timescaledb is installed but not in shared_preload_libraries.
      throw this.configError('timescaledb_enabled', `CREATE EXTENSION timescaledb failed on ${this.server}: ${(cause as Error).message}`, cause);
    }
    return (await this.extensionSchema(client, 'timescaledb'))!;
  }

  private async checkSrid(client: pg.PoolClient, postgisSchema: string): Promise<void> {
    const { rows } = await client.query(`SELECT 1 FROM ${pg.escapeIdentifier(postgisSchema)}.spatial_ref_sys WHERE srid = $1`, [this.config.srid]);
    if (rows.length === 0) throw this.configError('srid', `SRID ${this.config.srid} is not in spatial_ref_sys on ${this.server}`);
  }

  private async extensionSchema(client: pg.PoolClient, extension: string): Promise<string | undefined> {
    const { rows } = await client.query<{ schema: string }>(
      'SELECT n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = $1',
      [extension],
    );
    return rows[0]?.schema;
  }

  // ------------------------------------------------------------------ helpers

  /** Serializes writers of one key (objects and records are separate namespaces) until commit. */
  private async lockKey(client: pg.PoolClient, namespace: 'object' | 'records', key: string): Promise<void> {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`earthmem ${namespace} ${this.config.schema} ${key}`]);
  }

  private async lockDdl(client: pg.PoolClient): Promise<void> {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`earthmem ddl ${this.config.schema}`]);
  }

  private async transaction<T>(isolation: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A connection whose rollback failed is in an unknown state: the pool must discard it.
    let broken: Error | undefined;
    // A server restart while the client is checked out is emitted as 'error' on the client (a
    // crash without a listener); the statement under way fails, and the caller retries the write.
    const onError = (error: Error) => {
      broken ??= error;
    };
    client.on('error', onError);
    try {
      await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => {
        broken = rollbackError;
      });
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  private qualified(table: 'points' | 'features'): string {
    return `${this.config.schema}.${tables[table]}`;
  }

  private context(operation: string, key?: string): ErrorContext {
    return { connector, operation, server: this.server, ...(key === undefined ? {} : { key }) };
  }

  private configError(key: string, message: string, cause?: unknown): ConfigError {
    return new ConfigError(`${this.type} backend: ${key}: ${message}`, [{ file: '', path: key, message }], {
      ...(cause === undefined ? {} : { cause }),
      context: { connector },
    });
  }

  private fail(operation: string, key: string | undefined, cause: unknown): Error {
    return postgresFailure(cause, operation, key, { server: this.server });
  }
}

/** `LIKE` pattern for keys starting with `prefix` (the column is COLLATE "C", so an index serves it). */
function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, '\\$&')}%`;
}

/** Parameters $1..$3 of a key's rows: the key and its recorded time range as exact timestamptz literals. */
function timeBounds(key: string, registered: KeyRow): [string, string, string] {
  return [key, timestampLiteral(safeInteger(registered.time_min_us)), timestampLiteral(safeInteger(registered.time_max_us))];
}

function bySourcePosition(a: ObservationRecord, b: ObservationRecord): number {
  if (a.position.source !== b.position.source) return a.position.source < b.position.source ? -1 : 1;
  return a.position.partition - b.position.partition || a.position.offset - b.position.offset;
}

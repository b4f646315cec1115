import pg from 'pg';
import type { ProvenanceRange } from '../core/batch.js';
import { CatalogError, EarthMemoryError, FencedError, type ErrorContext } from '../core/errors.js';
import { redactUrl } from '../core/redact.js';
import {
  CATALOG_SCHEMA_VERSION, objectIdOf,
  type AgingRun, type Catalog, type CatalogEntry, type CatalogFilter, type CatalogRow, type CoveredRange, type MigrationJobRecord, type MigrationJobState,
  type MigrationPlanStep, type MigrationStep, type MigrationStepState, type MigrationWritten, type PartitionClaim, type SourcePartition,
} from './catalog.js';
import { toCatalogRow, toCoveredRange, toMigrationJob, toMigrationStep, type ColumnReaders, type JobColumns, type ObjectColumns, type StepColumns } from './rows.js';

export interface PostgresCatalogOptions {
  /** `postgresql://user:password@host:port/database`; never logged or put in errors. */
  connectionString: string;
  /** Where the tables live; created if missing. Default `earthmem`. */
  schema?: string;
  /** Pool size of this catalog (one per worker). Default 10. */
  maxConnections?: number;
}

/** An unreachable server otherwise hangs a connect forever (no TCP timeout on a silent drop). */
const connectTimeoutMs = 10_000;
/** 28 parameters per row stays far below PostgreSQL's 65,535 parameters per statement. */
const rowsPerInsert = 1_000;

/** Lower-case identifiers only: the name is interpolated (quoted) into DDL and every query. */
const schemaNamePattern = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The columns of `objects` that an upsert writes, each with how it is derived from an entry (the
 * source columns index single-partition objects for `coverage`). Column list and values come from
 * this one table so they cannot drift apart.
 */
const upsertColumns: ReadonlyArray<readonly [string, (e: CatalogEntry, single: ProvenanceRange | undefined) => unknown]> = [
  ['tier', (e) => e.tier],
  ['key', (e) => e.key],
  ['backend', (e) => e.backend],
  ['uri', (e) => e.uri],
  ['memory_type', (e) => e.memoryType],
  ['dataset', (e) => e.dataset],
  ['kind', (e) => e.kind],
  ['partition_path', (e) => e.partitionPath],
  ['format', (e) => e.format],
  ['codec', (e) => e.codec],
  ['codec_level', (e) => e.codecLevel],
  ['bytes', (e) => e.bytes],
  ['rows', (e) => e.rows],
  ['time_min_us', (e) => e.timeMinUs],
  ['time_max_us', (e) => e.timeMaxUs],
  ['bbox_min_lon', (e) => e.bbox[0]],
  ['bbox_min_lat', (e) => e.bbox[1]],
  ['bbox_max_lon', (e) => e.bbox[2]],
  ['bbox_max_lat', (e) => e.bbox[3]],
  ['sha256', (e) => e.sha256],
  // pg would send a JS array as a PostgreSQL array literal: JSONB needs the JSON text.
  ['provenance', (e) => JSON.stringify(e.provenance)],
  ['source', (_, single) => single?.source ?? null],
  ['source_partition', (_, single) => single?.partition ?? null],
  ['first_offset', (_, single) => single?.firstOffset ?? null],
  ['last_offset', (_, single) => single?.lastOffset ?? null],
  ['state', (e) => e.state],
  ['object_id', (e) => objectIdOf(e.key)],
  ['raster', (e) => (e.raster ? JSON.stringify(e.raster) : null)],
];

const objectColumns = `tier, key, backend, uri, memory_type, dataset, kind, partition_path, format, codec, codec_level,
  bytes, rows, time_min_us, time_max_us, bbox_min_lon, bbox_min_lat, bbox_max_lon, bbox_max_lat, sha256, provenance,
  source, source_partition, first_offset, last_offset, state, created_at, updated_at, last_accessed_at, access_count, tier_since, raster`;

/** A row as pg returns it: BIGINT as a decimal string, TIMESTAMPTZ as a Date, JSONB parsed. */
type ObjectRow = ObjectColumns<string, Date, ProvenanceRange[]>;

const readColumns: ColumnReaders<string, Date, ProvenanceRange[]> = {
  integer: toNumber,
  time: (value) => value.toISOString(),
  // JSONB reorders object keys: rebuild each range in the interface's order, as SQLite returns it.
  provenance: (ranges) =>
    ranges.map((p) => ({ source: p.source, partition: p.partition, firstOffset: p.firstOffset, lastOffset: p.lastOffset, count: p.count })),
  json: (value) => value,
};

type JsonColumn = ProvenanceRange[];

/**
 * The shared catalog for several workers: the same rows and semantics as the SQLite catalog, in
 * PostgreSQL. Times come from the server's clock (one clock for every worker); `list` returns
 * them as ISO strings with millisecond precision, like SQLite.
 */
export class PostgresCatalog implements Catalog {
  readonly type = 'postgresql';
  /** The connection string without its password. */
  readonly location: string;
  private readonly schema: string;
  private readonly pool: pg.Pool;
  private readonly objects: string;
  private readonly claims: string;
  private readonly meta: string;
  private readonly jobs: string;
  private readonly steps: string;
  private readonly leases: string;
  private readonly agingRuns_: string;
  private readonly accesses: string;

  constructor(options: PostgresCatalogOptions) {
    this.schema = options.schema ?? 'earthmem';
    if (!schemaNamePattern.test(this.schema)) {
      throw new CatalogError(`PostgreSQL catalog schema "${this.schema}" is not a lower-case identifier (a-z, 0-9, _; at most 63)`, {
        context: { connector: 'postgresql' },
      });
    }
    this.location = redactConnectionString(options.connectionString);
    const quotedSchema = pg.escapeIdentifier(this.schema);
    this.objects = `${quotedSchema}.objects`;
    this.claims = `${quotedSchema}.partition_claims`;
    this.meta = `${quotedSchema}.catalog_meta`;
    this.jobs = `${quotedSchema}.migration_jobs`;
    this.steps = `${quotedSchema}.migration_steps`;
    this.leases = `${quotedSchema}.leases`;
    this.agingRuns_ = `${quotedSchema}.aging_runs`;
    this.accesses = `${quotedSchema}.object_accesses`;
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: connectTimeoutMs,
      application_name: 'earthmem',
    });
    // An idle pooled connection broke (server restart, network): the pool has already dropped it,
    // and the next query opens a new one or fails with its own error, which callers get. Without a
    // listener Node would crash the process on this event.
    this.pool.on('error', () => {});
  }

  /** Connects and creates the schema, tables and indexes if missing (safe from many workers at once). */
  static async open(options: PostgresCatalogOptions): Promise<PostgresCatalog> {
    const catalog = new PostgresCatalog(options);
    try {
      await catalog.createTables();
    } catch (error) {
      await catalog.pool.end();
      throw error;
    }
    return catalog;
  }

  async upsert(entries: readonly CatalogEntry[], fence: readonly PartitionClaim[] = []): Promise<{ entry: CatalogEntry; tier: string }[]> {
    if (entries.length === 0 && fence.length === 0) return [];
    try {
      return await this.transaction(async (client) => {
        await this.checkFence(client, fence);
        const moved = await this.lockObjects(client, entries.map((e) => objectIdOf(e.key)));
        const superseded: { entry: CatalogEntry; tier: string }[] = [];
        const current = entries.filter((entry) => {
          const tier = moved.get(objectIdOf(entry.key))?.find((t) => t !== entry.tier);
          if (tier !== undefined) superseded.push({ entry, tier });
          return tier === undefined;
        });
        for (let start = 0; start < current.length; start += rowsPerInsert) {
          await this.insertObjects(client, lockOrder(current.slice(start, start + rowsPerInsert)));
        }
        return superseded;
      });
    } catch (cause) {
      throw catalogFailure('catalog upsert failed', cause, { key: entries[0]?.key });
    }
  }

  async coverage(source: string, partition: number, fromOffset: number): Promise<CoveredRange[]> {
    try {
      const { rows } = await this.pool.query<ObjectRow>(
        `SELECT key, tier, memory_type, kind, dataset, partition_path, source, source_partition, first_offset, last_offset
         FROM ${this.objects}
         WHERE source = $1 AND source_partition = $2 AND last_offset >= $3
         ORDER BY first_offset, tier, key`,
        [source, partition, fromOffset],
      );
      return rows.map((r) => toCoveredRange(r, readColumns));
    } catch (cause) {
      throw catalogFailure('catalog coverage query failed', cause, { source, partition });
    }
  }

  async claimPartitions(owner: string, partitions: readonly SourcePartition[]): Promise<PartitionClaim[]> {
    if (partitions.length === 0) return [];
    try {
      return await this.transaction(async (client) => {
        const epochs: number[] = new Array(partitions.length);
        // Rows are locked in one global order so two workers claiming overlapping sets cannot deadlock.
        const order = partitions.map((_, index) => index).sort((a, b) => comparePartitions(partitions[a]!, partitions[b]!));
        for (const index of order) {
          const { source, partition } = partitions[index]!;
          const { rows } = await client.query<{ epoch: string }>(
            `INSERT INTO ${this.claims} AS existing (source, source_partition, owner, epoch, claimed_at)
             VALUES ($1, $2, $3, 1, now())
             ON CONFLICT (source, source_partition) DO UPDATE
               SET owner = EXCLUDED.owner, epoch = existing.epoch + 1, claimed_at = EXCLUDED.claimed_at
             RETURNING epoch`,
            [source, partition, owner],
          );
          epochs[index] = toNumber(rows[0]!.epoch);
        }
        return partitions.map((p, index) => ({ source: p.source, partition: p.partition, epoch: epochs[index]! }));
      });
    } catch (cause) {
      throw catalogFailure('claiming partitions failed', cause, { source: partitions[0]?.source });
    }
  }

  async list(filter: CatalogFilter = {}): Promise<CatalogRow[]> {
    const where: string[] = [];
    const params: string[] = [];
    const match = (column: string, value: string | undefined) => {
      if (value === undefined) return;
      params.push(value);
      where.push(`${column} = $${params.length}`);
    };
    match('key', filter.key);
    match('memory_type', filter.memoryType);
    match('tier', filter.tier);
    match('dataset', filter.dataset);
    try {
      const { rows } = await this.pool.query<ObjectRow>(
        `SELECT ${objectColumns} FROM ${this.objects} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY tier, key`,
        params,
      );
      return rows.map((r) => toCatalogRow(r, readColumns));
    } catch (cause) {
      throw catalogFailure('catalog list failed', cause);
    }
  }

  async recordAccess(tier: string, key: string, count = 1): Promise<void> {
    try {
      // One statement (no transaction left open between two round trips): the total and the hour's count.
      await this.pool.query(
        `WITH read AS (
           UPDATE ${this.objects} SET access_count = access_count + $1, last_accessed_at = now() WHERE tier = $2 AND key = $3 RETURNING object_id
         )
         INSERT INTO ${this.accesses} AS a (object_id, hour, count)
         SELECT object_id, floor(extract(epoch from now()) / 3600), $1 FROM read
         ON CONFLICT (object_id, hour) DO UPDATE SET count = a.count + EXCLUDED.count`,
        [count, tier, key],
      );
    } catch (cause) {
      throw catalogFailure('recording catalog access failed', cause, { key });
    }
  }

  async recentAccesses(sinceMs: number): Promise<Map<string, number>> {
    try {
      const { rows } = await this.pool.query<{ object_id: string; n: string }>(
        `SELECT object_id, sum(count) AS n FROM ${this.accesses} WHERE hour >= $1 GROUP BY object_id`,
        [Math.floor(sinceMs / 3_600_000)],
      );
      return new Map(rows.map((r) => [r.object_id, Number(r.n)]));
    } catch (cause) {
      throw catalogFailure('reading recent accesses failed', cause);
    }
  }

  async close(): Promise<void> {
    if (!this.pool.ended) await this.pool.end();
  }

  /**
   * The schema, as forward migrations: entry N-1 takes the catalog from version N-1 to N. Version 1
   * is the first release's schema, which had no version table (its IF NOT EXISTS makes it a no-op
   * on such a catalog).
   */
  private migrations(): string[] {
    return [
      `CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(this.schema)};
      -- COLLATE "C": byte order, so tier/key ordering and equality are the same as SQLite's.
      CREATE TABLE IF NOT EXISTS ${this.objects} (
        tier TEXT COLLATE "C" NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        backend TEXT NOT NULL,
        uri TEXT NOT NULL,
        memory_type TEXT NOT NULL,
        dataset TEXT NOT NULL,
        kind TEXT NOT NULL,
        partition_path TEXT NOT NULL,
        format TEXT NOT NULL,
        codec TEXT NOT NULL,
        codec_level INTEGER,
        bytes BIGINT NOT NULL,
        rows BIGINT NOT NULL,
        time_min_us BIGINT NOT NULL,
        time_max_us BIGINT NOT NULL,
        bbox_min_lon DOUBLE PRECISION NOT NULL,
        bbox_min_lat DOUBLE PRECISION NOT NULL,
        bbox_max_lon DOUBLE PRECISION NOT NULL,
        bbox_max_lat DOUBLE PRECISION NOT NULL,
        sha256 TEXT NOT NULL,
        provenance JSONB NOT NULL,
        source TEXT COLLATE "C",
        source_partition INTEGER,
        first_offset BIGINT,
        last_offset BIGINT,
        state TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        last_accessed_at TIMESTAMPTZ,
        access_count BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (tier, key)
      );
      CREATE INDEX IF NOT EXISTS objects_memory_type ON ${this.objects} (memory_type, time_min_us);
      CREATE INDEX IF NOT EXISTS objects_dataset ON ${this.objects} (dataset, time_min_us);
      CREATE INDEX IF NOT EXISTS objects_coverage ON ${this.objects} (source, source_partition, last_offset);
      CREATE TABLE IF NOT EXISTS ${this.claims} (
        source TEXT COLLATE "C" NOT NULL,
        source_partition INTEGER NOT NULL,
        owner TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        claimed_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (source, source_partition)
      );`,
      `CREATE TABLE ${this.jobs} (
        id TEXT COLLATE "C" PRIMARY KEY,
        spec JSONB NOT NULL,
        plan_hash TEXT NOT NULL,
        state TEXT NOT NULL,
        error TEXT,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
      );
      CREATE TABLE ${this.steps} (
        job_id TEXT COLLATE "C" NOT NULL REFERENCES ${this.jobs} (id),
        source_tier TEXT COLLATE "C" NOT NULL,
        source_key TEXT COLLATE "C" NOT NULL,
        destination_tier TEXT NOT NULL,
        bytes BIGINT NOT NULL,
        state TEXT NOT NULL,
        written JSONB,
        note TEXT,
        group_key TEXT,
        updated_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (job_id, source_tier, source_key)
      );
      CREATE INDEX migration_steps_open ON ${this.steps} (state);
      ALTER TABLE ${this.objects} ADD COLUMN object_id TEXT COLLATE "C";
      UPDATE ${this.objects} SET object_id = regexp_replace(key, '\\.[^./]*$', '');
      CREATE INDEX objects_object_id ON ${this.objects} (object_id);
      CREATE TABLE ${this.leases} (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
      );
      ALTER TABLE ${this.objects} ADD COLUMN tier_since TIMESTAMPTZ;
      UPDATE ${this.objects} SET tier_since = created_at;
      CREATE TABLE ${this.accesses} (
        object_id TEXT COLLATE "C" NOT NULL,
        hour BIGINT NOT NULL,
        count BIGINT NOT NULL,
        PRIMARY KEY (object_id, hour)
      );
      CREATE TABLE ${this.agingRuns_} (
        policy TEXT COLLATE "C" NOT NULL,
        source_tier TEXT COLLATE "C" NOT NULL,
        run JSONB NOT NULL,
        PRIMARY KEY (policy, source_tier)
      );`,
      `ALTER TABLE ${this.objects} ADD COLUMN raster JSONB;`,
    ];
  }

  /** The schema version of the catalog (1 for a first-release catalog). */
  async schemaVersion(): Promise<number> {
    const { rows } = await this.pool.query<{ value: number }>(`SELECT value FROM ${this.meta} WHERE name = 'schema_version'`);
    return rows[0]!.value;
  }

  /** Creates or upgrades the schema to CATALOG_SCHEMA_VERSION; refuses a newer one. Safe from many workers at once. */
  private async createTables(): Promise<void> {
    try {
      await this.transaction(async (client) => {
        // Concurrent CREATE ... IF NOT EXISTS can still collide in the system catalogs (unique
        // violation on pg_type/pg_namespace): workers opening at once take turns.
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`earthmem catalog ${this.schema}`]);
        // A current schema needs no DDL: CREATE … IF NOT EXISTS would still lock the tables that
        // running workers write to.
        const { rows: exists } = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`${pg.escapeIdentifier(this.schema)}.catalog_meta`]);
        if (exists[0]?.t !== null && exists[0]?.t !== undefined) {
          const { rows: meta } = await client.query<{ value: number }>(`SELECT value FROM ${this.meta} WHERE name = 'schema_version'`);
          if (meta[0]?.value === CATALOG_SCHEMA_VERSION) return;
        }
        const migrations = this.migrations();
        await client.query(migrations[0]!);
        await client.query(`CREATE TABLE IF NOT EXISTS ${this.meta} (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
          INSERT INTO ${this.meta} (name, value) VALUES ('schema_version', 1) ON CONFLICT (name) DO NOTHING`);
        const { rows } = await client.query<{ value: number }>(`SELECT value FROM ${this.meta} WHERE name = 'schema_version'`);
        let version = rows[0]!.value;
        if (version > CATALOG_SCHEMA_VERSION) {
          throw new CatalogError(`PostgreSQL catalog schema ${this.schema} has version ${version}, newer than this earthmem knows (${CATALOG_SCHEMA_VERSION}): upgrade earthmem`, {
            context: { connector: 'postgresql', schema: this.schema },
          });
        }
        for (; version < CATALOG_SCHEMA_VERSION; version++) await client.query(migrations[version]!);
        await client.query(`UPDATE ${this.meta} SET value = $1 WHERE name = 'schema_version'`, [version]);
      });
    } catch (cause) {
      throw catalogFailure('cannot open PostgreSQL catalog', cause, { schema: this.schema });
    }
  }

  async createMigrationJob(job: Omit<MigrationJobRecord, 'state' | 'error' | 'createdAt' | 'updatedAt'>, steps: readonly MigrationPlanStep[]): Promise<void> {
    try {
      await this.transaction(async (client) => {
        const { rowCount } = await client.query(
          `INSERT INTO ${this.jobs} (id, spec, plan_hash, state, error, created_at, updated_at) VALUES ($1, $2, $3, 'planned', NULL, now(), now())
           ON CONFLICT (id) DO NOTHING`,
          [job.id, JSON.stringify(job.spec), job.planHash],
        );
        if (rowCount === 0) return;
        for (let start = 0; start < steps.length; start += rowsPerInsert) {
          const chunk = steps.slice(start, start + rowsPerInsert);
          const params: unknown[] = [job.id];
          const tuples = chunk.map((step) => {
            params.push(step.sourceTier, step.sourceKey, step.destinationTier, step.bytes, step.group ?? null);
            const n = params.length;
            return `($1, $${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, 'planned', NULL, NULL, $${n}, now())`;
          });
          await client.query(
            `INSERT INTO ${this.steps} (job_id, source_tier, source_key, destination_tier, bytes, state, written, note, group_key, updated_at) VALUES ${tuples.join(', ')}`,
            params,
          );
        }
      });
    } catch (cause) {
      throw catalogFailure('creating migration job failed', cause, { key: job.id });
    }
  }

  async migrationJob(id: string): Promise<{ job: MigrationJobRecord; steps: MigrationStep[] } | undefined> {
    try {
      const jobs = await this.pool.query<JobColumns<Date, JsonColumn>>(`SELECT * FROM ${this.jobs} WHERE id = $1`, [id]);
      if (jobs.rows.length === 0) return undefined;
      const steps = await this.pool.query<StepColumns<string, Date, JsonColumn>>(
        `SELECT * FROM ${this.steps} WHERE job_id = $1 ORDER BY source_tier, source_key`,
        [id],
      );
      return { job: toMigrationJob(jobs.rows[0]!, readColumns), steps: steps.rows.map((r) => toMigrationStep(r, readColumns)) };
    } catch (cause) {
      throw catalogFailure('reading migration job failed', cause, { key: id });
    }
  }

  async setMigrationJobState(id: string, state: MigrationJobState, error: string | null = null): Promise<void> {
    try {
      await this.pool.query(`UPDATE ${this.jobs} SET state = $1, error = $2, updated_at = now() WHERE id = $3`, [state, error, id]);
    } catch (cause) {
      throw catalogFailure('updating migration job failed', cause, { key: id });
    }
  }

  async updateMigrationStep(
    jobId: string, sourceTier: string, sourceKey: string, state: MigrationStepState, update: { written?: MigrationWritten; note?: string | null } = {},
  ): Promise<void> {
    try {
      await this.transaction(async (client) => {
        await client.query(
          `UPDATE ${this.steps} SET state = $1, written = COALESCE($2::jsonb, written), note = $3, updated_at = now()
           WHERE job_id = $4 AND source_tier = $5 AND source_key = $6`,
          [state, update.written === undefined ? null : JSON.stringify(update.written), update.note ?? null, jobId, sourceTier, sourceKey],
        );
        const objectState = state === 'copied' ? 'migrating' : state === 'failed' ? 'committed' : undefined;
        if (objectState !== undefined) {
          await client.query(`UPDATE ${this.objects} SET state = $1 WHERE tier = $2 AND key = $3`, [objectState, sourceTier, sourceKey]);
        }
      });
    } catch (cause) {
      throw catalogFailure('updating migration step failed', cause, { key: sourceKey });
    }
  }

  async switchTier(jobId: string, sources: readonly { tier: string; key: string; sha256: string }[], entry: CatalogEntry): Promise<void> {
    try {
      await this.transaction(async (client) => {
        await this.lockObjects(client, [...sources.map((s) => objectIdOf(s.key)), objectIdOf(entry.key)]);
        const olds: { created_at: Date; last_accessed_at: Date | null; access_count: string }[] = [];
        for (const source of sources) {
          const { rows } = await client.query<{ created_at: Date; last_accessed_at: Date | null; access_count: string; sha256: string }>(
            `DELETE FROM ${this.objects} WHERE tier = $1 AND key = $2 RETURNING created_at, last_accessed_at, access_count, sha256`,
            [source.tier, source.key],
          );
          const old = rows[0];
          if (old === undefined || old.sha256 !== source.sha256) {
            throw new CatalogError(`${source.tier}/${source.key} is no longer the object that was planned (${old === undefined ? 'gone' : 'rewritten'}): not switched`, {
              context: { connector: 'postgresql', key: source.key, tier: source.tier },
            });
          }
          olds.push(old);
        }
        await this.insertObjects(client, [entry]);
        const created = olds.map((o) => o.created_at).sort((a, b) => a.getTime() - b.getTime())[0]!;
        const accessed = olds.map((o) => o.last_accessed_at).filter((t): t is Date => t !== null).sort((a, b) => a.getTime() - b.getTime()).at(-1) ?? null;
        await client.query(`UPDATE ${this.objects} SET created_at = $1, last_accessed_at = $2, access_count = $3 WHERE tier = $4 AND key = $5`, [
          created, accessed, olds.reduce((n, o) => n + Number(o.access_count), 0), entry.tier, entry.key,
        ]);
        for (const source of sources) {
          await client.query(`UPDATE ${this.steps} SET state = 'switched', updated_at = now() WHERE job_id = $1 AND source_tier = $2 AND source_key = $3`, [
            jobId, source.tier, source.key,
          ]);
        }
      });
    } catch (cause) {
      throw catalogFailure('switching tier failed', cause, { key: sources[0]?.key ?? entry.key });
    }
  }

  async migrationJobs(prefix: string): Promise<MigrationJobRecord[]> {
    try {
      const { rows } = await this.pool.query<JobColumns<Date, JsonColumn>>(
        `SELECT * FROM ${this.jobs} WHERE left(id, $1) = $2 ORDER BY created_at, id`,
        [prefix.length, prefix],
      );
      return rows.map((r) => toMigrationJob(r, readColumns));
    } catch (cause) {
      throw catalogFailure('listing migration jobs failed', cause);
    }
  }

  async acquireLease(name: string, owner: string, ttlMs: number, replacing?: string): Promise<boolean> {
    try {
      // One statement: insert, or take over an expired lease, or renew our own; otherwise nothing.
      const { rowCount } = await this.pool.query(
        `INSERT INTO ${this.leases} AS held (name, owner, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
         ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
         WHERE held.owner = EXCLUDED.owner OR held.expires_at <= now() OR held.owner = $4`,
        [name, owner, ttlMs, replacing ?? null],
      );
      return rowCount === 1;
    } catch (cause) {
      throw catalogFailure('taking a lease failed', cause, { key: name });
    }
  }

  async recordAgingRun(run: AgingRun): Promise<void> {
    try {
      await this.pool.query(
        `INSERT INTO ${this.agingRuns_} (policy, source_tier, run) VALUES ($1, $2, $3) ON CONFLICT (policy, source_tier) DO UPDATE SET run = EXCLUDED.run`,
        [run.policy, run.sourceTier, JSON.stringify(run)],
      );
    } catch (cause) {
      throw catalogFailure('recording an aging run failed', cause, { key: run.policy });
    }
  }

  async agingRuns(): Promise<AgingRun[]> {
    try {
      const { rows } = await this.pool.query<{ run: AgingRun }>(`SELECT run FROM ${this.agingRuns_} ORDER BY policy, source_tier`);
      return rows.map((r) => r.run);
    } catch (cause) {
      throw catalogFailure('reading aging runs failed', cause);
    }
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    try {
      await this.pool.query(`DELETE FROM ${this.leases} WHERE name = $1 AND owner = $2`, [name, owner]);
    } catch (cause) {
      throw catalogFailure('releasing a lease failed', cause, { key: name });
    }
  }

  async lease(name: string): Promise<{ owner: string; expiresAt: string } | undefined> {
    try {
      const { rows } = await this.pool.query<{ owner: string; expires_at: Date }>(`SELECT owner, expires_at FROM ${this.leases} WHERE name = $1 AND expires_at > now()`, [name]);
      return rows[0] === undefined ? undefined : { owner: rows[0].owner, expiresAt: rows[0].expires_at.toISOString() };
    } catch (cause) {
      throw catalogFailure('reading a lease failed', cause, { key: name });
    }
  }

  async openMigrationSteps(): Promise<MigrationStep[]> {
    try {
      const { rows } = await this.pool.query<StepColumns<string, Date, JsonColumn>>(`SELECT * FROM ${this.steps} WHERE state <> 'source_deleted'`);
      return rows.map((r) => toMigrationStep(r, readColumns));
    } catch (cause) {
      throw catalogFailure('reading migration steps failed', cause);
    }
  }

  /**
   * Serializes writers of the same objects (an upsert and a tier switch) for the transaction, in
   * one global order (no deadlock), and returns the tiers each object is catalogued in now. Without
   * the lock, a rebuild's upsert could check, then insert after a concurrent switch committed.
   */
  private async lockObjects(client: pg.PoolClient, objectIds: readonly string[]): Promise<Map<string, string[]>> {
    const ids = [...new Set(objectIds)].sort();
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('earthmem object ' || id)) FROM unnest($1::text[]) AS id ORDER BY id`, [ids]);
    const { rows } = await client.query<{ object_id: string; tier: string }>(`SELECT object_id, tier FROM ${this.objects} WHERE object_id = ANY($1)`, [ids]);
    const tiers = new Map<string, string[]>();
    for (const r of rows) tiers.set(r.object_id, [...(tiers.get(r.object_id) ?? []), r.tier]);
    return tiers;
  }

  /**
   * FOR SHARE conflicts with the row lock a claim's UPDATE takes: a check waits for a concurrent
   * claim to commit and then sees its new epoch, and a claim waits for upserts that already
   * passed their check. So once `claimPartitions` returns, no upsert fenced by an older claim
   * commits. (FOR KEY SHARE would not conflict with a non-key UPDATE.)
   */
  private async checkFence(client: pg.PoolClient, fence: readonly PartitionClaim[]): Promise<void> {
    for (const claim of [...fence].sort(comparePartitions)) {
      const { rows } = await client.query<{ epoch: string }>(
        `SELECT epoch FROM ${this.claims} WHERE source = $1 AND source_partition = $2 FOR SHARE`,
        [claim.source, claim.partition],
      );
      const current = rows[0] === undefined ? undefined : toNumber(rows[0].epoch);
      if (current !== claim.epoch) {
        throw new FencedError(`partition ${claim.source}[${claim.partition}] was claimed by another worker`, {
          context: { connector: 'postgresql', source: claim.source, partition: claim.partition },
        });
      }
    }
  }

  private async insertObjects(client: pg.PoolClient, entries: readonly CatalogEntry[]): Promise<void> {
    const params: unknown[] = [];
    const tuples = entries.map((entry) => {
      const single = entry.provenance.length === 1 ? entry.provenance[0] : undefined;
      const placeholders = upsertColumns.map(([, value]) => {
        params.push(value(entry, single));
        return `$${params.length}`;
      });
      return `(${placeholders.join(', ')}, now(), now(), now())`;
    });
    const columns = upsertColumns.map(([column]) => column);
    const replaced = columns.filter((column) => column !== 'tier' && column !== 'key');
    await client.query(
      `INSERT INTO ${this.objects} AS existing (${columns.join(', ')}, created_at, updated_at, tier_since)
       VALUES ${tuples.join(',\n')}
       ON CONFLICT (tier, key) DO UPDATE SET
         ${replaced.map((column) => `${column} = EXCLUDED.${column}`).join(', ')},
         updated_at = CASE WHEN existing.sha256 = EXCLUDED.sha256 THEN existing.updated_at ELSE EXCLUDED.updated_at END`,
      params,
    );
  }

  /** Runs `work` in one READ COMMITTED transaction (the fence relies on its re-read after a lock wait). */
  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A connection whose rollback failed is in an unknown state: the pool must discard it.
    let broken: Error | undefined;
    // The server going away while the client is checked out (a restart between two statements)
    // is emitted as 'error' on the client, which would crash the process without a listener; the
    // statement under way fails anyway, and the caller retries the whole transaction.
    const onError = (error: Error) => {
      broken ??= error;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
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
}

/**
 * The last entry of a (tier, key) wins, like successive statements in SQLite (one INSERT cannot
 * update a row twice), and rows are written in one global order so that concurrent writers of
 * overlapping keys cannot deadlock.
 */
function lockOrder(entries: readonly CatalogEntry[]): CatalogEntry[] {
  const byKey = new Map<string, CatalogEntry>();
  for (const entry of entries) byKey.set(`${entry.tier}\u0000${entry.key}`, entry);
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, entry]) => entry);
}

function comparePartitions(a: SourcePartition, b: SourcePartition): number {
  if (a.source !== b.source) return a.source < b.source ? -1 : 1;
  return a.partition - b.partition;
}

/** BIGINT arrives as a string; every value the engine stores (µs times, offsets, bytes) is a safe integer. */
function toNumber(bigint: string): number {
  const value = Number(bigint);
  if (!Number.isSafeInteger(value)) {
    throw new CatalogError(`catalog value ${bigint} is not a safe JavaScript integer`, { context: { connector: 'postgresql' } });
  }
  return value;
}

/** The connection string without password (userinfo or `password` parameter), for `location`. */
function redactConnectionString(connectionString: string): string {
  // pg's other form, "/socket/dir database", carries no credentials.
  if (connectionString.startsWith('/')) return connectionString;
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch (cause) {
    // Node's "Invalid URL" TypeError keeps the whole input, password included.
    if (cause instanceof Error && 'input' in cause) cause.input = '[redacted]';
    throw new CatalogError('PostgreSQL connection string is not a URL (postgresql://user:password@host:port/database)', {
      cause,
      context: { connector: 'postgresql' },
    });
  }
  return redactUrl(url.toString());
}

/** SQLSTATEs after which the same statement may succeed: lost connection, serialization, deadlock, overload, restart. */
const transientSqlStates = new Set(['40001', '40P01', '53300', '57P01', '57P02', '57P03']);
const transientNetworkCodes = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN',
]);

function isTransient(error: unknown): boolean {
  if (error instanceof pg.DatabaseError) {
    const code = error.code ?? '';
    return code.startsWith('08') || transientSqlStates.has(code);
  }
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && transientNetworkCodes.has(code)) return true;
  // Happy eyeballs (several addresses for one host name) fails with every attempt's error.
  if (error instanceof AggregateError) return error.errors.some(isTransient);
  // pg reports connect timeouts, connections lost mid-query and queries on a client whose
  // connection already broke (a server restart) as plain Errors without a code.
  return /timeout|Connection terminated|encountered a connection error and is not queryable/i.test(error.message);
}

function catalogFailure(message: string, cause: unknown, context: ErrorContext = {}): EarthMemoryError {
  // Already typed (FencedError, or a CatalogError raised inside): keep as is.
  if (cause instanceof EarthMemoryError) return cause;
  return new CatalogError(message, { cause, retriable: isTransient(cause), context: { connector: 'postgresql', ...context } });
}

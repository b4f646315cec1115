import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CatalogError, FencedError } from '../core/errors.js';
import {
  CATALOG_SCHEMA_VERSION, objectIdOf,
  type AgingRun, type Catalog, type CatalogEntry, type CatalogFilter, type CatalogRow, type CoveredRange, type MigrationJobRecord, type MigrationJobState,
  type MigrationPlanStep, type MigrationStep, type MigrationStepState, type MigrationWritten, type PartitionClaim, type SourcePartition,
} from './catalog.js';
import { toCatalogRow, toCoveredRange, toMigrationJob, toMigrationStep, type ColumnReaders, type JobColumns, type ObjectColumns, type StepColumns } from './rows.js';

/**
 * The schema, as forward migrations: entry N-1 takes a catalog from version N-1 to N. Version 1
 * is the first release's schema (it had no version table: its IF NOT EXISTS makes it a no-op on
 * such a catalog). Each runs in one transaction with the version bump.
 */
const migrations: readonly string[] = [
  `
CREATE TABLE IF NOT EXISTS objects (
  tier TEXT NOT NULL,
  key TEXT NOT NULL,
  backend TEXT NOT NULL,
  uri TEXT NOT NULL,
  memory_type TEXT NOT NULL,
  dataset TEXT NOT NULL,
  kind TEXT NOT NULL,
  partition_path TEXT NOT NULL,
  format TEXT NOT NULL,
  codec TEXT NOT NULL,
  codec_level INTEGER,
  bytes INTEGER NOT NULL,
  rows INTEGER NOT NULL,
  time_min_us INTEGER NOT NULL,
  time_max_us INTEGER NOT NULL,
  bbox_min_lon REAL NOT NULL,
  bbox_min_lat REAL NOT NULL,
  bbox_max_lon REAL NOT NULL,
  bbox_max_lat REAL NOT NULL,
  sha256 TEXT NOT NULL,
  provenance TEXT NOT NULL,
  source TEXT,
  source_partition INTEGER,
  first_offset INTEGER,
  last_offset INTEGER,
  state TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  last_accessed_at TEXT,
  access_count INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tier, key)
);
CREATE INDEX IF NOT EXISTS objects_memory_type ON objects (memory_type, time_min_us);
CREATE INDEX IF NOT EXISTS objects_dataset ON objects (dataset, time_min_us);
CREATE INDEX IF NOT EXISTS objects_coverage ON objects (source, source_partition, last_offset);
CREATE TABLE IF NOT EXISTS partition_claims (
  source TEXT NOT NULL,
  source_partition INTEGER NOT NULL,
  owner TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  claimed_at TEXT NOT NULL,
  PRIMARY KEY (source, source_partition)
);`,
  `
CREATE TABLE migration_jobs (
  id TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  plan_hash TEXT NOT NULL,
  state TEXT NOT NULL,
  error TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE migration_steps (
  job_id TEXT NOT NULL REFERENCES migration_jobs (id),
  source_tier TEXT NOT NULL,
  source_key TEXT NOT NULL,
  destination_tier TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  state TEXT NOT NULL,
  written TEXT,
  note TEXT,
  group_key TEXT,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (job_id, source_tier, source_key)
);
CREATE INDEX migration_steps_open ON migration_steps (state);
ALTER TABLE objects ADD COLUMN object_id TEXT;
CREATE INDEX objects_object_id ON objects (object_id);
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  expires_at TEXT NOT NULL
);
ALTER TABLE objects ADD COLUMN tier_since TEXT;
UPDATE objects SET tier_since = created_at;
CREATE TABLE object_accesses (
  object_id TEXT NOT NULL,
  hour INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (object_id, hour)
);
CREATE TABLE aging_runs (
  policy TEXT NOT NULL,
  source_tier TEXT NOT NULL,
  run TEXT NOT NULL,
  PRIMARY KEY (policy, source_tier)
);`,
  `ALTER TABLE objects ADD COLUMN raster TEXT;`,
];

type Row = ObjectColumns<number, string, string>;

const readColumns: ColumnReaders<number, string, string> = {
  integer: (value) => value,
  time: (value) => value,
  provenance: (value) => JSON.parse(value),
  json: (value) => JSON.parse(value),
};

/** The embedded catalog: one SQLite file, WAL, synchronous=FULL so a commit is durable. */
export class SqliteCatalog implements Catalog {
  readonly type = 'sqlite';
  readonly location: string;
  private readonly db: Database.Database;
  private readonly upsertStatement: Database.Statement;
  private readonly epochStatement: Database.Statement;

  constructor(path: string) {
    this.location = resolve(path);
    try {
      mkdirSync(dirname(this.location), { recursive: true });
      this.db = new Database(this.location);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('busy_timeout = 5000');
      this.migrate();
    } catch (cause) {
      if (cause instanceof CatalogError) throw cause;
      throw new CatalogError(`cannot open SQLite catalog ${this.location}`, { cause, context: { connector: 'sqlite' } });
    }
    this.epochStatement = this.db.prepare('SELECT epoch FROM partition_claims WHERE source = ? AND source_partition = ?');
    this.upsertStatement = this.db.prepare(`
      INSERT INTO objects (tier, key, backend, uri, memory_type, dataset, kind, partition_path, format, codec, codec_level,
        bytes, rows, time_min_us, time_max_us, bbox_min_lon, bbox_min_lat, bbox_max_lon, bbox_max_lat, sha256, provenance,
        source, source_partition, first_offset, last_offset, state, created_at, updated_at, object_id, tier_since, raster)
      VALUES (@tier, @key, @backend, @uri, @memoryType, @dataset, @kind, @partitionPath, @format, @codec, @codecLevel,
        @bytes, @rows, @timeMinUs, @timeMaxUs, @minLon, @minLat, @maxLon, @maxLat, @sha256, @provenance,
        @source, @sourcePartition, @firstOffset, @lastOffset, @state, @now, @now, @objectId, @now, @raster)
      ON CONFLICT (tier, key) DO UPDATE SET
        backend = excluded.backend, uri = excluded.uri, memory_type = excluded.memory_type, dataset = excluded.dataset,
        kind = excluded.kind, partition_path = excluded.partition_path, format = excluded.format, codec = excluded.codec, codec_level = excluded.codec_level,
        bytes = excluded.bytes, rows = excluded.rows, time_min_us = excluded.time_min_us, time_max_us = excluded.time_max_us,
        bbox_min_lon = excluded.bbox_min_lon, bbox_min_lat = excluded.bbox_min_lat, bbox_max_lon = excluded.bbox_max_lon,
        bbox_max_lat = excluded.bbox_max_lat, sha256 = excluded.sha256, provenance = excluded.provenance,
        source = excluded.source, source_partition = excluded.source_partition, first_offset = excluded.first_offset,
        last_offset = excluded.last_offset, state = excluded.state, raster = excluded.raster,
        updated_at = CASE WHEN objects.sha256 = excluded.sha256 THEN objects.updated_at ELSE excluded.updated_at END`);
  }

  /** The schema version of this file (the version table's, 1 for a first-release catalog). */
  get schemaVersion(): number {
    return (this.db.prepare("SELECT value FROM catalog_meta WHERE name = 'schema_version'").get() as { value: number }).value;
  }

  /** Brings the file to CATALOG_SCHEMA_VERSION, one migration per transaction; refuses a newer file. */
  private migrate(): void {
    this.db.transaction(() => {
      this.db.exec(migrations[0]!);
      this.db.exec('CREATE TABLE IF NOT EXISTS catalog_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)');
      this.db.prepare("INSERT OR IGNORE INTO catalog_meta (name, value) VALUES ('schema_version', 1)").run();
    }).immediate();
    for (;;) {
      const upgraded = this.db.transaction(() => {
        const version = this.schemaVersion;
        if (version > CATALOG_SCHEMA_VERSION) {
          throw new CatalogError(
            `SQLite catalog ${this.location} has schema version ${version}, newer than this earthmem knows (${CATALOG_SCHEMA_VERSION}): upgrade earthmem`,
            { context: { connector: 'sqlite' } },
          );
        }
        if (version === CATALOG_SCHEMA_VERSION) return false;
        this.db.exec(migrations[version]!);
        if (version + 1 === 2) {
          // object_id is derived from the key; SQLite has no regex to do it in SQL.
          const set = this.db.prepare('UPDATE objects SET object_id = ? WHERE tier = ? AND key = ?');
          for (const r of this.db.prepare('SELECT tier, key FROM objects').all() as { tier: string; key: string }[]) set.run(objectIdOf(r.key), r.tier, r.key);
        }
        this.db.prepare("UPDATE catalog_meta SET value = ? WHERE name = 'schema_version'").run(version + 1);
        return true;
      }).immediate();
      if (!upgraded) return;
    }
  }

  async upsert(entries: readonly CatalogEntry[], fence: readonly PartitionClaim[] = []): Promise<{ entry: CatalogEntry; tier: string }[]> {
    const now = new Date().toISOString();
    const elsewhere = this.db.prepare('SELECT tier FROM objects WHERE object_id = ? AND tier <> ? LIMIT 1');
    try {
      return this.db.transaction(() => {
        for (const claim of fence) {
          const row = this.epochStatement.get(claim.source, claim.partition) as { epoch: number } | undefined;
          if (row?.epoch !== claim.epoch) {
            throw new FencedError(`partition ${claim.source}[${claim.partition}] was claimed by another worker`, {
              context: { connector: 'sqlite', source: claim.source, partition: claim.partition },
            });
          }
        }
        const superseded: { entry: CatalogEntry; tier: string }[] = [];
        const current = entries.filter((entry) => {
          const moved = elsewhere.get(objectIdOf(entry.key), entry.tier) as { tier: string } | undefined;
          if (moved !== undefined) superseded.push({ entry, tier: moved.tier });
          return moved === undefined;
        });
        this.writeRows(current, now);
        return superseded;
      }).immediate();
    } catch (cause) {
      if (cause instanceof FencedError) throw cause;
      throw new CatalogError('catalog upsert failed', {
        cause,
        retriable: (cause as { code?: string }).code === 'SQLITE_BUSY',
        context: { connector: 'sqlite', key: entries[0]?.key },
      });
    }
  }

  private writeRows(entries: readonly CatalogEntry[], now: string): void {
    for (const e of entries) {
      const single = e.provenance.length === 1 ? e.provenance[0]! : undefined;
      this.upsertStatement.run({
        ...e,
        minLon: e.bbox[0], minLat: e.bbox[1], maxLon: e.bbox[2], maxLat: e.bbox[3],
        provenance: JSON.stringify(e.provenance),
        source: single?.source ?? null,
        sourcePartition: single?.partition ?? null,
        firstOffset: single?.firstOffset ?? null,
        lastOffset: single?.lastOffset ?? null,
        objectId: objectIdOf(e.key),
        raster: e.raster ? JSON.stringify(e.raster) : null,
        now,
      });
    }
  }

  async coverage(source: string, partition: number, fromOffset: number): Promise<CoveredRange[]> {
    const rows = this.db
      .prepare(
        `SELECT key, tier, memory_type, kind, dataset, partition_path, source, source_partition, first_offset, last_offset
         FROM objects WHERE source = ? AND source_partition = ? AND last_offset >= ?
         ORDER BY first_offset, tier, key`,
      )
      .all(source, partition, fromOffset) as Row[];
    return rows.map((r) => toCoveredRange(r, readColumns));
  }

  async claimPartitions(owner: string, partitions: readonly SourcePartition[]): Promise<PartitionClaim[]> {
    const now = new Date().toISOString();
    const claim = this.db.prepare(
      `INSERT INTO partition_claims (source, source_partition, owner, epoch, claimed_at) VALUES (?, ?, ?, 1, ?)
       ON CONFLICT (source, source_partition) DO UPDATE SET owner = excluded.owner, epoch = partition_claims.epoch + 1,
         claimed_at = excluded.claimed_at
       RETURNING epoch`,
    );
    return this.db.transaction(() =>
      partitions.map((p) => ({ ...p, epoch: (claim.get(p.source, p.partition, owner, now) as { epoch: number }).epoch })),
    )();
  }

  async list(filter: CatalogFilter = {}): Promise<CatalogRow[]> {
    const where: string[] = [];
    const params: Record<string, string> = {};
    if (filter.key !== undefined) (where.push('key = @key'), (params.key = filter.key));
    if (filter.memoryType !== undefined) (where.push('memory_type = @memoryType'), (params.memoryType = filter.memoryType));
    if (filter.tier !== undefined) (where.push('tier = @tier'), (params.tier = filter.tier));
    if (filter.dataset !== undefined) (where.push('dataset = @dataset'), (params.dataset = filter.dataset));
    const sql = `SELECT * FROM objects ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY tier, key`;
    const rows = this.db.prepare(sql).all(params) as Row[];
    return rows.map((r) => toCatalogRow(r, readColumns));
  }

  async recordAccess(tier: string, key: string, count = 1): Promise<void> {
    const now = new Date();
    this.guard('recording an access', key, () =>
      this.db.transaction(() => {
        const changed = this.db
          .prepare('UPDATE objects SET access_count = access_count + ?, last_accessed_at = ? WHERE tier = ? AND key = ?')
          .run(count, now.toISOString(), tier, key).changes;
        if (changed === 0) return;
        this.db
          .prepare('INSERT INTO object_accesses (object_id, hour, count) VALUES (?, ?, ?) ON CONFLICT (object_id, hour) DO UPDATE SET count = count + excluded.count')
          .run(objectIdOf(key), Math.floor(now.getTime() / 3_600_000), count);
      }).immediate(),
    );
  }

  async recentAccesses(sinceMs: number): Promise<Map<string, number>> {
    const rows = this.db
      .prepare('SELECT object_id, sum(count) AS n FROM object_accesses WHERE hour >= ? GROUP BY object_id')
      .all(Math.floor(sinceMs / 3_600_000)) as { object_id: string; n: number }[];
    return new Map(rows.map((r) => [r.object_id, r.n]));
  }

  async createMigrationJob(job: Omit<MigrationJobRecord, 'state' | 'error' | 'createdAt' | 'updatedAt'>, steps: readonly MigrationPlanStep[]): Promise<void> {
    const now = new Date().toISOString();
    const insertJob = this.db.prepare(
      `INSERT INTO migration_jobs (id, spec, plan_hash, state, error, created_at, updated_at) VALUES (?, ?, ?, 'planned', NULL, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    );
    const insertStep = this.db.prepare(
      `INSERT INTO migration_steps (job_id, source_tier, source_key, destination_tier, bytes, state, written, note, group_key, updated_at)
       VALUES (?, ?, ?, ?, ?, 'planned', NULL, NULL, ?, ?)`,
    );
    this.guard('creating migration job', job.id, () =>
      this.db.transaction(() => {
        if (insertJob.run(job.id, JSON.stringify(job.spec), job.planHash, now, now).changes === 0) return;
        for (const step of steps) insertStep.run(job.id, step.sourceTier, step.sourceKey, step.destinationTier, step.bytes, step.group ?? null, now);
      }).immediate(),
    );
  }

  async migrationJob(id: string): Promise<{ job: MigrationJobRecord; steps: MigrationStep[] } | undefined> {
    const job = this.db.prepare('SELECT * FROM migration_jobs WHERE id = ?').get(id) as JobColumns<string, string> | undefined;
    if (job === undefined) return undefined;
    const steps = this.db.prepare('SELECT * FROM migration_steps WHERE job_id = ? ORDER BY source_tier, source_key').all(id) as StepColumns<number, string, string>[];
    return { job: toMigrationJob(job, readColumns), steps: steps.map((s) => toMigrationStep(s, readColumns)) };
  }

  async setMigrationJobState(id: string, state: MigrationJobState, error: string | null = null): Promise<void> {
    this.guard('updating migration job', id, () =>
      this.db.prepare('UPDATE migration_jobs SET state = ?, error = ?, updated_at = ? WHERE id = ?').run(state, error, new Date().toISOString(), id),
    );
  }

  async updateMigrationStep(
    jobId: string, sourceTier: string, sourceKey: string, state: MigrationStepState, update: { written?: MigrationWritten; note?: string | null } = {},
  ): Promise<void> {
    const now = new Date().toISOString();
    this.guard('updating migration step', sourceKey, () =>
      this.db.transaction(() => {
        this.db
          .prepare(
            `UPDATE migration_steps SET state = ?, written = COALESCE(?, written), note = ?, updated_at = ?
             WHERE job_id = ? AND source_tier = ? AND source_key = ?`,
          )
          .run(state, update.written === undefined ? null : JSON.stringify(update.written), update.note ?? null, now, jobId, sourceTier, sourceKey);
        const objectState = state === 'copied' ? 'migrating' : state === 'failed' ? 'committed' : undefined;
        if (objectState !== undefined) {
          this.db.prepare('UPDATE objects SET state = ? WHERE tier = ? AND key = ?').run(objectState, sourceTier, sourceKey);
        }
      }).immediate(),
    );
  }

  async switchTier(jobId: string, sources: readonly { tier: string; key: string; sha256: string }[], entry: CatalogEntry): Promise<void> {
    this.guard('switching tier', sources[0]?.key ?? entry.key, () =>
      this.db.transaction(() => {
        const olds = sources.map((source) => {
          const old = this.db.prepare('SELECT created_at, last_accessed_at, access_count, sha256 FROM objects WHERE tier = ? AND key = ?').get(source.tier, source.key) as
            | { created_at: string; last_accessed_at: string | null; access_count: number; sha256: string }
            | undefined;
          if (old === undefined || old.sha256 !== source.sha256) {
            throw new CatalogError(`${source.tier}/${source.key} is no longer the object that was planned (${old === undefined ? 'gone' : 'rewritten'}): not switched`, {
              context: { connector: 'sqlite', key: source.key, tier: source.tier },
            });
          }
          return old;
        });
        for (const source of sources) this.db.prepare('DELETE FROM objects WHERE tier = ? AND key = ?').run(source.tier, source.key);
        this.writeRows([entry], new Date().toISOString());
        const accessed = olds.map((o) => o.last_accessed_at).filter((t): t is string => t !== null).sort().at(-1) ?? null;
        this.db
          .prepare('UPDATE objects SET created_at = ?, last_accessed_at = ?, access_count = ? WHERE tier = ? AND key = ?')
          .run(olds.map((o) => o.created_at).sort()[0]!, accessed, olds.reduce((n, o) => n + o.access_count, 0), entry.tier, entry.key);
        for (const source of sources) {
          this.db
            .prepare(`UPDATE migration_steps SET state = 'switched', updated_at = ? WHERE job_id = ? AND source_tier = ? AND source_key = ?`)
            .run(new Date().toISOString(), jobId, source.tier, source.key);
        }
      }).immediate(),
    );
  }

  async openMigrationSteps(): Promise<MigrationStep[]> {
    const rows = this.db.prepare("SELECT * FROM migration_steps WHERE state <> 'source_deleted'").all() as StepColumns<number, string, string>[];
    return rows.map((s) => toMigrationStep(s, readColumns));
  }

  async migrationJobs(prefix: string): Promise<MigrationJobRecord[]> {
    const rows = this.db.prepare("SELECT * FROM migration_jobs WHERE substr(id, 1, ?) = ? ORDER BY created_at, id").all(prefix.length, prefix) as JobColumns<string, string>[];
    return rows.map((r) => toMigrationJob(r, readColumns));
  }

  async acquireLease(name: string, owner: string, ttlMs: number, replacing?: string): Promise<boolean> {
    const now = new Date();
    return this.guard('taking a lease', name, () =>
      this.db.transaction(() => {
        const held = this.db.prepare('SELECT owner, expires_at FROM leases WHERE name = ?').get(name) as { owner: string; expires_at: string } | undefined;
        if (held !== undefined && held.owner !== owner && held.owner !== replacing && held.expires_at > now.toISOString()) return false;
        this.db
          .prepare('INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at')
          .run(name, owner, new Date(now.getTime() + ttlMs).toISOString());
        return true;
      }).immediate(),
    );
  }

  async recordAgingRun(run: AgingRun): Promise<void> {
    this.guard('recording an aging run', run.policy, () =>
      this.db
        .prepare('INSERT INTO aging_runs (policy, source_tier, run) VALUES (?, ?, ?) ON CONFLICT (policy, source_tier) DO UPDATE SET run = excluded.run')
        .run(run.policy, run.sourceTier, JSON.stringify(run)),
    );
  }

  async agingRuns(): Promise<AgingRun[]> {
    return (this.db.prepare('SELECT run FROM aging_runs ORDER BY policy, source_tier').all() as { run: string }[]).map((r) => JSON.parse(r.run) as AgingRun);
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    this.guard('releasing a lease', name, () => this.db.prepare('DELETE FROM leases WHERE name = ? AND owner = ?').run(name, owner));
  }

  async lease(name: string): Promise<{ owner: string; expiresAt: string } | undefined> {
    const held = this.db.prepare('SELECT owner, expires_at FROM leases WHERE name = ?').get(name) as { owner: string; expires_at: string } | undefined;
    return held === undefined || held.expires_at <= new Date().toISOString() ? undefined : { owner: held.owner, expiresAt: held.expires_at };
  }

  /** Runs a synchronous catalog write; driver errors become CatalogError (SQLITE_BUSY retriable). */
  private guard<T>(what: string, key: string, work: () => T): T {
    try {
      return work();
    } catch (cause) {
      if (cause instanceof CatalogError) throw cause;
      throw new CatalogError(`${what} failed`, { cause, retriable: (cause as { code?: string }).code === 'SQLITE_BUSY', context: { connector: 'sqlite', key } });
    }
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

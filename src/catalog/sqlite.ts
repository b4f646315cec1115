import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CatalogError, FencedError } from '../core/errors.js';
import type {
  Catalog, CatalogEntry, CatalogFilter, CatalogRow, CoveredRange, PartitionClaim, SourcePartition,
} from './catalog.js';
import { toCatalogRow, toCoveredRange, type ColumnReaders, type ObjectColumns } from './rows.js';

const schema = `
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
);
`;

type Row = ObjectColumns<number, string, string>;

const readColumns: ColumnReaders<number, string, string> = {
  integer: (value) => value,
  time: (value) => value,
  provenance: (value) => JSON.parse(value),
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
      this.db.exec(schema);
    } catch (cause) {
      throw new CatalogError(`cannot open SQLite catalog ${this.location}`, { cause, context: { connector: 'sqlite' } });
    }
    this.epochStatement = this.db.prepare('SELECT epoch FROM partition_claims WHERE source = ? AND source_partition = ?');
    this.upsertStatement = this.db.prepare(`
      INSERT INTO objects (tier, key, backend, uri, memory_type, dataset, kind, partition_path, format, codec, codec_level,
        bytes, rows, time_min_us, time_max_us, bbox_min_lon, bbox_min_lat, bbox_max_lon, bbox_max_lat, sha256, provenance,
        source, source_partition, first_offset, last_offset, state, created_at, updated_at)
      VALUES (@tier, @key, @backend, @uri, @memoryType, @dataset, @kind, @partitionPath, @format, @codec, @codecLevel,
        @bytes, @rows, @timeMinUs, @timeMaxUs, @minLon, @minLat, @maxLon, @maxLat, @sha256, @provenance,
        @source, @sourcePartition, @firstOffset, @lastOffset, @state, @now, @now)
      ON CONFLICT (tier, key) DO UPDATE SET
        backend = excluded.backend, uri = excluded.uri, memory_type = excluded.memory_type, dataset = excluded.dataset,
        kind = excluded.kind, partition_path = excluded.partition_path, format = excluded.format, codec = excluded.codec, codec_level = excluded.codec_level,
        bytes = excluded.bytes, rows = excluded.rows, time_min_us = excluded.time_min_us, time_max_us = excluded.time_max_us,
        bbox_min_lon = excluded.bbox_min_lon, bbox_min_lat = excluded.bbox_min_lat, bbox_max_lon = excluded.bbox_max_lon,
        bbox_max_lat = excluded.bbox_max_lat, sha256 = excluded.sha256, provenance = excluded.provenance,
        source = excluded.source, source_partition = excluded.source_partition, first_offset = excluded.first_offset,
        last_offset = excluded.last_offset, state = excluded.state,
        updated_at = CASE WHEN objects.sha256 = excluded.sha256 THEN objects.updated_at ELSE excluded.updated_at END`);
  }

  async upsert(entries: readonly CatalogEntry[], fence: readonly PartitionClaim[] = []): Promise<void> {
    const now = new Date().toISOString();
    try {
      this.db.transaction(() => {
        for (const claim of fence) {
          const row = this.epochStatement.get(claim.source, claim.partition) as { epoch: number } | undefined;
          if (row?.epoch !== claim.epoch) {
            throw new FencedError(`partition ${claim.source}[${claim.partition}] was claimed by another worker`, {
              context: { connector: 'sqlite', source: claim.source, partition: claim.partition },
            });
          }
        }
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
            now,
          });
        }
      })();
    } catch (cause) {
      if (cause instanceof FencedError) throw cause;
      throw new CatalogError('catalog upsert failed', {
        cause,
        retriable: (cause as { code?: string }).code === 'SQLITE_BUSY',
        context: { connector: 'sqlite', key: entries[0]?.key },
      });
    }
  }

  async coverage(source: string, partition: number, fromOffset: number): Promise<CoveredRange[]> {
    const rows = this.db
      .prepare(
        `SELECT key, tier, memory_type, kind, dataset, partition_path, source, source_partition, first_offset, last_offset
         FROM objects WHERE source = ? AND source_partition = ? AND last_offset >= ? AND state = 'committed'
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

  async recordAccess(tier: string, key: string): Promise<void> {
    this.db
      .prepare('UPDATE objects SET access_count = access_count + 1, last_accessed_at = ? WHERE tier = ? AND key = ?')
      .run(new Date().toISOString(), tier, key);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

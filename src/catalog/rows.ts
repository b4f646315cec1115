import type { ProvenanceRange } from '../core/batch.js';
import type { CatalogRow, RasterInfo, CoveredRange, MigrationJobRecord, MigrationStep } from './catalog.js';

/**
 * The `objects` table's columns as a driver returns them. SQLite gives integers as numbers,
 * times as ISO text and provenance as JSON text; PostgreSQL gives BIGINT as strings, times as
 * Dates and provenance as parsed JSONB. Each catalog says how to read its own.
 */
export interface ObjectColumns<Integer, Time, Provenance> {
  tier: string; key: string; backend: string; uri: string; memory_type: string; dataset: string; kind: string;
  partition_path: string; format: string; codec: string; codec_level: number | null; bytes: Integer; rows: Integer;
  time_min_us: Integer; time_max_us: Integer; bbox_min_lon: number; bbox_min_lat: number; bbox_max_lon: number;
  bbox_max_lat: number; sha256: string; provenance: Provenance; source: string | null; source_partition: number | null;
  first_offset: Integer | null; last_offset: Integer | null; state: string; created_at: Time; updated_at: Time;
  last_accessed_at: Time | null; access_count: Integer; tier_since: Time; raster: Provenance | null;
}

export interface ColumnReaders<Integer, Time, Provenance> {
  integer(value: Integer): number;
  time(value: Time): string;
  provenance(value: Provenance): ProvenanceRange[];
  /** A JSON column (TEXT in SQLite, JSONB in PostgreSQL). */
  json(value: Provenance): unknown;
}

/** The migration journal's tables as a driver returns them (JSON as text or parsed, like `provenance`). */
export interface JobColumns<Time, Json> {
  id: string; spec: Json; plan_hash: string; state: string; error: string | null; created_at: Time; updated_at: Time;
}
export interface StepColumns<Integer, Time, Json> {
  job_id: string; source_tier: string; source_key: string; destination_tier: string; bytes: Integer; state: string;
  written: Json | null; note: string | null; group_key: string | null; updated_at: Time;
}

export function toMigrationJob<I, T, P>(r: JobColumns<T, P>, read: ColumnReaders<I, T, P>): MigrationJobRecord {
  return {
    id: r.id,
    spec: read.json(r.spec) as MigrationJobRecord['spec'],
    planHash: r.plan_hash,
    state: r.state as MigrationJobRecord['state'],
    error: r.error,
    createdAt: read.time(r.created_at),
    updatedAt: read.time(r.updated_at),
  };
}

export function toMigrationStep<I, T, P>(r: StepColumns<I, T, P>, read: ColumnReaders<I, T, P>): MigrationStep {
  return {
    jobId: r.job_id,
    sourceTier: r.source_tier,
    sourceKey: r.source_key,
    destinationTier: r.destination_tier,
    bytes: read.integer(r.bytes),
    state: r.state as MigrationStep['state'],
    written: r.written === null ? null : (read.json(r.written) as MigrationStep['written']),
    note: r.note,
    group: r.group_key,
    updatedAt: read.time(r.updated_at),
  };
}

export function toCatalogRow<I, T, P>(r: ObjectColumns<I, T, P>, read: ColumnReaders<I, T, P>): CatalogRow {
  return {
    key: r.key,
    tier: r.tier,
    backend: r.backend,
    uri: r.uri,
    memoryType: r.memory_type,
    dataset: r.dataset,
    kind: r.kind as CatalogRow['kind'],
    partitionPath: r.partition_path,
    format: r.format,
    codec: r.codec,
    codecLevel: r.codec_level,
    bytes: read.integer(r.bytes),
    rows: read.integer(r.rows),
    timeMinUs: read.integer(r.time_min_us),
    timeMaxUs: read.integer(r.time_max_us),
    bbox: [r.bbox_min_lon, r.bbox_min_lat, r.bbox_max_lon, r.bbox_max_lat],
    sha256: r.sha256,
    provenance: read.provenance(r.provenance),
    state: r.state as CatalogRow['state'],
    createdAt: read.time(r.created_at),
    updatedAt: read.time(r.updated_at),
    lastAccessedAt: r.last_accessed_at === null ? null : read.time(r.last_accessed_at),
    accessCount: read.integer(r.access_count),
    tierSince: read.time(r.tier_since),
    // Only raster objects carry the key: rows of batches read back as they were written.
    ...(r.raster === null || r.raster === undefined ? {} : { raster: read.json(r.raster) as RasterInfo }),
  };
}

/** A coverage query's row (single-partition objects only, so the offset columns are set). */
export function toCoveredRange<I, T, P>(
  r: Pick<ObjectColumns<I, T, P>, 'key' | 'tier' | 'memory_type' | 'kind' | 'dataset' | 'partition_path' | 'source' | 'source_partition' | 'first_offset' | 'last_offset'>,
  read: Pick<ColumnReaders<I, T, P>, 'integer'>,
): CoveredRange {
  return {
    key: r.key,
    tier: r.tier,
    memoryType: r.memory_type,
    kind: r.kind as CoveredRange['kind'],
    dataset: r.dataset,
    partitionPath: r.partition_path,
    source: r.source!,
    partition: r.source_partition!,
    firstOffset: read.integer(r.first_offset!),
    lastOffset: read.integer(r.last_offset!),
  };
}

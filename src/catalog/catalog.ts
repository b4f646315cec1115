import type { ProvenanceRange } from '../core/batch.js';
import type { Manifest } from '../core/manifest.js';
import type { RecordKind } from '../core/record.js';
import type { RasterDtype } from '../core/raster.js';

/**
 * An object's lifecycle: `committed` (written and catalogued), `migrating` (a copy to another
 * tier exists and is being verified; the object is still read from here until the switch).
 * The migration journal holds each move's steps.
 */
export type ObjectState = 'committed' | 'migrating';

/** The catalog's schema version this code writes; older catalogs are upgraded in place on open. */
export const CATALOG_SCHEMA_VERSION = 3;

/** What a raster object (one COG per scene) holds, beside the common columns (schema version 3). */
export interface RasterInfo {
  sceneId: string;
  variable: string;
  /** The CRS's EPSG code. */
  epsg: number;
  width: number;
  height: number;
  dtype: RasterDtype;
  bands: number;
  /** `"nan"` for NaN (JSON has no NaN). */
  nodata: number | 'nan' | null;
  /** Overview levels below full resolution. */
  overviews: number;
  /** [minX, minY, maxX, maxY] in the scene's CRS (`bbox` is WGS 84). */
  bboxNative: [number, number, number, number];
  /** True when the scene was written by max_age with blocks missing (filled with nodata). */
  partial: boolean;
  /** Full-resolution blocks no tile filled completely (nodata, or partly filled). */
  missingBlocks: number;
  /** A partial scene's tile windows [x, y, width, height]: what a late tile's rebuild reads back. */
  windows?: [number, number, number, number][];
  /** Tiles the COG was built from. */
  tiles: number;
}

/** The kinds of object a catalog holds: record batches, and raster scenes. */
export type ObjectKind = RecordKind | 'raster';

/** What is stored where: one row per object. */
export interface CatalogEntry {
  key: string;
  tier: string;
  backend: string;
  uri: string;
  memoryType: string;
  dataset: string;
  kind: ObjectKind;
  /** The expanded `file_organization` path (the batch's partition). */
  partitionPath: string;
  format: string;
  codec: string;
  codecLevel: number | null;
  bytes: number;
  rows: number;
  timeMinUs: number;
  timeMaxUs: number;
  bbox: [number, number, number, number];
  sha256: string;
  provenance: ProvenanceRange[];
  state: ObjectState;
  /** Raster objects only. */
  raster?: RasterInfo | null;
}

export interface CatalogRow extends CatalogEntry {
  createdAt: string;
  updatedAt: string;
  lastAccessedAt: string | null;
  accessCount: number;
  /** When the object entered the tier it is in (written there, or switched there by a move). */
  tierSince: string;
}

/**
 * An object that holds records of exactly one source partition, and which offsets: every record
 * of its (tier, memory type, kind, dataset, partition path) in [firstOffset, lastOffset] of that
 * partition is in it. Used to skip redelivered records that are already durable.
 */
export interface CoveredRange {
  key: string;
  tier: string;
  memoryType: string;
  kind: RecordKind;
  dataset: string;
  partitionPath: string;
  source: string;
  partition: number;
  firstOffset: number;
  lastOffset: number;
}

export interface SourcePartition {
  source: string;
  partition: number;
}

/** Ownership of a source partition: a writer's upserts carry it and are refused once superseded. */
export interface PartitionClaim extends SourcePartition {
  epoch: number;
}

export interface CatalogFilter {
  /** One object key (with `tier`: at most one row). */
  key?: string;
  memoryType?: string;
  tier?: string;
  dataset?: string;
}

export type MigrationJobState = 'planned' | 'running' | 'rehydrating' | 'completed' | 'failed' | 'cancelled';

/**
 * One object's progress through a move, in order: `planned → copied → verified → switched →
 * source_deleted`. `rehydrating` waits for an archive tier; `retained` is a switched object whose
 * source may not be deleted yet (immutable); `failed` keeps the source intact.
 */
export type MigrationStepState = 'planned' | 'rehydrating' | 'copied' | 'verified' | 'switched' | 'retained' | 'source_deleted' | 'failed';

/** What the copy step wrote at the destination, checked by the verify step and used by the switch. */
export interface MigrationWritten {
  key: string;
  backend: string;
  uri: string;
  format: string;
  codec: string;
  codecLevel: number | null;
  bytes: number;
  rows: number;
  sha256: string;
  /** What the copy holds as its format describes it; null for a raw copy (the source's own bytes). */
  manifest: Manifest | null;
}

export interface MigrationStep {
  jobId: string;
  sourceTier: string;
  sourceKey: string;
  destinationTier: string;
  /** Bytes of the source object when planned (progress is by bytes). */
  bytes: number;
  state: MigrationStepState;
  written: MigrationWritten | null;
  /** Why the step failed, or until when the source is retained. */
  note: string | null;
  /** Steps of one group are merged into one object (compaction); null: the object moves alone. */
  group: string | null;
  updatedAt: string;
}

export interface MigrationJobRecord {
  id: string;
  /** The job as planned (selection criteria resolved to absolute times), JSON. */
  spec: Record<string, unknown>;
  planHash: string;
  state: MigrationJobState;
  error: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface MigrationPlanStep {
  sourceTier: string;
  sourceKey: string;
  destinationTier: string;
  bytes: number;
  /** Compaction: the steps of one group become one object. */
  group?: string | null;
}

/** What the last aging pass did for one policy and source tier (`earthmem age status`). */
export interface AgingRun {
  policy: string;
  sourceTier: string;
  destinationTier: string;
  ranAt: string;
  /** The job of that pass, when it had something to move. */
  jobId: string | null;
  planned: number;
  movedObjects: number;
  movedBytes: number;
  failed: number;
  /** What happened, in words: why nothing moved, what failed. */
  note: string;
}

/**
 * An object's identity, whatever tier it is in and whatever its format: its key without the
 * extension (the key hashes the memory type, partition path and provenance).
 */
export function objectIdOf(key: string): string {
  const slash = key.lastIndexOf('/');
  const dot = key.lastIndexOf('.');
  return dot > slash + 1 ? key.slice(0, dot) : key;
}

/**
 * The truth of what is stored where. `upsert` is atomic for its entries and durable when it
 * resolves; the same key and tier again replaces the row (replays never duplicate).
 */
export interface Catalog {
  readonly type: string;
  readonly location: string;
  /**
   * Inserts or replaces rows, atomically. With `fence`, in the same transaction, every claim must
   * still be the partition's current epoch, or nothing is written and FencedError is thrown.
   * An entry whose object (`objectIdOf`) is catalogued in another tier is not written: the object
   * has moved there (a migration switched it) and this is a late rebuild of it. Those entries are
   * returned, with the tier the object is in now.
   */
  upsert(entries: readonly CatalogEntry[], fence?: readonly PartitionClaim[]): Promise<{ entry: CatalogEntry; tier: string }[]>;
  /** Single-partition objects of `source`/`partition` whose lastOffset >= fromOffset, by firstOffset. */
  coverage(source: string, partition: number, fromOffset: number): Promise<CoveredRange[]>;
  /** Takes ownership of partitions: each one's epoch goes up by one; returns the new claims. */
  claimPartitions(owner: string, partitions: readonly SourcePartition[]): Promise<PartitionClaim[]>;
  list(filter?: CatalogFilter): Promise<CatalogRow[]>;
  /** Counts `count` reads of the object (its total and the current hour's, for windowed criteria). */
  recordAccess(tier: string, key: string, count?: number): Promise<void>;
  /** Reads per object (by `objectIdOf`) since `sinceMs`, at an hour's granularity. */
  recentAccesses(sinceMs: number): Promise<Map<string, number>>;

  /** The migration journal. Creates the job and its planned steps in one transaction; an existing id is left as it is. */
  createMigrationJob(job: Omit<MigrationJobRecord, 'state' | 'error' | 'createdAt' | 'updatedAt'>, steps: readonly MigrationPlanStep[]): Promise<void>;
  migrationJob(id: string): Promise<{ job: MigrationJobRecord; steps: MigrationStep[] } | undefined>;
  setMigrationJobState(id: string, state: MigrationJobState, error?: string | null): Promise<void>;
  /**
   * Moves one step forward (or to `failed`), with what it wrote and a note. `copied` marks the
   * source row `migrating`; `failed` marks it `committed` again (both in the same transaction).
   */
  updateMigrationStep(jobId: string, sourceTier: string, sourceKey: string, state: MigrationStepState, update?: { written?: MigrationWritten; note?: string | null }): Promise<void>;
  /**
   * The tier switch, in one transaction: the sources' rows become `entry` (the destination: one
   * object, or the merge of several; the first source's created time kept, access counts summed)
   * and their steps become `switched`. Fails, changing nothing, when a source row is gone or
   * changed since it was planned (`sha256` differs).
   */
  switchTier(jobId: string, sources: readonly { tier: string; key: string; sha256: string }[], entry: CatalogEntry): Promise<void>;
  /** Every journal step not yet `source_deleted`, of every job (gc uses it to spare copies in progress). */
  openMigrationSteps(): Promise<MigrationStep[]>;
  /** The jobs whose id starts with `prefix`, oldest first (the aging planner's passes of one policy). */
  migrationJobs(prefix: string): Promise<MigrationJobRecord[]>;
  /**
   * Takes or renews the lease `name` for `owner` until `ttlMs` from now, if it is free, expired or
   * already this owner's (or `replacing`'s: an owner known to be dead); false when another owner
   * holds it. One transaction, on the catalog's clock.
   */
  acquireLease(name: string, owner: string, ttlMs: number, replacing?: string): Promise<boolean>;
  /** Gives the lease up if this owner holds it. */
  releaseLease(name: string, owner: string): Promise<void>;
  recordAgingRun(run: AgingRun): Promise<void>;
  agingRuns(): Promise<AgingRun[]>;
  /** Who holds the lease and until when, if anyone does. */
  lease(name: string): Promise<{ owner: string; expiresAt: string } | undefined>;
  close(): Promise<void>;
}

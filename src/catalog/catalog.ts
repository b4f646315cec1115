import type { ProvenanceRange } from '../core/batch.js';
import type { RecordKind } from '../core/record.js';

export type ObjectState = 'committed' | 'migrating' | 'deleting';

/** What is stored where: one row per object. */
export interface CatalogEntry {
  key: string;
  tier: string;
  backend: string;
  uri: string;
  memoryType: string;
  dataset: string;
  kind: RecordKind;
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
}

export interface CatalogRow extends CatalogEntry {
  createdAt: string;
  updatedAt: string;
  lastAccessedAt: string | null;
  accessCount: number;
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
   */
  upsert(entries: readonly CatalogEntry[], fence?: readonly PartitionClaim[]): Promise<void>;
  /** Single-partition objects of `source`/`partition` whose lastOffset >= fromOffset, by firstOffset. */
  coverage(source: string, partition: number, fromOffset: number): Promise<CoveredRange[]>;
  /** Takes ownership of partitions: each one's epoch goes up by one; returns the new claims. */
  claimPartitions(owner: string, partitions: readonly SourcePartition[]): Promise<PartitionClaim[]>;
  list(filter?: CatalogFilter): Promise<CatalogRow[]>;
  recordAccess(tier: string, key: string): Promise<void>;
  close(): Promise<void>;
}

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

export interface CatalogFilter {
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
  upsert(entries: readonly CatalogEntry[]): Promise<void>;
  list(filter?: CatalogFilter): Promise<CatalogRow[]>;
  recordAccess(tier: string, key: string): Promise<void>;
  close(): Promise<void>;
}

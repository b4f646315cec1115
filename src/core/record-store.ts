import type { ObservationRecord } from './record.js';

/**
 * A backend that keeps records as rows, documents or points (PostGIS, SpatiaLite, MongoDB,
 * InfluxDB) instead of encoded files. The pipeline hands it a whole batch under the batch's
 * deterministic object key; writing the same key again replaces those rows in one step, so a
 * redelivered or replayed batch never shows twice.
 */
export interface RecordSet {
  memoryType: string;
  dataset: string;
  records: readonly ObservationRecord[];
}

export interface RecordWriteResult {
  rows: number;
  /** What the rows cost the store, as well as it can tell (payload bytes otherwise). */
  bytes: number;
  /** Where the rows went, for people: `schema.table`, `db.collection`, `measurement`. */
  container: string;
}

export interface RecordStore {
  readonly type: string;
  /** Where the store is, for people. Never credentials. */
  readonly location: string;
  /** A reference to the rows of one key, e.g. `postgresql://host:port/db/schema.table#key`. Never credentials. */
  uri(key: string): string;
  /** Replaces whatever was stored under `key` with these records, atomically where the store can. */
  writeRecords(key: string, set: RecordSet): Promise<RecordWriteResult>;
  /** The records under `key`, in their original order (by source position). Missing: `NotFoundError`. */
  readRecords(key: string): Promise<ObservationRecord[]>;
  /** Keys that start with `prefix`. */
  listKeys(prefix: string): AsyncIterable<string>;
  /** Deleting a missing key is not an error. */
  deleteRecords(key: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * A tier's `index_backend`: a fast lookup of the tier's objects by key, by area and by time,
 * next to the catalog (which stays the source of truth). Entries may expire (`ttl`); an expired
 * entry is gone from every lookup, and a caller that misses falls back to the catalog.
 */
export interface IndexEntry {
  /** The object key in the tier's primary backend. */
  key: string;
  tier: string;
  memoryType: string;
  dataset: string;
  /** [minLon, minLat, maxLon, maxLat] of the object's records (WGS84). */
  bbox: [number, number, number, number];
  /** Time range of the object's records, microseconds since the epoch, inclusive. */
  minTimeUs: number;
  maxTimeUs: number;
  /** Where a user finds the object (the backend's `uri(key)`). */
  uri: string;
  bytes: number;
}

export interface ObjectIndex {
  readonly type: string;
  /** Where the index is, for people. Never credentials. */
  readonly location: string;
  /** Adds or replaces the entry for `entry.key`; restarts its time to live. */
  add(entry: IndexEntry): Promise<void>;
  /** The entry, or undefined when it was never added, was removed or has expired. */
  get(key: string): Promise<IndexEntry | undefined>;
  /** Entries whose bbox intersects `bbox` (closed intervals: touching edges count), sorted by key. */
  byBbox(bbox: [number, number, number, number]): Promise<IndexEntry[]>;
  /** Entries whose [minTimeUs, maxTimeUs] overlaps [fromUs, toUs] (inclusive), sorted by key. */
  byTime(fromUs: number, toUs: number): Promise<IndexEntry[]>;
  /** Removing a missing key is not an error. */
  remove(key: string): Promise<void>;
  close(): Promise<void>;
}

import type { Committable } from './offset-tracker.js';
import type { SourcePosition } from './record.js';

/** Raw payloads as read, with their positions; parsed downstream. */
export interface RawChunk {
  /** As read: bytes, not decoded (dead letters keep them as they came). */
  payloads: Uint8Array[];
  positions: SourcePosition[];
  /** Message keys (Kafka), kept as provenance; absent for files. */
  keys?: (string | null)[];
}

export interface SourcePartitionRef {
  source: string;
  partition: number;
}

export interface PartitionAssignment extends SourcePartitionRef {
  /** Where reading resumes: the committed offset (or the replay's start); null if unknown. */
  startOffset: number | null;
}

/** What a partitioned source tells the pipeline about ownership changes (rebalances). */
export interface SourceHooks {
  /** Before any record of these partitions is delivered. */
  assigned(partitions: PartitionAssignment[]): Promise<void>;
  /** These partitions were taken away: nothing read from them may be written or committed any more. */
  revoked(partitions: SourcePartitionRef[]): Promise<void>;
}

/**
 * A source of raw records. The pipeline pulls `chunks` (so a slow sink slows reading: real
 * backpressure) and calls `commit` with positions whose records are durable.
 */
export interface Source {
  readonly name: string;
  /** True when the source ends by itself (a file replay, a bounded Kafka replay). */
  readonly bounded: boolean;
  /**
   * True when several workers may share the source's partitions (a Kafka consumer group): the
   * pipeline then claims partitions in the catalog and fences its writes.
   */
  readonly shared: boolean;
  /** What a payload is: a JSON record (the default) or a raster tile envelope (src/records/raster.ts). */
  readonly payloadFormat?: 'json' | 'raster_tile';
  attach?(hooks: SourceHooks): void;
  chunks(signal: AbortSignal): AsyncIterable<RawChunk>;
  commit(offsets: Committable[]): Promise<void>;
  close(): Promise<void>;
}

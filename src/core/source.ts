import type { Committable } from './offset-tracker.js';
import type { SourcePosition } from './record.js';

/** Raw payloads as read, with their positions; parsed downstream. */
export interface RawChunk {
  payloads: string[];
  positions: SourcePosition[];
}

/**
 * A source of raw records. The pipeline pulls `chunks` (so a slow sink slows reading: real
 * backpressure) and calls `commit` with positions whose records are durable.
 */
export interface Source {
  readonly name: string;
  /** True when the source ends by itself (a file replay); false for streams (Kafka). */
  readonly bounded: boolean;
  chunks(signal: AbortSignal): AsyncIterable<RawChunk>;
  commit(offsets: Committable[]): Promise<void>;
  close(): Promise<void>;
}

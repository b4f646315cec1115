import type { DeadLetter, SourcePosition } from './record.js';
import type { PartitionAssignment } from './source.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * One NDJSON line of the dead letter: original payload, reason code, message, source position.
 * The payload is `payload`, a JSON string of exactly its bytes (a BOM included), when they are
 * UTF-8; bytes that are not cannot be a JSON string and go as `payload_base64` instead.
 */
export function deadLetterLine(entry: DeadLetter, at: Date = new Date()): string {
  let text: string | undefined;
  try {
    text = utf8.decode(entry.payload);
  } catch {
    text = undefined;
  }
  return `${JSON.stringify({
    reason: entry.reason,
    message: entry.message,
    source: entry.position.source,
    partition: entry.position.partition,
    offset: entry.position.offset,
    dead_lettered_at: at.toISOString(),
    ...(text === undefined ? { payload_base64: Buffer.from(entry.payload.buffer, entry.payload.byteOffset, entry.payload.byteLength).toString('base64') } : { payload: text }),
  })}\n`;
}

/**
 * Where dead letters go. Durable when `flush` resolves. Exactly once by source position: before
 * any record of a partition is delivered, `assigned` learns which of its positions at or after
 * the start offset the dead letter already holds (a crashed worker's flushes), and `flush` skips
 * those (a `DeadLetterPositions`).
 */
export interface DeadLetterSink {
  write(entry: DeadLetter): void;
  flush(): Promise<void>;
  assigned(partitions: readonly PartitionAssignment[]): Promise<void>;
  /**
   * Partitions taken away: their entries not yet sent are dropped, since their records are not
   * acknowledged and the new owner re-reads and dead-letters them.
   */
  revoked(partitions: readonly { source: string; partition: number }[]): void;
  close(): Promise<void>;
  /** A user-facing location: a file path or a topic. */
  readonly location: string;
}

/** A source partition as a map key (what the sinks' read-backs group offsets by). */
export const positionKey = (source: string, partition: number) => `${partition}\u0000${source}`;
const keyOf = positionKey;
export const positionOfKey = (key: string, offset: number): SourcePosition => {
  const cut = key.indexOf('\u0000');
  return { source: key.slice(cut + 1), partition: Number(key.slice(0, cut)), offset };
};

/** `entries` without those of `partitions`. */
export function withoutPartitions(entries: DeadLetter[], partitions: readonly { source: string; partition: number }[]): DeadLetter[] {
  const gone = new Set(partitions.map((p) => positionKey(p.source, p.partition)));
  return entries.filter((e) => !gone.has(positionKey(e.position.source, e.position.partition)));
}

/** Each partition of `entries` from its lowest offset: where a read-back after a failed write starts. */
export function lowestPending(entries: readonly DeadLetter[]): PartitionAssignment[] {
  const lowest = new Map<string, PartitionAssignment>();
  for (const { position: p } of entries) {
    const key = positionKey(p.source, p.partition);
    const seen = lowest.get(key);
    if (seen === undefined || p.offset < seen.startOffset!) lowest.set(key, { source: p.source, partition: p.partition, startOffset: p.offset });
  }
  return [...lowest.values()];
}

/**
 * The positions already durable in a dead letter, per assigned partition, from its start offset
 * on: what a redelivery must not write again. Bounded by the bad records of the assigned
 * partitions after their start offsets; a reassignment prunes what lies before the new start.
 */
export class DeadLetterPositions {
  private readonly partitions = new Map<string, { start: number; offsets: Set<number> }>();

  /** A partition (re)assigned: `durable` are the offsets the dead letter holds at or after `start`. */
  load(source: string, partition: number, start: number, durable: Iterable<number>): void {
    const key = keyOf(source, partition);
    const offsets = new Set<number>();
    for (const o of this.partitions.get(key)?.offsets ?? []) if (o >= start) offsets.add(o);
    for (const o of durable) if (o >= start) offsets.add(o);
    this.partitions.set(key, { start, offsets });
  }

  /** True when the entry's position is known to be in the dead letter already. */
  has(position: SourcePosition): boolean {
    return this.partitions.get(keyOf(position.source, position.partition))?.offsets.has(position.offset) ?? false;
  }

  /** The entry is durable in the dead letter now. */
  add(position: SourcePosition): void {
    const key = keyOf(position.source, position.partition);
    let p = this.partitions.get(key);
    if (p === undefined) this.partitions.set(key, (p = { start: 0, offsets: new Set() }));
    p.offsets.add(position.offset);
  }

  /** Of `entries`, those not durable yet, each position once. */
  fresh<T extends { position: SourcePosition }>(entries: readonly T[]): T[] {
    const seen = new Set<string>();
    return entries.filter((e) => {
      const k = `${keyOf(e.position.source, e.position.partition)}\u0000${e.position.offset}`;
      if (this.has(e.position) || seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  }

  /** Positions held, for tests and the bound. */
  get size(): number {
    let n = 0;
    for (const p of this.partitions.values()) n += p.offsets.size;
    return n;
  }
}

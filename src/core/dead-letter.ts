import type { DeadLetter } from './record.js';

/** One NDJSON line of the dead letter: original payload, reason code, message, source position. */
export function deadLetterLine(entry: DeadLetter, at: Date = new Date()): string {
  return `${JSON.stringify({
    reason: entry.reason,
    message: entry.message,
    source: entry.position.source,
    partition: entry.position.partition,
    offset: entry.position.offset,
    dead_lettered_at: at.toISOString(),
    payload: entry.payload,
  })}\n`;
}

/** Where dead letters go. Durable when `flush` resolves. */
export interface DeadLetterSink {
  write(entry: DeadLetter): void;
  flush(): Promise<void>;
  close(): Promise<void>;
  /** A user-facing location: a file path or a topic. */
  readonly location: string;
}

import type { DeadLetter } from './record.js';

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

/** Where dead letters go. Durable when `flush` resolves. */
export interface DeadLetterSink {
  write(entry: DeadLetter): void;
  flush(): Promise<void>;
  close(): Promise<void>;
  /** A user-facing location: a file path or a topic. */
  readonly location: string;
}

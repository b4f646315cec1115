import type { Kafka, Message, Producer, RetryOptions } from 'kafkajs';
import type { DeadLetterSink } from '../../src/core/dead-letter.js';
import type { DeadLetter } from '../../src/core/record.js';
import { withTimeout } from '../../src/core/timeout.js';
import { connectChecked, createIdempotentProducer, createKafka, kafkaRetry, toStorageError, type KafkaLog } from './client.js';
import type { KafkaDeadLetterConfig } from './config.js';

const SEND_TIMEOUT_MS = 30_000;

export interface KafkaDeadLetterOptions {
  log?: KafkaLog;
  retry?: RetryOptions;
}

/**
 * Sends dead letters to a topic: the original payload bytes as the value, no key, and the reason,
 * message and source position in `earthmem.*` headers. `flush` resolves once the broker has
 * acknowledged every buffered entry (`acks: -1`, idempotent producer), so their records may be
 * acked. The topic is not created here: the broker's auto-creation makes it, and the producer
 * retries the LEADER_NOT_AVAILABLE answers that come while it does.
 */
export class KafkaDeadLetterSink implements DeadLetterSink {
  readonly location: string;
  private readonly kafka: Kafka;
  private readonly retry: RetryOptions;
  private pending: Message[] = [];
  private producer: Promise<Producer> | undefined;
  /** Flushes run one after another, so entries reach the topic in the order they were written. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: KafkaDeadLetterConfig,
    options: KafkaDeadLetterOptions = {},
  ) {
    this.location = `kafka://${config.brokers[0]}/${config.topic}`;
    this.kafka = createKafka(config, options.log, options.retry ?? kafkaRetry);
    this.retry = options.retry ?? kafkaRetry;
  }

  write(entry: DeadLetter): void {
    this.pending.push({
      key: null,
      value: Buffer.from(entry.payload.buffer, entry.payload.byteOffset, entry.payload.byteLength),
      headers: {
        'earthmem.reason': entry.reason,
        'earthmem.message': entry.message,
        'earthmem.source': entry.position.source,
        'earthmem.partition': String(entry.position.partition),
        'earthmem.offset': String(entry.position.offset),
        'earthmem.dead_lettered_at': new Date().toISOString(),
      },
    });
  }

  /** Entries written but not yet acknowledged by the broker. */
  get buffered(): number {
    return this.pending.length;
  }

  flush(): Promise<void> {
    const next = this.chain.then(() => this.send());
    this.chain = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      const producer = this.producer;
      this.producer = undefined;
      // A producer that failed to connect is already cleared, so this one is connected.
      if (producer) await (await producer).disconnect();
    }
  }

  private async send(): Promise<void> {
    const messages = this.pending;
    this.pending = [];
    if (messages.length === 0) return;
    try {
      // kafkajs can also hang in connect after a broker restart: bounded like the send.
      const producer = await withTimeout(this.connectedProducer(), SEND_TIMEOUT_MS, 'connecting to Kafka timed out');
      await withTimeout(producer.send({ topic: this.config.topic, acks: -1, messages }), SEND_TIMEOUT_MS, 'no acknowledgement from Kafka');
    } catch (cause) {
      // Kept for the next flush: a dead letter is never dropped (at least once: a timed-out send
      // may still land). After a broker restart kafkajs can hang on a stale connection, or the
      // broker may have lost this producer's sequence state, so the next flush starts from a
      // fresh producer (a new producer id).
      this.pending = messages.concat(this.pending);
      const stale = this.producer;
      this.producer = undefined;
      void stale?.then((p) => p.disconnect()).catch(() => undefined);
      throw toStorageError(cause, { stage: 'dead_letter', topic: this.config.topic }, `sending ${messages.length} dead letters to ${this.location}`, true);
    }
  }

  private connectedProducer(): Promise<Producer> {
    if (!this.producer) {
      const producer = createIdempotentProducer(this.kafka, this.retry);
      this.producer = connectChecked(this.config, producer).then(
        () => producer,
        (error: unknown) => {
          // Connect again on the next flush rather than keep a producer that never connected.
          this.producer = undefined;
          throw error;
        },
      );
    }
    return this.producer;
  }
}

import { randomBytes } from 'node:crypto';
import type { Kafka, Message, Producer, RetryOptions } from 'kafkajs';
import { DeadLetterPositions, withoutPartitions, lowestPending, positionKey, positionOfKey, type DeadLetterSink } from '../../src/core/dead-letter.js';
import type { DeadLetter } from '../../src/core/record.js';
import type { PartitionAssignment } from '../../src/core/source.js';
import { withTimeout } from '../../src/core/timeout.js';
import { connectChecked, createIdempotentProducer, createKafka, kafkaRetry, toStorageError, type KafkaLog } from './client.js';
import type { KafkaDeadLetterConfig } from './config.js';

const SEND_TIMEOUT_MS = 30_000;
/** Reading the topic back at an assignment: a throw-away group joins, reads to the end, leaves. */
const SCAN_TIMEOUT_MS = 120_000;

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
 *
 * Exactly once by source position: at each assignment the topic is read back (its headers only
 * matter) for the positions of the assigned partitions at or after their start offsets, and
 * `flush` skips those. The topic is read whole, so this costs one pass over the dead letters per
 * rebalance: dead letters are few.
 */
export class KafkaDeadLetterSink implements DeadLetterSink {
  readonly location: string;
  private readonly kafka: Kafka;
  private readonly retry: RetryOptions;
  private pending: DeadLetter[] = [];
  private readonly durable = new DeadLetterPositions();
  /** A send failed: it may still have landed, so the topic is read back before the next one. */
  private uncertain = false;
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
    this.pending.push(entry);
  }

  revoked(partitions: readonly { source: string; partition: number }[]): void {
    this.pending = withoutPartitions(this.pending, partitions);
  }

  async assigned(partitions: readonly PartitionAssignment[]): Promise<void> {
    // Our own sends in flight are on the topic (or pending again) before it is read.
    await this.chain;
    const found = await withTimeout(this.durableOffsets(partitions), SCAN_TIMEOUT_MS, `reading the dead letter ${this.location} back timed out`).catch(
      (cause: unknown) => {
        throw toStorageError(cause, { stage: 'dead_letter', topic: this.config.topic }, `reading the dead letter ${this.location} back`, false);
      },
    );
    for (const p of partitions) this.durable.load(p.source, p.partition, p.startOffset ?? 0, found.get(positionKey(p.source, p.partition)) ?? []);
  }

  /** Per assigned partition, the offsets at or after its start that the topic holds. */
  private async durableOffsets(partitions: readonly PartitionAssignment[]): Promise<Map<string, number[]>> {
    const starts = new Map(partitions.map((p) => [positionKey(p.source, p.partition), p.startOffset ?? 0]));
    const found = new Map<string, number[]>();
    const admin = this.kafka.admin();
    await connectChecked(this.config, admin);
    try {
      if (!(await admin.listTopics()).includes(this.config.topic)) return found;
      const remaining = new Map<number, number>();
      for (const o of await admin.fetchTopicOffsets(this.config.topic)) if (Number(o.high) > Number(o.low)) remaining.set(o.partition, Number(o.high) - 1);
      if (remaining.size === 0) return found;
      const groupId = `earthmem-dead-letter-scan-${randomBytes(6).toString('hex')}`;
      const consumer = this.kafka.consumer({ groupId, retry: this.retry });
      try {
        await consumer.connect();
        await consumer.subscribe({ topic: this.config.topic, fromBeginning: true });
        await new Promise<void>((resolve, reject) => {
          consumer.on(consumer.events.CRASH, (event) => reject(event.payload.error));
          consumer
            .run({
              autoCommit: false,
              eachBatch: async ({ batch }) => {
                for (const m of batch.messages) {
                  const h = m.headers ?? {};
                  const source = h['earthmem.source']?.toString();
                  const partition = Number(h['earthmem.partition']?.toString());
                  const offset = Number(h['earthmem.offset']?.toString());
                  if (source !== undefined) {
                    const key = positionKey(source, partition);
                    const start = starts.get(key);
                    if (start !== undefined && offset >= start) {
                      let list = found.get(key);
                      if (list === undefined) found.set(key, (list = []));
                      list.push(offset);
                    }
                  }
                  const last = remaining.get(batch.partition);
                  if (last !== undefined && Number(m.offset) >= last) remaining.delete(batch.partition);
                }
                if (remaining.size === 0) resolve();
              },
            })
            .catch(reject);
        });
      } finally {
        await consumer.disconnect();
        await admin.deleteGroups([groupId]).catch(() => undefined); // a leftover empty group expires by itself
      }
      return found;
    } finally {
      await admin.disconnect();
    }
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
    let entries = this.durable.fresh(this.pending);
    this.pending = [];
    if (entries.length === 0) return;
    const messages: Message[] = [];
    try {
      if (this.uncertain) {
        const found = await withTimeout(this.durableOffsets(lowestPending(entries)), SCAN_TIMEOUT_MS, `reading the dead letter ${this.location} back timed out`);
        for (const [key, offsets] of found) for (const offset of offsets) this.durable.add(positionOfKey(key, offset));
        entries = this.durable.fresh(entries);
        this.uncertain = false;
      }
      messages.push(...entries.map(messageOf));
      // kafkajs can also hang in connect after a broker restart: bounded like the send.
      const producer = await withTimeout(this.connectedProducer(), SEND_TIMEOUT_MS, 'connecting to Kafka timed out');
      await withTimeout(producer.send({ topic: this.config.topic, acks: -1, messages }), SEND_TIMEOUT_MS, 'no acknowledgement from Kafka');
    } catch (cause) {
      // Kept for the next flush: a dead letter is never dropped. A timed-out send may still land,
      // so the next flush reads the topic back first. After a broker restart kafkajs can hang on a stale connection, or the
      // broker may have lost this producer's sequence state, so the next flush starts from a
      // fresh producer (a new producer id).
      this.pending = entries.concat(this.pending);
      this.uncertain = true;
      const stale = this.producer;
      this.producer = undefined;
      void stale?.then((p) => p.disconnect()).catch(() => undefined);
      throw toStorageError(cause, { stage: 'dead_letter', topic: this.config.topic }, `sending ${entries.length} dead letters to ${this.location}`, true);
    }
    for (const e of entries) this.durable.add(e.position);
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

/** The original bytes as the value; reason, message and source position as headers. */
function messageOf(entry: DeadLetter): Message {
  return {
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
  };
}

import { randomBytes } from 'node:crypto';
import type { Kafka, Message, Producer, RetryOptions } from 'kafkajs';
import { DeadLetterPositions, withoutPartitions, lowestPending, positionKey, positionOfKey, type DeadLetterSink } from '../../src/core/dead-letter.js';
import type { DeadLetter } from '../../src/core/record.js';
import type { PartitionAssignment } from '../../src/core/source.js';
import { withTimeout } from '../../src/core/timeout.js';
import { connectChecked, createKafka, createTransactionalProducer, kafkaRetry, toStorageError, type KafkaLog } from './client.js';
import type { KafkaDeadLetterConfig } from './config.js';

const SEND_TIMEOUT_MS = 30_000;
/** Reading the topic back at an assignment: a throw-away group joins, reads to the end, leaves. */
const SCAN_TIMEOUT_MS = 120_000;

export interface KafkaDeadLetterOptions {
  log?: KafkaLog;
  retry?: RetryOptions;
}

/** One source partition's transactional producer, once initialised. */
interface PartitionProducer {
  producer: Promise<Producer>;
}

/**
 * Sends dead letters to a topic: the original payload bytes as the value, no key, and the reason,
 * message and source position in `earthmem.*` headers. `flush` resolves once the entries are
 * committed, so their records may be acked.
 *
 * Exactly once by source position, across crashes and rebalances:
 * - each source partition's dead letters go through a transactional producer of its own
 *   (`transactional.id` from the topic, source and partition, the way Kafka Streams' first
 *   exactly-once mode keys them by task). A new owner's init fences the last owner: a
 *   transaction that owner still has open is aborted, and its later sends fail as fenced;
 * - then the topic is read back (read_committed, headers only) for the positions of the
 *   assigned partitions at or after their start offsets, and `flush` skips those.
 * So a send in flight when a partition moves either committed before the new owner read the
 * topic back (and is skipped) or is aborted (and the new owner sends it). Readers of the topic
 * must read committed messages only: librdkafka's default, not the Java client's.
 *
 * The topic is not created here: the broker's auto-creation makes it, and the producer retries
 * the LEADER_NOT_AVAILABLE answers that come while it does. The topic is read whole, so this
 * costs one pass over the dead letters per rebalance: dead letters are few.
 */
export class KafkaDeadLetterSink implements DeadLetterSink {
  readonly location: string;
  private readonly kafka: Kafka;
  private readonly retry: RetryOptions;
  private pending: DeadLetter[] = [];
  private readonly durable = new DeadLetterPositions();
  /** A send failed: it may still have landed, so the topic is read back before the next one. */
  private uncertain = false;
  /** Per source partition (`positionKey`). */
  private readonly producers = new Map<string, PartitionProducer>();
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
    for (const p of partitions) {
      const key = positionKey(p.source, p.partition);
      const owned = this.producers.get(key);
      this.producers.delete(key);
      // After any send of ours in flight: the new owner's init fences it anyway.
      if (owned) void this.chain.then(() => disconnect(owned));
    }
  }

  async assigned(partitions: readonly PartitionAssignment[]): Promise<void> {
    // Our own sends in flight are on the topic (or pending again) before it is read.
    await this.chain;
    const context = { stage: 'dead_letter', topic: this.config.topic };
    try {
      // Fence the partitions' last owners first, so nothing of theirs lands after the read-back.
      await Promise.all(partitions.map((p) => this.freshProducer(positionKey(p.source, p.partition))));
      const found = await withTimeout(this.durableOffsets(partitions), SCAN_TIMEOUT_MS, `reading the dead letter ${this.location} back timed out`);
      for (const p of partitions) this.durable.load(p.source, p.partition, p.startOffset ?? 0, found.get(positionKey(p.source, p.partition)) ?? []);
    } catch (cause) {
      throw toStorageError(cause, context, `taking over the dead letters of ${partitions.length} partitions in ${this.location}`, false);
    }
  }

  /** Per assigned partition, the offsets at or after its start that the topic holds (committed). */
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
      // read_committed (kafkajs's default): aborted sends of fenced owners are not dead letters.
      const consumer = this.kafka.consumer({ groupId, retry: this.retry, readUncommitted: false });
      try {
        await consumer.connect();
        await consumer.subscribe({ topic: this.config.topic, fromBeginning: true });
        await new Promise<void>((resolve, reject) => {
          consumer.on(consumer.events.CRASH, (event) => reject(event.payload.error));
          // Done by offsets, not by messages: the last offsets of a partition are often
          // transaction markers, which reach no handler but end a batch.
          consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
            const last = remaining.get(payload.partition);
            if (last !== undefined && Number(payload.lastOffset) >= last) remaining.delete(payload.partition);
            if (remaining.size === 0) resolve();
          });
          consumer
            .run({
              autoCommit: false,
              eachBatch: async ({ batch }) => {
                for (const m of batch.messages) {
                  const h = m.headers ?? {};
                  const source = h['earthmem.source']?.toString();
                  const partition = Number(h['earthmem.partition']?.toString());
                  const offset = Number(h['earthmem.offset']?.toString());
                  if (source === undefined) continue;
                  const key = positionKey(source, partition);
                  const start = starts.get(key);
                  if (start !== undefined && offset >= start) {
                    let list = found.get(key);
                    if (list === undefined) found.set(key, (list = []));
                    list.push(offset);
                  }
                }
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
      const owned = [...this.producers.values()];
      this.producers.clear();
      await Promise.all(owned.map(disconnect));
    }
  }

  private async send(): Promise<void> {
    let entries = this.durable.fresh(this.pending);
    this.pending = [];
    if (entries.length === 0) return;
    const context = { stage: 'dead_letter', topic: this.config.topic };
    try {
      if (this.uncertain) {
        // Fresh producers first: each init fences every other producer of its partition and
        // aborts their open transactions (ours included), so the read-back sees all that will
        // ever land. A worker that lost the partition without knowing yet may fence its new
        // owner this way: that owner's next flush does the same in turn, and as every commit
        // follows a read-back under its own epoch, each position still lands once.
        for (const key of new Set(entries.map((e) => positionKey(e.position.source, e.position.partition)))) await this.freshProducer(key);
        const found = await withTimeout(this.durableOffsets(lowestPending(entries)), SCAN_TIMEOUT_MS, `reading the dead letter ${this.location} back timed out`);
        for (const [key, offsets] of found) for (const offset of offsets) this.durable.add(positionOfKey(key, offset));
        entries = this.durable.fresh(entries);
        this.uncertain = false;
      }
    } catch (cause) {
      this.pending = entries.concat(this.pending);
      throw toStorageError(cause, context, `reading the dead letter ${this.location} back before a resend`, true);
    }
    const groups = new Map<string, DeadLetter[]>();
    for (const e of entries) {
      const key = positionKey(e.position.source, e.position.partition);
      let group = groups.get(key);
      if (group === undefined) groups.set(key, (group = []));
      group.push(e);
    }
    const unsent = [...groups];
    while (unsent.length > 0) {
      const [key, group] = unsent[0]!;
      try {
        // kafkajs can also hang in connect after a broker restart: bounded like the send.
        await withTimeout(this.sendInTransaction(key, group), SEND_TIMEOUT_MS, 'no acknowledgement from Kafka');
      } catch (cause) {
        // Kept for the next flush: a dead letter is never dropped. A timed-out commit may still
        // land, and a fenced producer is dead, so the next flush starts from a fresh producer and
        // reads the topic back first.
        this.pending = unsent.flatMap(([, g]) => g).concat(this.pending);
        this.uncertain = true;
        const owned = this.producers.get(key);
        this.producers.delete(key);
        if (owned) void disconnect(owned);
        const { source, partition } = group[0]!.position;
        const fenced = isFenced(cause) ? ` (fenced by another worker's producer of ${source}[${partition}]: a rebalance)` : '';
        throw toStorageError(cause, context, `sending ${group.length} dead letters to ${this.location}${fenced}`, true);
      }
      for (const e of group) this.durable.add(e.position);
      unsent.shift();
    }
  }

  private async sendInTransaction(key: string, group: DeadLetter[]): Promise<void> {
    const producer = await (this.producers.get(key) ?? (await this.freshProducer(key))).producer;
    const transaction = await producer.transaction();
    try {
      await transaction.send({ topic: this.config.topic, acks: -1, messages: group.map(messageOf) });
      await transaction.commit();
    } catch (error) {
      if (transaction.isActive()) await transaction.abort().catch(() => undefined); // the next init aborts it otherwise
      throw error;
    }
  }

  /**
   * A new, initialised transactional producer for a source partition, replacing ours: its init
   * fences every earlier producer of the partition and aborts their open transactions.
   */
  private async freshProducer(key: string): Promise<PartitionProducer> {
    const old = this.producers.get(key);
    const position = positionOfKey(key, 0);
    const producer = createTransactionalProducer(this.kafka, `earthmem-dead-letter.${this.config.topic}.${position.source}.${position.partition}`, this.retry);
    const ready = (async () => {
      if (old) await disconnect(old);
      await connectChecked(this.config, producer);
      // Starting a transaction initialises the transactional id (the fencing); nothing is sent.
      await (await producer.transaction()).abort();
      return producer;
    })();
    const owned: PartitionProducer = { producer: ready };
    this.producers.set(key, owned);
    try {
      await withTimeout(ready, SEND_TIMEOUT_MS, 'starting a transactional producer timed out');
    } catch (error) {
      if (this.producers.get(key) === owned) this.producers.delete(key);
      void producer.disconnect().catch(() => undefined);
      throw error;
    }
    return owned;
  }
}

/** Whether a producer was fenced by a newer one with its transactional id. */
function isFenced(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 10; depth++) {
    const type = String((current as { type?: unknown }).type);
    if (type === 'INVALID_PRODUCER_EPOCH' || type === 'PRODUCER_FENCED') return true;
    current = current.cause;
  }
  return false;
}

async function disconnect(owned: PartitionProducer): Promise<void> {
  await owned.producer.then((p) => p.disconnect()).catch(() => undefined);
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

import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { SourceError } from '../../src/core/errors.js';
import { withTimeout } from '../../src/core/timeout.js';
import type { Committable } from '../../src/core/offset-tracker.js';
import type { PartitionAssignment, RawChunk, Source, SourceHooks, SourcePartitionRef } from '../../src/core/source.js';
import { connectChecked, createKafka, setGroupOffsets, tlsCertificateFailure, toSourceError } from './client.js';
import { GroupCommits, partitionKey } from './commits.js';
import type { KafkaSourceConfig } from './config.js';

export interface KafkaSourceOptions {
  /** Log lines (warnings, rebalances, lag). */
  log?: (line: string) => void;
  /**
   * A bounded replay: the group to use (a fresh one, never the live group), where each partition
   * starts, and where it stops (exclusive). Without it the source is the live consumer group.
   */
  replay?: {
    groupId: string;
    start: Map<string, number>;
    stop: Map<string, number>;
  };
}

interface Queued {
  key: string;
  chunk: RawChunk;
  bytes: number;
}

/** The payload of a message with a null value (a tombstone). */
const EMPTY = new Uint8Array(0);

const COMMIT_TIMEOUT_MS = 10_000;
/** How often offsets that look committed are read back anyway (a late stale commit may have moved them back). */
const VERIFY_INTERVAL_MS = 5_000;

/** Fetched but not yet pulled by the pipeline; over it the consumer pauses its partitions. */
const MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/** How often the watch looks whether the lag line or a stall check is due. */
const WATCH_TICK_MS = 1_000;

/** Per assigned partition: what the group stores, and the topic's low and high watermarks. */
type PartitionOffsets = Map<string, { committed: number; low: number; high: number }>;

/**
 * The Kafka source: a kafkajs consumer group. Nothing is committed on receipt: the pipeline calls
 * `commit` with offsets below which every record is durable. Rebalances reach the pipeline as
 * `assigned`/`revoked` hooks before any record of a new partition is delivered. Backpressure:
 * when the pipeline stops pulling, the queue fills and the consumer pauses; it resumes as the
 * queue drains (a paused consumer keeps heart-beating, so it stays in the group).
 */
export class KafkaSource implements Source {
  readonly name: string;
  readonly bounded: boolean;
  readonly shared: boolean;
  readonly payloadFormat: 'json' | 'raster_tile';
  private readonly kafka: Kafka;
  private consumer: Consumer;
  private readonly admin: Admin;
  private readonly groupId: string;
  private readonly log: (line: string) => void;
  private hooks: SourceHooks | undefined;
  private readonly queue: Queued[] = [];
  private queuedBytes = 0;
  private wake: (() => void) | undefined;
  private failure: unknown;
  private paused = false;
  private assigned = new Set<string>();
  private readonly ready = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  /** Hook work runs one at a time, in event order. */
  private hookChain: Promise<void> = Promise.resolve();
  private readonly commits = new GroupCommits();
  private lastCommitAt = 0;
  private readonly finished = new Set<string>();
  private started = false;
  private commitTimer: NodeJS.Timeout | undefined;
  /** One timer and one offsets query for the lag line and the stall check. */
  private watchTimer: NodeJS.Timeout | undefined;
  private watching = false;
  private lastLagAt = Date.now();
  private lastStallCheckAt = 0;
  private restarting: Promise<void> | undefined;
  /** When the consumer last handed us a batch (or was (re)started or assigned). */
  private lastFetchAt = Date.now();
  /** Per partition: the offset after the last one fetched. */
  private readonly fetchedNext = new Map<string, number>();
  private committing = false;
  /** A commit request that timed out on our side but that kafkajs may still deliver late. */
  private lingeringCommit: Promise<unknown> | undefined;
  private lastVerifiedAt = 0;
  private commitFailures = 0;
  private closing = false;

  constructor(
    private readonly config: KafkaSourceConfig,
    private readonly options: KafkaSourceOptions = {},
  ) {
    this.log = options.log ?? (() => undefined);
    this.bounded = options.replay !== undefined;
    this.shared = options.replay === undefined;
    this.payloadFormat = config.format;
    this.groupId = options.replay?.groupId ?? config.group_id;
    this.name = `kafka:${config.topics.join(',')}`;
    // Generous client retries: a broker restart takes seconds, and the worker rides it out.
    this.kafka = createKafka(config, this.log, { retries: 30, initialRetryTime: 300, maxRetryTime: 10_000, multiplier: 2, factor: 0.2 });
    this.admin = this.kafka.admin();
    this.consumer = this.newConsumer();
  }

  private newConsumer(): Consumer {
    const consumer = this.kafka.consumer({
      groupId: this.groupId,
      sessionTimeout: this.config.session_timeout,
      heartbeatInterval: this.config.heartbeat_interval,
      maxBytesPerPartition: this.config.max_bytes_per_partition,
      maxWaitTimeInMs: this.config.max_wait,
      allowAutoTopicCreation: false,
      // A broker restart is ridden out: reconnect with backoff, and restart the run loop. A
      // consumer we replaced must not restart itself: it would rejoin the group as a zombie
      // member holding partitions that nobody reads.
      retry: {
        retries: 30,
        initialRetryTime: 300,
        maxRetryTime: 10_000,
        // Nor after a certificate that does not verify: the same one comes back.
        restartOnFailure: async (error) => consumer === this.consumer && !this.closing && !tlsCertificateFailure(error),
      },
    });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      if (consumer === this.consumer) {
        this.onAssignment(payload.memberAssignment as Record<string, number[]>);
        return;
      }
      // A replaced consumer whose own crash-restart was already scheduled rejoined the group: it
      // would hold partitions nobody reads. Make it leave, so the group rebalances to us.
      this.log('kafka: a replaced consumer rejoined the group; disconnecting it');
      void consumer.disconnect().catch(() => undefined);
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (consumer !== this.consumer) return;
      if (!payload.restart) this.fail(toSourceError(payload.error, { connector: 'kafka', stage: 'source' }));
      else this.log(`kafka consumer restarting after: ${payload.error.message}`);
    });
    return consumer;
  }

  /** Joins the group and starts fetching (again, after a restart). */
  private async runConsumer(): Promise<void> {
    const consumer = this.consumer;
    await connectChecked(this.config, consumer);
    await consumer.subscribe({ topics: this.config.topics, fromBeginning: this.config.start !== 'latest' });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      partitionsConsumedConcurrently: 1,
      // Batches a replaced consumer still had in flight are dropped: the new one re-reads them.
      eachBatch: (payload) => (consumer === this.consumer ? this.onBatch(payload) : Promise.resolve()),
    });
  }

  /**
   * kafkajs can keep a dead group coordinator after a broker restart, and its commits then never
   * succeed. A fresh consumer finds the coordinator again; records it redelivers were already
   * acknowledged (or are covered in the catalog), so nothing is written twice.
   */
  private restartConsumer(reason: string): Promise<void> {
    // One restart at a time: the stall check and the commit failures may both ask for one.
    this.restarting ??= this.replaceConsumer(reason).finally(() => {
      this.restarting = undefined;
      this.lastFetchAt = Date.now();
    });
    return this.restarting;
  }

  private async replaceConsumer(reason: string): Promise<void> {
    this.log(`kafka consumer restart: ${reason}`);
    const old = this.consumer;
    this.consumer = this.newConsumer();
    this.paused = false;
    // Leave the group before rejoining, so the old member's partitions are reassigned now
    // rather than after its session times out.
    await withTimeout(old.disconnect(), 15_000, 'old consumer disconnect timed out').catch((e: Error) => this.log(`kafka: ${e.message}`));
    // A commit the old consumer never settled must not hold the new one's commits back; if it
    // lands after all, the periodic read-back sees the offsets it moved and commits them again.
    this.lingeringCommit = undefined;
    // A restart is a rebalance: everything is revoked (open batches abandoned, the tracker reset,
    // queued records dropped) and assigned again from the committed offsets, with a fresh claim
    // and the catalog's coverage; so no record fetched by the old consumer is left unacknowledged.
    this.onAssignment({});
    try {
      await this.runConsumer();
    } catch (error) {
      this.fail(toSourceError(error, { connector: 'kafka', stage: 'source' }));
    }
  }

  /**
   * Pauses or resumes fetching. A consumer being replaced (restart after a broker outage) is not
   * running yet and kafkajs throws; the new one starts fetching anyway, so there is nothing to do.
   */
  private setFetching(on: boolean): void {
    const topics = this.config.topics.map((topic) => ({ topic }));
    // A pause (backpressure: a sink retrying through an outage) can last minutes: the stall
    // check counts from the resume, not from the last batch before the pause.
    if (on) this.lastFetchAt = Date.now();
    try {
      if (on) this.consumer.resume(topics);
      else this.consumer.pause(topics);
    } catch (error) {
      this.log(`kafka: ${on ? 'resume' : 'pause'} skipped: ${(error as Error).message}`);
    }
  }

  attach(hooks: SourceHooks): void {
    this.hooks = hooks;
  }

  private fail(error: unknown): void {
    this.failure ??= error;
    this.wake?.();
  }

  private readyFor(key: string) {
    let entry = this.ready.get(key);
    if (entry === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      entry = { promise, resolve };
      this.ready.set(key, entry);
    }
    return entry;
  }

  private onAssignment(assignment: Record<string, number[]>): void {
    const next = new Set<string>();
    const refs = new Map<string, SourcePartitionRef>();
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const key = partitionKey(topic, partition);
        next.add(key);
        refs.set(key, { source: topic, partition });
      }
    }
    const revoked = [...this.assigned].filter((k) => !next.has(k));
    const added = [...next].filter((k) => !this.assigned.has(k));
    this.assigned = next;
    for (const key of revoked) {
      // A fetch waiting for this partition's hooks goes on and drops its batch (no longer assigned).
      this.ready.get(key)?.resolve();
      this.ready.delete(key);
      this.fetchedNext.delete(key);
      this.commits.forget(key);
    }
    // Records of revoked partitions still queued are dropped: the new owner re-reads them.
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (!next.has(this.queue[i]!.key)) {
        this.queuedBytes -= this.queue[i]!.bytes;
        this.queue.splice(i, 1);
      }
    }
    for (const key of added) this.readyFor(key);
    this.lastFetchAt = Date.now();
    this.log(`kafka group ${this.groupId}: assigned ${[...next].sort().join(' ') || '(nothing)'}${revoked.length ? `; revoked ${revoked.join(' ')}` : ''}`);
    this.hookChain = this.hookChain.then(async () => {
      try {
        if (revoked.length > 0) {
          await this.hooks?.revoked(revoked.map((k) => {
            const [topic, p] = [k.slice(0, k.lastIndexOf(':')), Number(k.slice(k.lastIndexOf(':') + 1))];
            return { source: topic, partition: p };
          }));
        }
        if (added.length > 0) {
          const starts = await this.startOffsets(added.map((k) => refs.get(k)!));
          await this.hooks?.assigned(starts);
          for (const start of starts) {
            const key = partitionKey(start.source, start.partition);
            const stop = this.options.replay?.stop.get(key);
            if (stop !== undefined && (start.startOffset ?? 0) >= stop) this.finished.add(key);
          }
        }
        for (const key of added) this.ready.get(key)?.resolve();
        this.wake?.();
      } catch (error) {
        this.fail(error);
      }
    });
  }

  /** Where each newly assigned partition resumes: the group's committed offset (or the replay's start). */
  private async startOffsets(partitions: SourcePartitionRef[]): Promise<PartitionAssignment[]> {
    if (this.options.replay) {
      return partitions.map((p) => ({ ...p, startOffset: this.options.replay!.start.get(partitionKey(p.source, p.partition)) ?? 0 }));
    }
    const topics = [...new Set(partitions.map((p) => p.source))];
    const committed = await this.admin.fetchOffsets({ groupId: this.groupId, topics });
    const byKey = new Map<string, number>();
    for (const t of committed) for (const p of t.partitions) byKey.set(partitionKey(t.topic, p.partition), Number(p.offset));
    return partitions.map((p) => {
      const offset = byKey.get(partitionKey(p.source, p.partition));
      return { ...p, startOffset: offset === undefined || offset < 0 ? null : offset };
    });
  }

  /** Applies `start` (timestamp or explicit offsets) for partitions the group never committed. */
  private async applyStart(): Promise<void> {
    const start = this.options.replay ? undefined : this.config.start;
    if (this.options.replay) {
      for (const topic of this.config.topics) {
        const partitions = [...this.options.replay.start]
          .filter(([k]) => k.slice(0, k.lastIndexOf(':')) === topic)
          .map(([k, offset]) => ({ partition: Number(k.slice(k.lastIndexOf(':') + 1)), offset: String(offset) }));
        if (partitions.length > 0) await setGroupOffsets(this.kafka, this.groupId, topic, partitions);
      }
      return;
    }
    if (start === undefined || typeof start === 'string') return;
    const committed = await this.admin.fetchOffsets({ groupId: this.groupId, topics: this.config.topics });
    for (const t of committed) {
      if (t.partitions.some((p) => Number(p.offset) >= 0)) continue;
      let partitions: { partition: number; offset: string }[];
      if ('timestamp' in start) {
        const ms = typeof start.timestamp === 'number' ? start.timestamp : Date.parse(start.timestamp);
        if (!Number.isFinite(ms)) throw new SourceError(`source.start.timestamp is not a time: ${start.timestamp}`, { context: { connector: 'kafka' } });
        partitions = (await this.admin.fetchTopicOffsetsByTimestamp(t.topic, ms)).map((p) => ({ partition: p.partition, offset: p.offset }));
      } else {
        partitions = Object.entries(start.offsets[t.topic] ?? {}).map(([p, o]) => ({ partition: Number(p), offset: String(o) }));
      }
      if (partitions.length > 0) await setGroupOffsets(this.kafka, this.groupId, t.topic, partitions);
    }
  }

  private async start(): Promise<void> {
    try {
      await connectChecked(this.config, this.admin);
      await this.applyStart();
      // Offsets that became committable between batches still reach Kafka within commit_interval.
      this.commitTimer = setInterval(() => void this.flushCommits(), this.config.commit_interval);
      const lagEvery = this.config.lag_log_interval > 0 ? this.config.lag_log_interval : Infinity;
      this.watchTimer = setInterval(() => void this.watch(), Math.min(WATCH_TICK_MS, lagEvery, this.config.stall_timeout));
      await this.runConsumer();
    } catch (error) {
      throw toSourceError(error, { connector: 'kafka', stage: 'source' });
    }
  }

  private async onBatch({ batch, isStale }: EachBatchPayload): Promise<void> {
    const key = partitionKey(batch.topic, batch.partition);
    this.lastFetchAt = Date.now();
    if (batch.messages.length > 0) this.fetchedNext.set(key, Number(batch.messages[batch.messages.length - 1]!.offset) + 1);
    await this.readyFor(key).promise;
    if (isStale() || !this.assigned.has(key) || this.finished.has(key)) return;
    const stop = this.options.replay?.stop.get(key);
    const chunk: RawChunk = { payloads: [], positions: [], keys: [] };
    let bytes = 0;
    for (const message of batch.messages) {
      const offset = Number(message.offset);
      if (stop !== undefined && offset >= stop) {
        this.finished.add(key);
        break;
      }
      const payload = message.value ?? EMPTY;
      chunk.payloads.push(payload);
      chunk.positions.push({ source: batch.topic, partition: batch.partition, offset });
      chunk.keys!.push(message.key === null ? null : message.key.toString('utf8'));
      bytes += payload.length;
      if (stop !== undefined && offset >= stop - 1) {
        this.finished.add(key);
        break;
      }
    }
    if (chunk.payloads.length > 0) {
      this.queue.push({ key, chunk, bytes });
      this.queuedBytes += bytes;
    }
    if (this.queuedBytes > MAX_QUEUED_BYTES && !this.paused) {
      this.paused = true;
      this.setFetching(false);
    }
    this.wake?.();
  }

  private allFinished(): boolean {
    const stop = this.options.replay?.stop;
    return stop !== undefined && [...stop.keys()].every((k) => this.finished.has(k));
  }

  async *chunks(signal: AbortSignal): AsyncGenerator<RawChunk> {
    if (!this.started) {
      this.started = true;
      await this.start();
    }
    const onAbort = () => this.wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        if (this.failure !== undefined) throw this.failure;
        if (signal.aborted) return;
        const next = this.queue.shift();
        if (next !== undefined) {
          this.queuedBytes -= next.bytes;
          if (this.paused && this.queuedBytes < MAX_QUEUED_BYTES / 2) {
            this.paused = false;
            this.setFetching(true);
          }
          // Between a dequeue and the pipeline's use, the partition may be revoked: the pipeline's
          // tracker and claims decide; here only currently assigned partitions are passed on.
          if (this.assigned.has(next.key)) yield next.chunk;
          continue;
        }
        if (this.allFinished()) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      // Stop fetching; the group membership stays until close() so final commits still land.
      this.setFetching(false);
    }
  }

  async commit(offsets: Committable[]): Promise<void> {
    for (const o of offsets) {
      const key = partitionKey(o.source, o.partition);
      if (this.assigned.has(key)) this.commits.want(o);
    }
    if (Date.now() - this.lastCommitAt >= this.config.commit_interval) await this.flushCommits();
  }

  /** The group's stored offsets; every read also tells the commit state what the broker stores. */
  private async readStored(topics: string[] = this.config.topics) {
    const stored = await withTimeout(this.admin.fetchOffsets({ groupId: this.groupId, topics }), COMMIT_TIMEOUT_MS, 'reading committed offsets timed out');
    for (const t of stored) {
      for (const p of t.partitions) if (this.assigned.has(partitionKey(t.topic, p.partition))) this.commits.stored(t.topic, p.partition, Number(p.offset));
    }
    return stored;
  }

  /**
   * Sends the offsets not yet confirmed, then reads the group's offsets back: kafkajs resolves a
   * commit without sending it while its run loop restarts (e.g. after a broker restart), so only
   * the broker's answer counts. Every VERIFY_INTERVAL_MS the stored offsets are read again even
   * when all looked confirmed. Repeated failures restart the consumer.
   */
  private async flushCommits(): Promise<void> {
    // During a consumer restart the new consumer cannot commit yet; that is not a failure.
    if (this.committing || this.restarting) return;
    this.committing = true;
    try {
      if (this.commits.wanted && Date.now() - this.lastVerifiedAt >= VERIFY_INTERVAL_MS) {
        this.lastVerifiedAt = Date.now();
        // A failed read alone is not a commit failure (a commit below counts its own): with
        // nothing to commit, a broker away for a while is no reason to replace the consumer.
        await this.readStored().catch((error: Error) => this.log(`kafka committed offsets unverified: ${error.message}`));
      }
      const unconfirmed = this.commits.unconfirmed();
      if (unconfirmed.length === 0) return;
      this.lastCommitAt = Date.now();
      // An earlier commit still in kafkajs's hands would overwrite this one if it landed after it.
      if (this.lingeringCommit) await withTimeout(this.lingeringCommit, COMMIT_TIMEOUT_MS, 'an earlier offset commit is still pending');
      const batch = unconfirmed.map((o) => ({ topic: o.source, partition: o.partition, offset: String(o.offset) }));
      const request = this.consumer.commitOffsets(batch);
      const settled = request.then(
        () => undefined,
        () => undefined,
      );
      this.lingeringCommit = settled;
      void settled.then(() => {
        if (this.lingeringCommit === settled) this.lingeringCommit = undefined;
      });
      await withTimeout(request, COMMIT_TIMEOUT_MS, 'offset commit timed out');
      await this.readStored([...new Set(unconfirmed.map((o) => o.source))]);
      this.lastVerifiedAt = Date.now();
      const missing = this.commits.unconfirmed().length;
      if (missing > 0) throw new Error(`${missing} partition offsets not stored by the broker`);
      this.commitFailures = 0;
    } catch (error) {
      this.commitFailures++;
      this.log(`kafka commit deferred (${this.commitFailures}): ${(error as Error).message}`);
      if (this.commitFailures >= 3 && !this.closing) {
        this.commitFailures = 0;
        await this.restartConsumer('offset commits keep failing');
      }
    } finally {
      this.committing = false;
    }
  }

  /**
   * Every tick: when the lag line or a stall check is due, one read of the group's and the
   * topics' offsets serves both. A failed read (broker away) is logged, not fatal.
   */
  private async watch(): Promise<void> {
    if (this.watching || this.closing || this.assigned.size === 0) return;
    const now = Date.now();
    const lagDue = this.config.lag_log_interval > 0 && now - this.lastLagAt >= this.config.lag_log_interval;
    const stallDue = this.stallSuspected() && now - this.lastStallCheckAt >= Math.min(5_000, this.config.stall_timeout);
    if (!lagDue && !stallDue) return;
    this.watching = true;
    try {
      if (lagDue) this.lastLagAt = now;
      if (stallDue) this.lastStallCheckAt = now;
      const offsets = await this.readOffsets();
      if (lagDue) this.logLag(offsets);
      if (stallDue) this.restartIfStalled(offsets);
    } catch (error) {
      this.log(`kafka offsets unknown (${[lagDue ? 'lag' : '', stallDue ? 'stall check' : ''].filter(Boolean).join(', ')}): ${(error as Error).message}`);
    } finally {
      this.watching = false;
    }
  }

  private async readOffsets(): Promise<PartitionOffsets> {
    const committed = new Map<string, number>();
    for (const t of await this.readStored()) for (const p of t.partitions) committed.set(partitionKey(t.topic, p.partition), Number(p.offset));
    const out: PartitionOffsets = new Map();
    for (const topic of this.config.topics) {
      const offsets = await withTimeout(this.admin.fetchTopicOffsets(topic), COMMIT_TIMEOUT_MS, 'reading topic offsets timed out');
      for (const p of offsets) {
        const key = partitionKey(topic, p.partition);
        if (this.assigned.has(key)) out.set(key, { committed: committed.get(key) ?? -1, low: Number(p.low), high: Number(p.high) });
      }
    }
    return out;
  }

  /** One log line with the group's lag (high watermark − committed offset) per assigned partition, the way `earthmem status` computes it. */
  private logLag(offsets: PartitionOffsets): void {
    const parts: string[] = [];
    let total = 0;
    for (const [key, { committed, low, high }] of offsets) {
      const lag = Math.max(0, high - (committed >= 0 ? committed : low));
      total += lag;
      const sep = key.lastIndexOf(':');
      parts.push(`${key.slice(0, sep)}[${key.slice(sep + 1)}]=${lag}`);
    }
    // What holds the committed offsets back, when something does.
    const uncommitted = this.commits.unconfirmed().length;
    const held = [
      this.restarting ? 'consumer restarting' : '',
      uncommitted > 0 ? `${uncommitted} partitions with offsets awaiting commit` : '',
      this.paused ? `paused (${this.queue.length} fetched batches queued)` : '',
    ].filter(Boolean);
    this.log(`kafka lag ${this.groupId}: ${parts.join(' ')} total=${total}${held.length ? `; ${held.join('; ')}` : ''}`);
  }

  /** No batch for `stall_timeout` while we are not pausing for backpressure. */
  private stallSuspected(): boolean {
    return !this.restarting && !this.paused && this.queue.length === 0 && Date.now() - this.lastFetchAt >= this.config.stall_timeout;
  }

  /**
   * After a broker restart kafkajs can keep a consumer that is in the group but never fetches
   * again; commits then have nothing new to fail on. If no batch has arrived for `stall_timeout`
   * while assigned partitions have unread messages, the consumer is replaced.
   */
  private restartIfStalled(offsets: PartitionOffsets): void {
    let unread = 0;
    for (const [key, { committed, low, high }] of offsets) {
      if (this.finished.has(key)) continue;
      const from = this.fetchedNext.get(key) ?? Math.max(committed, low);
      unread += Math.max(0, high - from);
    }
    if (unread > 0 && this.stallSuspected() && !this.closing) {
      this.lastFetchAt = Date.now();
      // Not awaited: the lag lines go on (saying "consumer restarting") while it runs.
      this.restartConsumer(`no messages for ${Math.round(this.config.stall_timeout / 1000)} s while ${unread} are unread`).catch((error: Error) =>
        this.log(`kafka consumer restart failed: ${error.message}`),
      );
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.commitTimer);
    clearInterval(this.watchTimer);
    await this.hookChain;
    // A consumer being replaced must be running before it can commit the final offsets.
    if (this.restarting) await withTimeout(this.restarting, 30_000, 'consumer restart timed out').catch((e: Error) => this.log(`kafka: ${e.message}`));
    for (let attempt = 0; attempt < 3 && this.commits.unconfirmed().length > 0; attempt++) {
      while (this.committing) await new Promise((r) => setTimeout(r, 50));
      await this.flushCommits();
    }
    const uncommitted = this.commits.unconfirmed().length;
    if (uncommitted > 0) this.log(`kafka: ${uncommitted} partitions left uncommitted; their durable records will be skipped on redelivery`);
    await withTimeout(this.consumer.disconnect(), 15_000, 'consumer disconnect timed out').catch((e: Error) => this.log(`kafka: ${e.message}`));
    await withTimeout(this.admin.disconnect(), 15_000, 'admin disconnect timed out').catch((e: Error) => this.log(`kafka: ${e.message}`));
  }
}

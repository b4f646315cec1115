import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Observable, defaultIfEmpty, defer, lastValueFrom, map, mergeMap, tap } from 'rxjs';
import type { Batch } from '../core/batch.js';
import type { DeadLetterSink } from '../core/dead-letter.js';
import { describeError, FencedError } from '../core/errors.js';
import { OffsetTracker } from '../core/offset-tracker.js';
import { withRetry } from '../core/retry.js';
import type { DeadLetter, DeadLetterReason, ObservationRecord, SourcePosition } from '../core/record.js';
import type { PartitionAssignment, RawChunk, Source, SourceHooks, SourcePartitionRef } from '../core/source.js';
import type { Catalog, CatalogEntry, PartitionClaim } from '../catalog/catalog.js';
import { parseRecord } from '../records/parse.js';
import { batchRecords } from '../stages/batch-operator.js';
import { Batcher, batchIdOfRange, type Routed } from '../stages/batcher.js';
import { compileClassifier, DEAD_LETTER } from '../stages/classify.js';
import { CoverageIndex } from '../stages/coverage.js';
import { createCatalog, createDeadLetterSink, createSource } from './connectors.js';
import { InFlightGate } from './gate.js';
import { ObjectSizeReport } from './object-sizes.js';
import { TIERS, type PipelineConfig, type TierName } from './schema.js';
import { closeTier, describeSink, openTier, sinkOf, writeBatch, type Tier } from './tier-writer.js';

export interface PipelineStats {
  recordsRead: number;
  recordsWritten: number;
  /** Redelivered records found already durable in a catalogued object. */
  recordsAlreadyDurable: number;
  deadLettered: number;
  deadLetterReasons: Partial<Record<DeadLetterReason, number>>;
  objects: number;
  bytesWritten: number;
  payloadBytesRead: number;
  elapsedMs: number;
  /** Records read but not yet durable. */
  inFlight: number;
  /** Batches dropped because their partition moved to another worker (re-read there). */
  batchesFenced: number;
}

export interface RunSummary extends PipelineStats {
  tiers: {
    name: TierName;
    uri: string;
    objects: number;
    bytes: number;
    /** The memory types this run wrote to the tier, sorted. */
    memoryTypes: string[];
    /** How the tier stores objects: format, file_organization, codec (or the record store's type). */
    layout: string;
  }[];
  catalog: string;
  deadLetter: string;
  /** True when every record read was acknowledged (written, already durable, or dead-lettered). */
  complete: boolean;
  /** What the run did that its operator should change (e.g. many small objects), for the summary. */
  warnings: string[];
}

export interface RunOptions {
  /** Abort to drain: stop reading, flush open batches, commit, return. */
  signal?: AbortSignal;
  onProgress?: (stats: PipelineStats) => void;
  progressIntervalMs?: number;
  log?: (line: string) => void;
  /** Use this source instead of building one from `config.source` (replays). */
  source?: Source;
  /** With records unacknowledged and none acknowledged for this long, log what they wait for. Default 30 s. */
  stallReportMs?: number;
  /** Where the tiers' secrets (the encryption key) come from; default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

interface Classified {
  routed: Routed[];
  deadLetters: DeadLetter[];
}

const partitionKey = (p: SourcePartitionRef) => `${p.partition}\u0000${p.source}`;

/**
 * Runs a pipeline: source → parse+validate → classify/route → batch → encode → tier → catalog
 * → ack → commit. Returns when a bounded source is exhausted or the signal asks to drain.
 */
export async function runPipeline(config: PipelineConfig, options: RunOptions = {}): Promise<RunSummary> {
  const started = Date.now();
  const signal = options.signal ?? new AbortController().signal;
  const log = options.log ?? (() => undefined);
  const opened: { close(): Promise<void> }[] = [];
  const stats: PipelineStats = {
    recordsRead: 0, recordsWritten: 0, recordsAlreadyDurable: 0, deadLettered: 0, deadLetterReasons: {}, objects: 0,
    bytesWritten: 0, payloadBytesRead: 0, elapsedMs: 0, inFlight: 0, batchesFenced: 0,
  };
  const perTier = new Map<TierName, { objects: number; bytes: number; memoryTypes: Set<string> }>();
  const objectSizes = new ObjectSizeReport();
  let progressTimer: NodeJS.Timeout | undefined;
  try {
    const catalog: Catalog = await createCatalog(config.catalog);
    opened.push(catalog);
    const deadLetterSink: DeadLetterSink = await createDeadLetterSink(config.dead_letter, log);
    opened.push(deadLetterSink);
    const tiers = new Map<TierName, Tier>();
    for (const name of TIERS) {
      const tierConfig = config.storage.tier_configs[name];
      if (tierConfig === undefined) continue;
      const tier = await openTier(name, tierConfig, config, options.env);
      opened.push({ close: () => closeTier(tier) });
      for (const note of tier.notes) log(note);
      tiers.set(name, tier);
      perTier.set(name, { objects: 0, bytes: 0, memoryTypes: new Set() });
    }
    const source: Source = options.source ?? (await createSource(config.source, log));
    opened.push(source);

    const tracker = new OffsetTracker();
    const gate = new InFlightGate(config.batch.max_in_flight_bytes);
    const classify = compileClassifier(config.classify);
    const routeOf = (memoryType: string): Tier =>
      tiers.get(config.routing.memory_types[memoryType] ?? config.routing.default)!;
    const maxRecordBytes = config.source.max_record_bytes;
    const batcher = new Batcher({
      maxRows: config.batch.max_rows,
      maxBytes: config.batch.max_bytes,
      maxAgeMs: source.bounded ? null : config.batch.max_age,
      maxOpenBytes: config.batch.max_open_bytes,
    });
    const coverage = new CoverageIndex();
    // Ownership of shared partitions: writes carry the claim and are refused once another worker claims.
    const claims = new Map<string, PartitionClaim>();
    const workerId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

    const durable = (record: ObservationRecord) => {
      tracker.ack(record.position);
      gate.release(record.size);
      stats.recordsAlreadyDurable++;
    };

    const hooks: SourceHooks = {
      async assigned(partitions: PartitionAssignment[]) {
        if (source.shared) {
          for (const claim of await catalog.claimPartitions(workerId, partitions)) claims.set(partitionKey(claim), claim);
        }
        for (const p of partitions) {
          const ranges = await catalog.coverage(p.source, p.partition, p.startOffset ?? 0);
          coverage.load(p.source, p.partition, ranges, batchIdOfRange);
          if (ranges.length > 0) log(`${p.source}[${p.partition}]: ${ranges.length} catalogued objects at or after offset ${p.startOffset ?? 0}`);
        }
      },
      async revoked(partitions: SourcePartitionRef[]) {
        const gone = new Set(partitions.map(partitionKey));
        for (const p of partitions) {
          claims.delete(partitionKey(p));
          coverage.drop(p.source, p.partition);
          tracker.revoke(p.source, p.partition);
        }
        // Open batches of revoked partitions are dropped unwritten: the new owner re-reads them.
        for (const batch of batcher.abandon((b) => gone.has(partitionKey(b.records[0]!.position)))) {
          let sizes = 0;
          for (const record of batch.records) sizes += record.size;
          gate.release(sizes);
        }
      },
    };
    source.attach?.(hooks);

    // Dead letters are acked only after the sink has them durably.
    let deadPositions: SourcePosition[] = [];
    let deadSizes = 0;
    const flushDeadLetters = async () => {
      const positions = deadPositions;
      const sizes = deadSizes;
      deadPositions = [];
      deadSizes = 0;
      // The sink keeps what it could not send, so a retry resends it (e.g. across a broker restart).
      deadFlushing += positions.length;
      await withRetry(() => deadLetterSink.flush(), {
        retries: 30,
        initialDelayMs: 200,
        maxDelayMs: 5_000,
        onRetry: (error, attempt) => log(`dead letter flush retry ${attempt}: ${describeError(error)}`),
      });
      deadFlushing -= positions.length;
      tracker.ackAll(positions);
      gate.release(sizes);
      await commit();
    };
    let deadFlush: Promise<void> = Promise.resolve();
    let deadLetterFailure: unknown;
    let failRun: (error: unknown) => void = () => undefined;
    const scheduleDeadFlush = () => {
      deadFlush = deadFlush.then(flushDeadLetters);
      // Fail the run now: once the source has nothing more to send, waiting for the next chunk
      // would leave the run waiting forever with its dead letters (and commits) stuck.
      deadFlush.catch((error: unknown) => {
        deadLetterFailure ??= error;
        failRun(error);
      });
    };
    const commit = async () => {
      const committable = tracker.takeCommittable();
      if (committable.length > 0) await source.commit(committable);
    };

    const chunk$ = new Observable<RawChunk>((subscriber) => {
      failRun = (error) => subscriber.error(error);
      (async () => {
        for await (const chunk of source.chunks(signal)) {
          if (subscriber.closed) return;
          if (deadLetterFailure !== undefined) throw deadLetterFailure;
          let bytes = 0;
          for (const p of chunk.payloads) bytes += p.length;
          gate.acquire(bytes);
          stats.payloadBytesRead += bytes;
          subscriber.next(chunk);
          await gate.waitForRoom(signal);
        }
        subscriber.complete();
      })().catch((error: unknown) => subscriber.error(error));
    });

    const classified = (chunk: RawChunk): Classified => {
      const routed: Routed[] = [];
      const deadLetters: DeadLetter[] = [];
      for (let i = 0; i < chunk.payloads.length; i++) {
        const payload = chunk.payloads[i]!;
        const position = chunk.positions[i]!;
        if (!tracker.track(position)) {
          // A redelivery of a record already on its way: its first copy will be acked.
          gate.release(payload.length);
          continue;
        }
        stats.recordsRead++;
        const parsed = parseRecord(payload, position, maxRecordBytes);
        if (!parsed.ok) {
          deadLetters.push(parsed.deadLetter);
          continue;
        }
        const record = parsed.record;
        if (chunk.keys) record.key = chunk.keys[i] ?? null;
        const memoryType = classify(record);
        if (memoryType === DEAD_LETTER) {
          deadLetters.push({
            reason: 'unclassified',
            message: `no classify rule matches (kind=${record.kind}, dataset=${record.dataset}, variable=${record.variable ?? ''}) and classify.default is dead_letter`,
            position,
            payload,
          });
          continue;
        }
        const tier = routeOf(memoryType);
        routed.push({ record, memoryType, tier: tier.name, partitionPath: sinkOf(tier, record.kind).template.expand(record, memoryType) });
      }
      return { routed, deadLetters };
    };

    const handleDeadLetters = ({ deadLetters }: Classified) => {
      if (deadLetters.length === 0) return;
      for (const entry of deadLetters) {
        deadLetterSink.write(entry);
        deadPositions.push(entry.position);
        deadSizes += entry.payload.length;
        stats.deadLettered++;
        stats.deadLetterReasons[entry.reason] = (stats.deadLetterReasons[entry.reason] ?? 0) + 1;
      }
      if (deadPositions.length >= 1000) scheduleDeadFlush();
    };

    // A run whose acknowledgements stop moving says why, every stallReportMs: what is unacked
    // from where, and what holds it (open batches, writes, dead letters, the in-flight budget).
    const stallReportMs = options.stallReportMs ?? 30_000;
    let writesInFlight = 0;
    let deadFlushing = 0;
    let progressMark = '';
    let progressAt = Date.now();
    const reportIfStuck = () => {
      const inFlight = tracker.inFlight();
      const mark = `${inFlight}/${stats.recordsRead}`;
      if (inFlight === 0 || mark !== progressMark) {
        progressMark = mark;
        progressAt = Date.now();
        return;
      }
      if (Date.now() - progressAt < stallReportMs) return;
      progressAt = Date.now();
      const partitions = tracker
        .unacked()
        .map((u) => `${u.source}[${u.partition}] ${u.count} from offset ${u.firstOffset}`)
        .join(', ');
      log(
        `pipeline waiting ${Math.round(stallReportMs / 1000)} s with no acknowledgement: unacknowledged ${partitions}; ` +
          `open batches ${batcher.openRecordCount} records; writes in flight ${writesInFlight}; ` +
          `dead letters buffered ${deadPositions.length}, flushing ${deadFlushing}; in-flight bytes ${gate.inFlight} of ${gate.limit}`,
      );
    };

    // Acks also come without a batch write to follow them (dead letters flushed late, e.g. after a
    // broker restart; redelivered records found already durable), so offsets are offered to the
    // source on a timer too, not only after each write: else the group's offsets could freeze.
    const housekeeping = setInterval(() => {
      if (deadPositions.length > 0) scheduleDeadFlush();
      commit().catch((error: unknown) => log(`commit failed: ${describeError(error)}`));
      reportIfStuck();
    }, 250);
    opened.push({ close: async () => clearInterval(housekeeping) });

    if (options.onProgress) {
      const interval = options.progressIntervalMs ?? 500;
      progressTimer = setInterval(() => {
        stats.elapsedMs = Date.now() - started;
        stats.inFlight = tracker.inFlight();
        options.onProgress!(stats);
      }, interval);
    }

    const write = async (batch: Batch): Promise<CatalogEntry | undefined> => {
      const tier = tiers.get(batch.tier as TierName)!;
      let fence: PartitionClaim[] = [];
      if (source.shared) {
        const claim = claims.get(partitionKey(batch.records[0]!.position));
        if (claim === undefined) return undefined; // revoked while queued: the new owner re-reads it
        fence = [claim];
      }
      try {
        return await writeBatch(batch, tier, catalog, fence, {
          signal,
          onRetry: (error, attempt, delayMs) => log(`retry ${attempt} in ${delayMs} ms: ${describeError(error)}`),
        });
      } catch (error) {
        if (!(error instanceof FencedError)) throw error;
        log(`${describeError(error)}: batch of ${batch.records.length} records dropped; the new owner re-reads them`);
        return undefined;
      }
    };

    const written$ = chunk$.pipe(
      map(classified),
      tap(handleDeadLetters),
      map((c) => c.routed),
      batchRecords(batcher, { maxAgeMs: source.bounded ? null : config.batch.max_age, coverage, onDurable: durable }),
      mergeMap(
        (batch) =>
          defer(async () => {
            writesInFlight++;
            const entry = await write(batch).finally(() => writesInFlight--);
            let sizes = 0;
            for (const record of batch.records) {
              if (entry !== undefined) tracker.ack(record.position);
              sizes += record.size;
            }
            gate.release(sizes);
            if (entry === undefined) {
              stats.batchesFenced++;
              return undefined;
            }
            stats.recordsWritten += entry.rows;
            stats.objects++;
            stats.bytesWritten += entry.bytes;
            const t = perTier.get(batch.tier as TierName)!;
            t.objects++;
            t.bytes += entry.bytes;
            t.memoryTypes.add(batch.memoryType);
            const tier = tiers.get(batch.tier as TierName)!;
            objectSizes.record(tier.name, sinkOf(tier, batch.kind).template, batch.partitionPath, entry.rows, batch.flushReason);
            await commit();
            return entry;
          }),
        config.batch.max_in_flight_batches,
      ),
      defaultIfEmpty(undefined),
    );
    await lastValueFrom(written$);
    scheduleDeadFlush();
    await deadFlush;
    await commit();

    stats.elapsedMs = Date.now() - started;
    stats.inFlight = tracker.inFlight();
    return {
      ...stats,
      tiers: [...tiers.values()].map((t) => {
        const { objects, bytes, memoryTypes } = perTier.get(t.name)!;
        return { name: t.name, uri: t.location, objects, bytes, memoryTypes: [...memoryTypes].sort(), layout: describeSink(t.primary) };
      }),
      catalog: catalog.location,
      deadLetter: deadLetterSink.location,
      complete: stats.inFlight === 0,
      warnings: objectSizes.warnings(),
    };
  } finally {
    if (progressTimer) clearInterval(progressTimer);
    for (const resource of opened.reverse()) {
      await resource.close().catch((error: unknown) => log(`close failed: ${describeError(error)}`));
    }
  }
}

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  bufferTime, concatMap, defer, EMPTY, endWith, filter, from, ignoreElements, interval, lastValueFrom, map, merge, mergeMap, share, Subject,
  takeUntil, tap, type Observable,
} from 'rxjs';
import { batchHeld, batchRows, firstPosition, heldCount, type HeldRows, type PipelineBatch } from '../core/batch.js';
import type { DeadLetterSink } from '../core/dead-letter.js';
import { describeError, FencedError } from '../core/errors.js';
import { failpoint } from '../core/failpoint.js';
import { redact } from '../core/redact.js';
import { retryOptions, retryPolicyOf, RetryNotices, withRetry, type RetryOptions } from '../core/retry.js';
import type { DeadLetter, DeadLetterReason, ObservationRecord } from '../core/record.js';
import type { RasterRecord } from '../core/raster.js';
import type { RawChunk, Source, SourceHooks, SourcePartitionRef } from '../core/source.js';
import type { Catalog, CatalogEntry, PartitionClaim } from '../catalog/catalog.js';
import { parseRecord } from '../records/parse.js';
import type { PendingTile, RoutedTile, SceneOutcome } from './raster-scenes.js';
import { batchRecords, type BatchEvent } from '../stages/batch-operator.js';
import { batchIdOfRange, type Routed } from '../stages/batcher.js';
import { compileClassifier, DEAD_LETTER } from '../stages/classify.js';
import { CoverageIndex } from '../stages/coverage.js';
import { AckLedger, type Admitted, type Held, type Settlement } from './ack-ledger.js';
import { createCatalog, createDeadLetterSink, createSource } from './connectors.js';
import { ObjectSizeReport } from './object-sizes.js';
import { TIERS, type PipelineConfig, type TierName } from './schema.js';
import { catalogTarget, closeTier, describeSink, openTier, sinkOf, writeBatch, type Tier } from './tier-writer.js';

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

type Log = (line: string) => void;

/** Dead letters go to the sink in groups: this many, or what came within this time. */
const DEAD_LETTER_GROUP = 1000;
const DEAD_LETTER_WAIT_MS = 250;
/** How often the stall watch looks at the acknowledgements. */
const STALL_WATCH_MS = 250;

const partitionKey = (p: { source: string; partition: number }) => `${p.partition}\u0000${p.source}`;

/**
 * Runs a pipeline: source → parse+validate → classify/route → batch → encode → tier → catalog
 * → ack → commit. Returns when a bounded source is exhausted or the signal asks to drain.
 */
export async function runPipeline(config: PipelineConfig, options: RunOptions = {}): Promise<RunSummary> {
  const started = Date.now();
  // Every line the run logs (its own, the source's, kafkajs's) reaches the caller with secrets masked.
  const log = options.log === undefined ? () => undefined : (line: string) => options.log!(redact(line));
  const notices = new RetryNotices(log);
  const opened = await openPipeline(config, options, log, notices);
  try {
    const run: Run = {
      config,
      opened,
      ledger: new AckLedger({ maxBytes: config.batch.max_in_flight_bytes, commit: (offsets) => opened.source.commit(offsets) }),
      coverage: new CoverageIndex(),
      claims: new Map(),
      revoked: new Map(),
      revocations: new Subject(),
      gauges: { openRecords: 0, writesInFlight: 0, deadLettersBuffered: 0, deadLettersFlushing: 0 },
      signal: options.signal ?? new AbortController().signal,
      log,
      notices,
    };
    const tally = new Tally(opened.tiers, started);
    opened.source.attach?.(partitionHooks(run));
    // Loaded only for raster sources: JSON pipelines never load the tile decoder, the CRS code or the COG writer.
    const raster = opened.source.payloadFormat === 'raster_tile' ? { ...(await import('./raster-scenes.js')), ...(await import('../records/raster.js')) } : undefined;
    const settled$ = flow(run, tally, raster).pipe(
      run.ledger.settleAll(),
      tap((outcome) => tally.count(outcome)),
    );
    await lastValueFrom(alongside(settled$, watch(run, tally, options)), { defaultValue: undefined });
    return tally.summary(run);
  } finally {
    await opened.close();
  }
}

interface Opened {
  catalog: Catalog;
  deadLetterSink: DeadLetterSink;
  tiers: Map<TierName, Tier>;
  source: Source;
  /** Closes everything, in the reverse order of opening. */
  close(): Promise<void>;
}

/**
 * Opens the catalog, the dead-letter sink, the tiers and the source; if one fails, closes what is
 * open. A catalog or tier unreachable at start (a retriable error) is waited for under its own
 * `retry` policy, told in the run log like any outage, rather than failing the run at once.
 */
async function openPipeline(config: PipelineConfig, options: RunOptions, log: Log, notices: RetryNotices): Promise<Opened> {
  const report = { notices, ...(options.signal === undefined ? {} : { signal: options.signal }) };
  const opened: { close(): Promise<void> }[] = [];
  const close = async () => {
    for (const resource of opened.reverse()) {
      await resource.close().catch((error: unknown) => log(`close failed: ${describeError(error)}`));
    }
  };
  try {
    const catalog = await withRetry(() => createCatalog(config.catalog), retryOptions(`catalog ${config.catalog.type}`, retryPolicyOf(config.catalog.retry), report));
    opened.push(catalog);
    const deadLetterSink = await createDeadLetterSink(config.dead_letter, log);
    opened.push(deadLetterSink);
    const tiers = new Map<TierName, Tier>();
    for (const name of TIERS) {
      const tierConfig = config.storage.tier_configs[name];
      if (tierConfig === undefined) continue;
      const backend = tierConfig.primary_backend;
      const tier = await withRetry(() => openTier(name, tierConfig, config, options.env), retryOptions(`${backend.type} tier ${name}`, retryPolicyOf(backend.retry), report));
      opened.push({ close: () => closeTier(tier) });
      for (const note of tier.notes) log(note);
      tiers.set(name, tier);
    }
    const source = options.source ?? (await createSource(config.source, log));
    opened.push(source);
    return { catalog, deadLetterSink, tiers, source, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** What one run shares between its parts. */
interface Run {
  config: PipelineConfig;
  opened: Opened;
  ledger: AckLedger;
  /** Catalogued objects of the owned partitions, for redeliveries. */
  coverage: CoverageIndex;
  /** Ownership of shared partitions: writes carry the claim and are refused once another worker claims. */
  claims: Map<string, PartitionClaim>;
  /** Per owned partition: aborted when it is taken away, so writes of its batches stop retrying (the new owner re-reads them). */
  revoked: Map<string, AbortController>;
  /** Partitions taken away, as events into the batching. */
  revocations: Subject<readonly SourcePartitionRef[]>;
  gauges: Gauges;
  signal: AbortSignal;
  log: Log;
  /** Retries of every connector, told once per outage (not per attempt) in the run log. */
  notices: RetryNotices;
}

/** withRetry's options for the catalog: its config's policy, the run's log and signal. */
function catalogRetry(run: Run): Partial<RetryOptions> {
  return retryOptions(catalogTarget(run.opened.catalog), retryPolicyOf(run.config.catalog.retry), run);
}

function deadLetterRetry(run: Run): Partial<RetryOptions> {
  return retryOptions(`dead letter ${run.config.dead_letter.type}`, retryPolicyOf(run.config.dead_letter.retry), run);
}

/** Where unacknowledged records wait, for the stall report. */
interface Gauges {
  openRecords: number;
  writesInFlight: number;
  deadLettersBuffered: number;
  deadLettersFlushing: number;
}

/** How held records ended: what the ledger settles and the summary counts. */
type Outcome = Settlement &
  (
    | { kind: 'written'; batch: PipelineBatch; entry: CatalogEntry }
    /** Refused or revoked before its write: its partition's new owner writes it. */
    | { kind: 'fenced'; batch: PipelineBatch }
    | { kind: 'abandoned'; batch: PipelineBatch }
    | { kind: 'already-durable'; records: HeldRows }
    | { kind: 'dead-lettered'; entries: DeadLetter[] }
  )
  | SceneOutcome;

interface Classified extends Admitted {
  routed: Routed[];
  deadLetters: DeadLetter[];
  /** Raster tile envelopes: decoded and assembled into scenes by the raster stream. */
  tiles: PendingTile[];
}

/** A dead letter holds its payload until the sink has it. */
const heldOf = (entry: DeadLetter): Held => ({ position: entry.position, size: entry.payload.length });

/** What claims, coverage, the ledger and the batching learn of rebalances. */
function partitionHooks(run: Run): SourceHooks {
  const { catalog, source } = run.opened;
  const workerId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  return {
    async assigned(partitions) {
      // A catalog restarting during a rebalance is waited for like any catalog call; the partitions' records wait meanwhile.
      if (source.shared) {
        for (const claim of await withRetry(() => catalog.claimPartitions(workerId, partitions), catalogRetry(run))) run.claims.set(partitionKey(claim), claim);
      }
      for (const p of partitions) {
        const ranges = await withRetry(() => catalog.coverage(p.source, p.partition, p.startOffset ?? 0), catalogRetry(run));
        run.coverage.load(p.source, p.partition, ranges, batchIdOfRange);
        if (ranges.length > 0) run.log(`${p.source}[${p.partition}]: ${ranges.length} catalogued objects at or after offset ${p.startOffset ?? 0}`);
      }
      // Dead letters are exactly once like objects: the sink learns which positions it already holds.
      await withRetry(() => run.opened.deadLetterSink.assigned(partitions), deadLetterRetry(run));
    },
    async revoked(partitions) {
      for (const p of partitions) {
        run.claims.delete(partitionKey(p));
        run.revoked.get(partitionKey(p))?.abort('its partition was revoked; the new owner re-reads it');
        run.revoked.delete(partitionKey(p));
        run.coverage.drop(p.source, p.partition);
      }
      run.ledger.revoke(partitions);
      run.opened.deadLetterSink.revoked(partitions);
      // Their open batches come out abandoned, unwritten: the new owner re-reads them.
      run.revocations.next(partitions);
    },
  };
}

/**
 * The stream: chunks read under the ledger's budget → parsed and routed → batched → written
 * (max_in_flight_batches at a time); dead letters grouped and flushed durably. Every record
 * read comes out in exactly one outcome.
 */
type RasterModules = typeof import('./raster-scenes.js') & typeof import('../records/raster.js');

function flow(run: Run, tally: Tally, raster: RasterModules | undefined): Observable<Outcome> {
  const { config, opened, ledger, gauges } = run;
  const routing: Routing = {
    tiles: raster !== undefined,
    classify: compileClassifier(config.classify),
    routeOf: (memoryType) => opened.tiers.get(config.routing.memory_types[memoryType] ?? config.routing.default)!,
    maxRecordBytes: config.source.max_record_bytes,
  };
  const admit = (fresh: RawChunk): Classified => {
    tally.read(fresh);
    return classify(fresh, routing);
  };
  const classified$ = from(ledger.intake(opened.source.chunks(run.signal), admit, run.signal)).pipe(share());
  const batched$ = classified$.pipe(
    map((c) => c.routed),
    batchRecords({
      limits: {
        maxRows: config.batch.max_rows,
        maxBytes: config.batch.max_bytes,
        maxAgeMs: opened.source.bounded ? null : config.batch.max_age,
        maxOpenBytes: config.batch.max_open_bytes,
      },
      coverage: run.coverage,
      revocations: run.revocations,
      onOpenRecords: (count) => (gauges.openRecords = count),
    }),
    share(),
  );
  const written$ = batched$.pipe(
    filter((e): e is Extract<BatchEvent, { kind: 'flushed' }> => e.kind === 'flushed'),
    map((e) => ticketOf(run, e.batch)),
    mergeMap((ticket) => write(run, ticket), config.batch.max_in_flight_batches),
  );
  const released$ = batched$.pipe(
    filter((e): e is Exclude<BatchEvent, { kind: 'flushed' }> => e.kind !== 'flushed'),
    map((e): Outcome =>
      e.kind === 'abandoned'
        ? { kind: 'abandoned', batch: e.batch, held: batchHeld(e.batch), durable: false }
        : { kind: 'already-durable', records: e.records, held: e.records, durable: true },
    ),
  );
  // Tiles that do not decode, or that no rule classifies, join the records' dead letters.
  const tileDeadLetters = new Subject<DeadLetter>();
  const scenes$ = raster === undefined ? EMPTY : classified$.pipe(
    mergeMap((c) => c.tiles),
    raster.assembleScenes({
      decode: (pending) => decodeTile(raster, pending, routing, (entry) => tileDeadLetters.next(entry)),
      deadLetter: (entry) => tileDeadLetters.next(entry),
      maxAgeMs: config.raster.max_age,
      maxOpenScenes: config.raster.max_open_scenes,
      memoryPerScene: config.raster.memory_per_scene,
      tmpDir: config.raster.tmp_dir,
      // A bounded source's end writes what is open (partial scenes too); a drain leaves them to be redelivered.
      writeAtEnd: () => opened.source.bounded && !run.signal.aborted,
      catalog: opened.catalog,
      unload: (held) => ledger.unload(held),
      retry: { catalog: retryPolicyOf(config.catalog.retry), notices: run.notices, signal: run.signal },
      claims: (positions) => {
        const claims = new Map<string, PartitionClaim>();
        for (const p of positions) {
          const claim = run.claims.get(partitionKey(p));
          if (claim !== undefined) claims.set(partitionKey(p), claim);
        }
        return [...claims.values()];
      },
      log: run.log,
    }),
    tap({ complete: () => tileDeadLetters.complete(), error: () => tileDeadLetters.complete() }),
    share(),
  );
  if (raster === undefined) tileDeadLetters.complete();
  const deadLettered$ = merge(classified$.pipe(mergeMap((c) => c.deadLetters)), tileDeadLetters).pipe(
    tap(() => gauges.deadLettersBuffered++),
    bufferTime(DEAD_LETTER_WAIT_MS, null, DEAD_LETTER_GROUP),
    filter((entries) => entries.length > 0),
    concatMap((entries) => flushDeadLetters(run, entries)),
  );
  return merge(written$, released$, scenes$, deadLettered$);
}

interface Routing {
  /** The source's payloads are raster tile envelopes (`payloadFormat: raster_tile`): decoded by the scene assembly. */
  tiles: boolean;
  classify: (record: ObservationRecord | RasterRecord) => string;
  routeOf: (memoryType: string) => Tier;
  maxRecordBytes: number;
}

/** The one place payloads are parsed: a chunk's records routed to their tier, and its dead letters. */
function classify(chunk: RawChunk, routing: Routing): Classified {
  const routed: Routed[] = [];
  const deadLetters: DeadLetter[] = [];
  const held: Held[] = [];
  const tiles: PendingTile[] = [];
  for (let i = 0; i < chunk.payloads.length; i++) {
    const payload = chunk.payloads[i]!;
    const position = chunk.positions[i]!;
    if (routing.tiles) {
      // Its own Held: the assembly releases its budget once the tile is in its scene's writer.
      const tileHeld = { position, size: payload.length };
      tiles.push({ payload, key: chunk.keys?.[i] ?? null, held: tileHeld });
      held.push(tileHeld);
      continue;
    }
    const parsed = parseRecord(payload, position, routing.maxRecordBytes);
    if (!parsed.ok) {
      deadLetters.push(parsed.deadLetter);
      held.push(heldOf(parsed.deadLetter));
      continue;
    }
    const record = parsed.record;
    if (chunk.keys) record.key = chunk.keys[i] ?? null;
    const memoryType = routing.classify(record);
    if (memoryType === DEAD_LETTER) {
      const entry: DeadLetter = {
        reason: 'unclassified',
        message: `no classify rule matches (kind=${record.kind}, dataset=${record.dataset}, variable=${record.variable ?? ''}) and classify.default is dead_letter`,
        position,
        payload,
      };
      deadLetters.push(entry);
      held.push(heldOf(entry));
      continue;
    }
    const tier = routing.routeOf(memoryType);
    const sink = sinkOf(tier, record.kind);
    // A format may refuse what the parser accepts (GeoJSON's validation): a dead letter, never part of a batch.
    const encoder = sink.kind === 'objects' ? sink.encoders[record.kind] : undefined;
    const refused = encoder?.refuse?.(record);
    if (refused !== undefined) {
      const entry: DeadLetter = { ...refused, message: `tier ${tier.name}: ${refused.message}`, position, payload };
      deadLetters.push(entry);
      held.push(heldOf(entry));
      continue;
    }
    const partitionPath = sink.template.expand(record, memoryType);
    routed.push(record.kind === 'point' && encoder?.pointColumns !== undefined
      ? { record, memoryType, tier: tier.name, partitionPath, columns: encoder.pointColumns }
      : { record, memoryType, tier: tier.name, partitionPath });
    held.push(record);
  }
  return { routed, deadLetters, held, tiles };
}

/** A tile envelope decoded and classified to its tier; a bad or unclassified one goes to `deadLetter`. */
async function decodeTile(raster: RasterModules, pending: PendingTile, routing: Routing, deadLetter: (entry: DeadLetter) => void): Promise<RoutedTile | undefined> {
  const decoded = await raster.decodeRasterTile(pending.payload, pending.held.position, { maxTileBytes: routing.maxRecordBytes });
  if ('deadLetter' in decoded) {
    deadLetter(decoded.deadLetter);
    return undefined;
  }
  const tile = decoded.record;
  tile.key = pending.key;
  const memoryType = routing.classify(tile);
  if (memoryType === DEAD_LETTER) {
    deadLetter({
      reason: 'unclassified',
      message: `no classify rule matches (kind=raster, dataset=${tile.dataset}, variable=${tile.variable}) and classify.default is dead_letter`,
      position: pending.held.position,
      payload: pending.payload,
    });
    return undefined;
  }
  const tier = routing.routeOf(memoryType);
  if (tier.raster === undefined && tier.rasterStore === undefined) {
    deadLetter({
      reason: 'unclassified',
      message: `memory type ${memoryType} of raster dataset ${tile.dataset} routes to tier ${tier.name}, which has no raster_backend and whose primary_backend writes neither COGs nor Zarr`,
      position: pending.held.position,
      payload: pending.payload,
    });
    return undefined;
  }
  return { tile, memoryType, tier, held: pending.held, payload: pending.payload };
}

/**
 * A flushed batch with what it was read under: its partition's claim (shared sources) and
 * revocation signal, taken when it is flushed, before it waits for a write slot. A batch whose
 * partition is taken away while it waits or is written is dropped, even if the partition comes
 * back meanwhile (a consumer restart): its records are read again under the new assignment.
 */
interface Ticket {
  batch: PipelineBatch;
  claim: PartitionClaim | undefined;
  revoked: AbortSignal;
}

function ticketOf(run: Run, batch: PipelineBatch): Ticket {
  const key = partitionKey(firstPosition(batch));
  let revoked = run.revoked.get(key);
  if (revoked === undefined) run.revoked.set(key, (revoked = new AbortController()));
  return { batch, claim: run.claims.get(key), revoked: revoked.signal };
}

/** Writes a batch to its tier and catalog, fenced by the partition's claim when the source is shared. */
async function write(run: Run, { batch, claim, revoked }: Ticket): Promise<Outcome> {
  const { catalog, source, tiers } = run.opened;
  const fenced = (): Outcome => ({ kind: 'fenced', batch, held: batchHeld(batch), durable: false });
  if (revoked.aborted || (source.shared && claim === undefined)) return fenced(); // revoked while queued
  run.gauges.writesInFlight++;
  try {
    const entry = await writeBatch(batch, tiers.get(batch.tier as TierName)!, catalog, claim === undefined ? [] : [claim], {
      catalog: retryPolicyOf(run.config.catalog.retry),
      notices: run.notices,
      // A drain stops the retries, and so does a revocation: the partition's new owner re-reads the batch.
      signal: AbortSignal.any([run.signal, revoked]),
    });
    return { kind: 'written', batch, entry, held: batchHeld(batch), durable: true };
  } catch (error) {
    if (!(error instanceof FencedError) && !revoked.aborted) throw error;
    run.log(`${describeError(error)}: batch of ${batchRows(batch)} records dropped; the new owner re-reads them`);
    return fenced();
  } finally {
    run.gauges.writesInFlight--;
  }
}

/** Dead letters are acknowledged only once the sink has them durably; a flush that keeps failing past dead_letter.retry fails the run. */
async function flushDeadLetters(run: Run, entries: DeadLetter[]): Promise<Outcome> {
  const sink = run.opened.deadLetterSink;
  run.gauges.deadLettersBuffered -= entries.length;
  run.gauges.deadLettersFlushing = entries.length;
  for (const entry of entries) sink.write(entry);
  // The sink keeps what it could not send, so a retry resends it (e.g. across a broker restart).
  await withRetry(() => sink.flush(), deadLetterRetry(run));
  // A crash here (durable, not yet acknowledged) redelivers these records: the kill -9 tests' point.
  failpoint('dead_letter.flushed');
  run.gauges.deadLettersFlushing = 0;
  return { kind: 'dead-lettered', entries, held: entries.map(heldOf), durable: true };
}

/**
 * Diagnostics beside the stream: progress callbacks, and a run whose acknowledgements stop
 * moving says why every stallReportMs: what is unacked from where, and what holds it.
 */
function watch(run: Run, tally: Tally, options: RunOptions): Observable<never> {
  const stallReportMs = options.stallReportMs ?? 30_000;
  const { ledger, gauges } = run;
  let mark = '';
  let markedAt = Date.now();
  const stall$ = interval(STALL_WATCH_MS).pipe(
    tap(() => {
      const inFlight = ledger.inFlight();
      const now = `${inFlight}/${tally.recordsRead}`;
      if (inFlight === 0 || now !== mark) {
        mark = now;
        markedAt = Date.now();
        return;
      }
      if (Date.now() - markedAt < stallReportMs) return;
      markedAt = Date.now();
      const partitions = ledger
        .unacked()
        .map((u) => `${u.source}[${u.partition}] ${u.count} from offset ${u.firstOffset}`)
        .join(', ');
      run.log(
        `pipeline waiting ${Math.round(stallReportMs / 1000)} s with no acknowledgement: unacknowledged ${partitions}; ` +
          `open batches ${gauges.openRecords} records; writes in flight ${gauges.writesInFlight}; ` +
          `dead letters buffered ${gauges.deadLettersBuffered}, flushing ${gauges.deadLettersFlushing}; ` +
          `in-flight bytes ${ledger.heldBytes} of ${ledger.maxBytes}` +
          (run.notices.current().length > 0 ? `; retrying ${run.notices.current().join(', ')}` : ''),
      );
    }),
  );
  const { onProgress } = options;
  const progress$ =
    onProgress === undefined ? EMPTY : interval(options.progressIntervalMs ?? 500).pipe(tap(() => onProgress(tally.stats(ledger))));
  return merge(stall$, progress$).pipe(ignoreElements());
}

/** `main$`, with `side$` running beside it until `main$` ends. */
function alongside<T>(main$: Observable<T>, side$: Observable<never>): Observable<T> {
  return defer(() => {
    const shared$ = main$.pipe(share());
    return merge(shared$, side$.pipe(takeUntil(shared$.pipe(ignoreElements(), endWith(null)))));
  });
}

/** The run's counts, from what was read and how it ended; and the summary. */
class Tally {
  private readonly counts: PipelineStats = {
    recordsRead: 0, recordsWritten: 0, recordsAlreadyDurable: 0, deadLettered: 0, deadLetterReasons: {}, objects: 0,
    bytesWritten: 0, payloadBytesRead: 0, elapsedMs: 0, inFlight: 0, batchesFenced: 0,
  };
  private readonly perTier = new Map<TierName, { objects: number; bytes: number; memoryTypes: Set<string> }>();
  private readonly objectSizes = new ObjectSizeReport();

  constructor(
    private readonly tiers: Map<TierName, Tier>,
    private readonly started: number,
  ) {
    for (const name of tiers.keys()) this.perTier.set(name, { objects: 0, bytes: 0, memoryTypes: new Set() });
  }

  get recordsRead(): number {
    return this.counts.recordsRead;
  }

  read(chunk: RawChunk): void {
    this.counts.recordsRead += chunk.positions.length;
    for (const payload of chunk.payloads) this.counts.payloadBytesRead += payload.length;
  }

  count(outcome: Outcome): void {
    const c = this.counts;
    switch (outcome.kind) {
      case 'written': {
        const { batch, entry } = outcome;
        // A Zarr store's row counts what the store holds, not what this append added.
        c.recordsWritten += batchRows(batch);
        c.objects++;
        c.bytesWritten += entry.bytes;
        const t = this.perTier.get(batch.tier as TierName)!;
        t.objects++;
        t.bytes += entry.bytes;
        t.memoryTypes.add(batch.memoryType);
        const tier = this.tiers.get(batch.tier as TierName)!;
        this.objectSizes.record(tier.name, sinkOf(tier, batch.kind).template, batch.partitionPath, entry.rows, batch.flushReason);
        return;
      }
      case 'scene': {
        const { entry, tier } = outcome;
        c.recordsWritten += heldCount(outcome.held);
        c.objects++;
        c.bytesWritten += entry.bytes;
        const t = this.perTier.get(tier.name)!;
        t.objects++;
        t.bytes += entry.bytes;
        t.memoryTypes.add(outcome.memoryType);
        return;
      }
      case 'scene-dropped':
        return;
      case 'tile-durable':
        c.recordsAlreadyDurable += heldCount(outcome.held);
        return;
      case 'fenced':
        c.batchesFenced++;
        return;
      case 'abandoned':
        return;
      case 'already-durable':
        c.recordsAlreadyDurable += heldCount(outcome.records);
        return;
      case 'dead-lettered':
        c.deadLettered += outcome.entries.length;
        for (const entry of outcome.entries) c.deadLetterReasons[entry.reason] = (c.deadLetterReasons[entry.reason] ?? 0) + 1;
        return;
    }
  }

  stats(ledger: AckLedger): PipelineStats {
    return { ...this.counts, deadLetterReasons: { ...this.counts.deadLetterReasons }, elapsedMs: Date.now() - this.started, inFlight: ledger.inFlight() };
  }

  summary(run: Run): RunSummary {
    const stats = this.stats(run.ledger);
    return {
      ...stats,
      tiers: [...this.tiers.values()].map((t) => {
        const { objects, bytes, memoryTypes } = this.perTier.get(t.name)!;
        return { name: t.name, uri: t.location, objects, bytes, memoryTypes: [...memoryTypes].sort(), layout: describeSink(t.primary) };
      }),
      catalog: run.opened.catalog.location,
      deadLetter: run.opened.deadLetterSink.location,
      complete: stats.inFlight === 0,
      warnings: this.objectSizes.warnings(),
    };
  }
}

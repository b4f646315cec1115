import { createHash, randomBytes } from 'node:crypto';
import type { AccessTier } from '../core/backend.js';
import type { Batch, ProvenanceRange } from '../core/batch.js';
import { ArchivedObjectError, describeError, EarthMemoryError, MigrationError, NotFoundError, ObjectLockedError } from '../core/errors.js';
import { failpoint } from '../core/failpoint.js';
import type { ObservationRecord, PointRecord } from '../core/record.js';
import { RetryNotices, withRetry, type RetryReport } from '../core/retry.js';
import { retryingCatalog } from '../catalog/retrying.js';
import { objectIdOf, type CatalogEntry, type ObjectKind, type CatalogRow, type MigrationJobRecord, type MigrationJobState, type MigrationStep, type MigrationStepState, type MigrationWritten } from '../catalog/catalog.js';
import { manifestDifferences, manifestOf, type Manifest } from '../core/manifest.js';
import { rehydrateStored, type OpenedStorage } from '../pipeline/read.js';
import type { TierName } from '../pipeline/schema.js';
import { decoderOf, encoderOf, indexEntry, mergeProvenance, rowsDigest, sinkOf, sinkRetry, storeBatch, withStoreLock, type Sink, type Tier } from '../pipeline/tier-writer.js';
import { objectKey } from '../stages/object-key.js';
import { resolveTime, type MigrationJobSpec } from './job.js';
import { Throttle } from './throttle.js';

/** Same format, codec and level: the object can be copied as its bytes. */
const sameEncoding = (encoder: { format: string; codec: { name: string; level: number | null } }, row: CatalogRow) =>
  encoder.format === row.format && encoder.codec.name === row.codec && encoder.codec.level === row.codecLevel;

/** The spec's `get_migration_status`, computed from the journal. */
export interface MigrationStatus {
  id: string;
  state: MigrationJobState;
  source_tier: string;
  destination_tier: string;
  plan_hash: string;
  /** Bytes of the objects done, of all planned: monotonic. */
  progress_percentage: number;
  bytes_migrated: number;
  bytes_total: number;
  objects_total: number;
  objects_done: number;
  objects_failed: number;
  /** At the rate so far; null before the first object is done or once the job has ended. */
  eta_seconds: number | null;
  errors: { tier: string; key: string; error: string }[];
  /** Sources that moved but may not be deleted yet (immutable), with until when. */
  retained: { tier: string; key: string; note: string }[];
  created_at: string;
  updated_at: string;
}

export interface PlannedMove {
  tier: string;
  key: string;
  bytes: number;
  rows: number;
  memory_type: string;
  destination_tier: string;
}

export interface MigrationPlan {
  id: string;
  source_tier: string;
  destination_tier: string;
  objects: PlannedMove[];
  bytes: number;
  /** Hash of what would move (each object's tier, key and sha256, and the job's options). */
  plan_hash: string;
}

export interface MigrationOptions {
  /** Relative times ("30 days ago") are evaluated against this (ms since the epoch). Default: now. */
  now?: number;
  /** Execute only if the plan still hashes to this (`earthmem migrate --plan HASH`). */
  planHash?: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
  onProgress?: (status: MigrationStatus) => void;
}

/** The steps each object goes through, in order, and where it ends for a job's options. */
const ORDER: MigrationStepState[] = ['planned', 'copied', 'verified', 'switched', 'source_deleted'];

function finalState(spec: MigrationJobSpec): MigrationStepState {
  if (!spec.metadata_update) return 'verified';
  return spec.delete_after_migration ? 'source_deleted' : 'switched';
}

const isDone = (spec: MigrationJobSpec, state: MigrationStepState) =>
  state === 'retained' || ORDER.indexOf(state) >= ORDER.indexOf(finalState(spec));

/**
 * Compaction: the selected objects, in groups to merge. Objects of one batch identity (memory
 * type, kind, dataset, partition path, source partition) follow each other in offset order; a
 * run of selected ones with no other object of that identity between them (in any tier) merges
 * into one object that holds every record of the identity in its one offset range, so coverage
 * and replays stay exact. Runs grow up to target_rows / target_bytes. In place (source tier =
 * destination tier), objects that would stay alone are not moved at all.
 */
async function planCompaction(storage: OpenedStorage, spec: MigrationJobSpec, selected: readonly CatalogRow[]): Promise<{ row: CatalogRow; group: string | null }[]> {
  const { target_rows: maxRows, target_bytes: maxBytes } = spec.compact!;
  const inPlace = spec.source_tier === spec.destination_tier;
  const identity = (r: CatalogRow) =>
    r.provenance.length === 1 ? [r.memoryType, r.kind, r.dataset, r.partitionPath, r.provenance[0]!.source, r.provenance[0]!.partition].join('\u0000') : undefined;
  const chosen = new Set(selected.map((r) => `${r.tier}\u0000${r.key}`));
  const byIdentity = new Map<string, CatalogRow[]>();
  for (const r of await storage.catalog.list()) {
    const id = identity(r);
    if (id !== undefined) byIdentity.set(id, [...(byIdentity.get(id) ?? []), r]);
  }
  const out: { row: CatalogRow; group: string | null }[] = [];
  const flush = (run: CatalogRow[]) => {
    if (run.length > 1) {
      const group = `merge-${createHash('sha256').update(run.map((r) => `${r.tier}/${r.key}`).join('\n')).digest('hex').slice(0, 16)}`;
      for (const row of run) out.push({ row, group });
    } else if (run.length === 1 && !inPlace) out.push({ row: run[0]!, group: null });
  };
  for (const rows of byIdentity.values()) {
    rows.sort((a, b) => a.provenance[0]!.firstOffset - b.provenance[0]!.firstOffset);
    let run: CatalogRow[] = [];
    for (const r of rows) {
      if (!chosen.has(`${r.tier}\u0000${r.key}`)) {
        flush(run);
        run = [];
        continue;
      }
      const rowsSoFar = run.reduce((n, x) => n + x.rows, 0);
      const bytesSoFar = run.reduce((n, x) => n + x.bytes, 0);
      if (run.length > 0 && (rowsSoFar + r.rows > maxRows || bytesSoFar + r.bytes > maxBytes)) {
        flush(run);
        run = [];
      }
      run.push(r);
    }
    flush(run);
  }
  for (const r of selected) if (identity(r) === undefined && !inPlace) out.push({ row: r, group: null });
  return out.sort((a, b) => (a.row.key < b.row.key ? -1 : a.row.key > b.row.key ? 1 : 0));
}

/** The catalog rows a job's criteria select in its source tier, by key. */
export async function selectObjects(storage: OpenedStorage, spec: MigrationJobSpec, nowMs: number): Promise<CatalogRow[]> {
  const c = spec.selection_criteria;
  const accessedBefore = c.last_accessed_before && resolveTime(c.last_accessed_before, nowMs);
  const createdBefore = c.created_before && resolveTime(c.created_before, nowMs);
  const timeBefore = c.time_before && resolveTime(c.time_before, nowMs) * 1000;
  const inTierBefore = c.in_tier_before && resolveTime(c.in_tier_before, nowMs);
  const reads = c.accessed_at_least && (await storage.catalog.recentAccesses(nowMs - c.accessed_at_least.windowMs));
  const rows = await storage.catalog.list({ tier: spec.source_tier });
  return rows.filter(
    (r) =>
      (accessedBefore === undefined || Date.parse(r.lastAccessedAt ?? r.createdAt) < accessedBefore) &&
      (createdBefore === undefined || Date.parse(r.createdAt) < createdBefore) &&
      (timeBefore === undefined || r.timeMaxUs < timeBefore) &&
      (inTierBefore === undefined || Date.parse(r.tierSince) < inTierBefore) &&
      (reads === undefined || (reads.get(objectIdOf(r.key)) ?? 0) >= c.accessed_at_least!.times) &&
      (c.memory_types === undefined || c.memory_types.includes(r.memoryType)) &&
      (c.datasets === undefined || c.datasets.includes(r.dataset)) &&
      (c.min_size === undefined || r.bytes >= c.min_size) &&
      (c.max_size === undefined || r.bytes <= c.max_size),
  );
}

function planHashOf(spec: MigrationJobSpec, rows: readonly CatalogRow[]): string {
  const { id: _id, max_bytes_per_second: _rate, concurrency: _concurrency, ...options } = spec;
  const objects = rows.map((r) => [r.tier, r.key, r.sha256]);
  return createHash('sha256').update(JSON.stringify([options.source_tier, options.destination_tier, options.validation, options.delete_after_migration, options.metadata_update, objects])).digest('hex').slice(0, 16);
}

/** What a job would move, without moving anything (`--dry-run`). */
export async function planMigration(storage: OpenedStorage, spec: MigrationJobSpec, nowMs = Date.now()): Promise<MigrationPlan> {
  checkTiers(storage, spec);
  const rows = await selectObjects(storage, spec, nowMs);
  return {
    id: spec.id ?? defaultJobId(spec, nowMs),
    source_tier: spec.source_tier,
    destination_tier: spec.destination_tier,
    objects: rows.map((r) => ({ tier: r.tier, key: r.key, bytes: r.bytes, rows: r.rows, memory_type: r.memoryType, destination_tier: spec.destination_tier })),
    bytes: rows.reduce((n, r) => n + r.bytes, 0),
    plan_hash: planHashOf(spec, rows),
  };
}

function defaultJobId(spec: MigrationJobSpec, nowMs: number): string {
  return `${spec.source_tier}-to-${spec.destination_tier}-${new Date(nowMs).toISOString().slice(0, 19).replace(/[-:]/g, '')}-${randomBytes(2).toString('hex')}`;
}

function checkTiers(storage: OpenedStorage, spec: MigrationJobSpec): void {
  for (const tier of [spec.source_tier, spec.destination_tier]) {
    if (!storage.tiers.has(tier)) {
      throw new MigrationError(`tier ${tier} is not configured in this pipeline file (storage.tier_configs has ${[...storage.tiers.keys()].join(', ')})`);
    }
  }
}

/**
 * Runs a MigrationJob: plans it (or resumes the job of the same id from its journal), then takes
 * each object through copy → verify → switch → delete-source, journaling every step in the catalog,
 * so a crash at any point resumes to the same end with nothing lost, shown twice or left behind.
 */
export async function executeMigration(opened: OpenedStorage, spec: MigrationJobSpec, options: MigrationOptions = {}): Promise<MigrationStatus> {
  checkTiers(opened, spec);
  const log = options.log ?? (() => undefined);
  // Every catalog call of the job waits out a catalog outage under catalog.retry, like the copies do under their backends'.
  const report: RetryReport = { notices: new RetryNotices(log), ...(options.signal === undefined ? {} : { signal: options.signal }) };
  const storage: OpenedStorage = { ...opened, catalog: retryingCatalog(opened.catalog, opened.catalogRetry, report) };
  const nowMs = options.now ?? Date.now();
  const id = spec.id ?? defaultJobId(spec, nowMs);
  const { catalog } = storage;
  let journal = await catalog.migrationJob(id);
  if (journal === undefined) {
    const rows = await selectObjects(storage, spec, nowMs);
    const planHash = planHashOf(spec, rows);
    if (options.planHash !== undefined && options.planHash !== planHash) {
      throw new MigrationError(`the catalog changed since plan ${options.planHash} was made (it now plans ${planHash}, ${rows.length} objects): run --dry-run again`);
    }
    const planned = spec.compact === undefined ? rows.map((row) => ({ row, group: null })) : await planCompaction(storage, spec, rows);
    await catalog.createMigrationJob(
      { id, spec: { ...spec, id, planned_at: new Date(nowMs).toISOString() }, planHash },
      planned.map(({ row, group }) => ({ sourceTier: row.tier, sourceKey: row.key, destinationTier: spec.destination_tier, bytes: row.bytes, group })),
    );
    journal = (await catalog.migrationJob(id))!;
    log(`migration ${id}: planned ${rows.length} objects, ${rows.reduce((n, r) => n + r.bytes, 0)} bytes, ${spec.source_tier} → ${spec.destination_tier} (plan ${planHash})`);
  } else {
    if (options.planHash !== undefined && options.planHash !== journal.job.planHash) {
      throw new MigrationError(`job ${id} was planned as ${journal.job.planHash}, not ${options.planHash}`);
    }
    if (journal.job.state === 'cancelled') throw new MigrationError(`job ${id} was cancelled; start a new job (another id)`);
    const open = journal.steps.filter((s) => !isDone(spec, s.state) && s.state !== 'failed').length;
    log(`migration ${id}: resuming, ${open} of ${journal.steps.length} objects still to do`);
  }
  const jobSpec = { ...spec, id };
  const source = storage.tiers.get(spec.source_tier)!;
  const destination = storage.tiers.get(spec.destination_tier)!;
  const throttle = spec.max_bytes_per_second === undefined ? undefined : new Throttle(spec.max_bytes_per_second);
  // Each backend's calls retry under its own config's `retry`; the log says once what is retried.
  const mover = new Mover(storage, jobSpec, source, destination, throttle, report, log);

  await catalog.setMigrationJobState(id, 'running');
  // What moves as one: an object, or the objects of a compaction group.
  const units = new Map<string, MigrationStep[]>();
  for (const step of journal.steps.filter((s) => !isDone(spec, s.state) && s.state !== 'failed')) {
    const unit = step.group ?? `\u0000${step.sourceTier}\u0000${step.sourceKey}`;
    units.set(unit, [...(units.get(unit) ?? []), step]);
  }
  const pending = [...units.values()];
  let next = 0;
  let cancelled = false;
  // Another process may cancel the job (`earthmem migrate cancel`): look at most once a second,
  // and report progress at the same pace (each look reads the whole journal).
  let lookedAt = 0;
  const look = async () => {
    if (Date.now() - lookedAt < 1_000) return;
    lookedAt = Date.now();
    const current = (await catalog.migrationJob(id))!;
    if (current.job.state === 'cancelled') cancelled = true;
    options.onProgress?.(migrationStatus(current));
  };
  const lane = async () => {
    while (next < pending.length && !cancelled && !options.signal?.aborted) {
      await look();
      // Another lane may have taken the last step while this one looked.
      if (cancelled || next >= pending.length) break;
      await mover.move(pending[next++]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(spec.concurrency, Math.max(1, pending.length)) }, lane));
  if (cancelled) await cancelMigration(storage, id);
  const after = (await catalog.migrationJob(id))!;
  const failed = after.steps.filter((s) => s.state === 'failed').length;
  const left = after.steps.filter((s) => !isDone(spec, s.state) && s.state !== 'failed' && s.state !== 'rehydrating').length;
  const state: MigrationJobState = cancelled
    ? 'cancelled'
    : after.steps.some((s) => s.state === 'rehydrating')
      ? 'rehydrating'
      : failed > 0 || left > 0
        ? options.signal?.aborted && failed === 0 ? 'planned' : 'failed'
        : 'completed';
  const error = [failed > 0 ? `${failed} objects failed` : '', left > 0 ? `${left} objects left to do (run the job again to resume)` : ''].filter(Boolean).join('; ');
  if (!cancelled) await catalog.setMigrationJobState(id, state, error || null);
  const status = migrationStatus((await catalog.migrationJob(id))!);
  log(
    `migration ${id}: ${status.state}: ${status.objects_done} of ${status.objects_total} objects, ${status.bytes_migrated} bytes` +
      (status.objects_failed > 0 ? `, ${status.objects_failed} failed` : '') +
      (status.retained.length > 0 ? `, ${status.retained.length} sources retained (immutable)` : ''),
  );
  return status;
}

/** The status of a job from its journal (`earthmem migrate status`). */
export function migrationStatus(journal: { job: MigrationJobRecord; steps: MigrationStep[] }): MigrationStatus {
  const { job, steps } = journal;
  const spec = job.spec as unknown as MigrationJobSpec;
  const done = steps.filter((s) => isDone(spec, s.state));
  const bytesTotal = steps.reduce((n, s) => n + s.bytes, 0);
  const bytesDone = done.reduce((n, s) => n + s.bytes, 0);
  const elapsed = (Date.parse(job.updatedAt) - Date.parse(job.createdAt)) / 1000;
  const running = job.state === 'running' || job.state === 'rehydrating';
  return {
    id: job.id,
    state: job.state,
    source_tier: String(spec.source_tier),
    destination_tier: String(spec.destination_tier),
    plan_hash: job.planHash,
    progress_percentage: bytesTotal === 0 ? (running ? 0 : 100) : Math.floor((bytesDone / bytesTotal) * 1000) / 10,
    bytes_migrated: bytesDone,
    bytes_total: bytesTotal,
    objects_total: steps.length,
    objects_done: done.length,
    objects_failed: steps.filter((s) => s.state === 'failed').length,
    eta_seconds: running && bytesDone > 0 && elapsed > 0 ? Math.round(((bytesTotal - bytesDone) / bytesDone) * elapsed) : null,
    errors: steps.filter((s) => s.state === 'failed').map((s) => ({ tier: s.sourceTier, key: s.sourceKey, error: s.note ?? 'failed' })),
    retained: steps.filter((s) => s.state === 'retained').map((s) => ({ tier: s.sourceTier, key: s.sourceKey, note: s.note ?? '' })),
    created_at: job.createdAt,
    updated_at: job.updatedAt,
  };
}

/**
 * Cancels a job: no new step starts, and copies that were made but not switched are deleted from
 * the destination (nothing orphaned). Objects already switched stay in their new tier.
 */
export async function cancelMigration(storage: OpenedStorage, id: string): Promise<MigrationStatus> {
  const journal = await storage.catalog.migrationJob(id);
  if (journal === undefined) throw new MigrationError(`no migration job ${id} in the catalog`);
  await storage.catalog.setMigrationJobState(id, 'cancelled');
  for (const step of journal.steps) {
    if (ORDER.indexOf(step.state) >= ORDER.indexOf('switched') || step.state === 'retained' || step.state === 'failed') continue;
    const [row] = await storage.catalog.list({ tier: step.sourceTier, key: step.sourceKey });
    const tier = storage.tiers.get(step.destinationTier as TierName);
    if (step.written !== null && row !== undefined && tier !== undefined) await sinkOf(tier, row.kind).delete(step.written.key);
    await storage.catalog.updateMigrationStep(id, step.sourceTier, step.sourceKey, 'failed', { note: step.written === null ? 'cancelled' : 'cancelled: the copy was deleted' });
  }
  return migrationStatus((await storage.catalog.migrationJob(id))!);
}


/**
 * The destination's backend when its writes land offline (`access_tier: archive`). An archived
 * copy cannot be read back to verify it, so the copy is written online (hot), verified there, and
 * moved to the archive tier before the switch.
 */
function offlineDestination(sink: Sink): { defaultAccessTier: AccessTier; setAccessTier(key: string, tier: AccessTier): Promise<void> } | undefined {
  if (sink.kind !== 'objects') return undefined;
  const { backend } = sink;
  if (backend.defaultAccessTier !== 'archive' || backend.setAccessTier === undefined) return undefined;
  return { defaultAccessTier: backend.defaultAccessTier, setAccessTier: (key, tier) => backend.setAccessTier!(key, tier) };
}

/** The one provenance range of consecutive objects of one batch identity (one source partition each). */
function mergedProvenance(rows: readonly CatalogRow[]): ProvenanceRange[] {
  const ranges = rows.map((r) => r.provenance[0]!);
  return [{
    source: ranges[0]!.source,
    partition: ranges[0]!.partition,
    firstOffset: Math.min(...ranges.map((p) => p.firstOffset)),
    lastOffset: Math.max(...ranges.map((p) => p.lastOffset)),
    count: ranges.reduce((n, p) => n + p.count, 0),
  }];
}

/** Switches into one Zarr store's catalog row, one at a time in this process (lanes run side by side). */
const switching = new Map<string, Promise<unknown>>();
async function oneAtATime(key: string, work: () => Promise<void>): Promise<void> {
  const run = (switching.get(key) ?? Promise.resolve()).catch(() => undefined).then(work);
  switching.set(key, run);
  try {
    await run;
  } finally {
    if (switching.get(key) === run) switching.delete(key);
  }
}

/** Reads of a raw copy go in chunks of this size, so a large object moves in bounded memory. */
const COPY_CHUNK_BYTES = 8 * 1024 * 1024;

/** Moves one object at a time through its steps, from where its journal says it is. */
class Mover {
  constructor(
    private readonly storage: OpenedStorage,
    private readonly spec: MigrationJobSpec & { id: string },
    private readonly source: Tier,
    private readonly destination: Tier,
    private readonly throttle: Throttle | undefined,
    private readonly retry: RetryReport,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * Takes one unit through its steps, from where the journal says it is: one object, or the
   * objects of a compaction group, which become one object (and move as one: the least advanced
   * member says where the group is, since a crash can fall between two members' journal updates).
   */
  async move(unit: readonly MigrationStep[]): Promise<void> {
    const { catalog } = this.storage;
    const rank = (s: MigrationStepState) => Math.max(0, ORDER.indexOf(s));
    let state = [...unit].sort((a, b) => rank(a.state) - rank(b.state))[0]!.state;
    let written = unit.find((s) => s.written !== null)?.written ?? undefined;
    let to: Sink | undefined;
    const target = finalState(this.spec);
    const mark = async (next: MigrationStepState, update: { written?: MigrationWritten; note?: string | null } = {}) => {
      for (const s of unit) await catalog.updateMigrationStep(this.spec.id, s.sourceTier, s.sourceKey, next, update);
    };
    const name = unit.length === 1 ? `${unit[0]!.sourceTier}/${unit[0]!.sourceKey}` : `a group of ${unit.length} objects (${unit[0]!.group})`;
    try {
      const rows = await Promise.all(unit.map(async (s) => (await catalog.list({ tier: s.sourceTier, key: s.sourceKey }))[0]));
      // After the switch the source rows are gone: the destination row is what the copy wrote.
      if (rows.some((r) => r === undefined) && rank(state) < rank('switched')) {
        throw new MigrationError(`${unit.filter((_, i) => rows[i] === undefined).map((s) => `${s.sourceTier}/${s.sourceKey}`).join(', ')} is no longer in the catalog`);
      }
      const present = rows.filter((r): r is CatalogRow => r !== undefined);
      const kind = present[0]?.kind ?? (await catalog.list({ tier: this.destination.name, key: written!.key }))[0]?.kind ?? 'point';
      const from = sinkOf(this.source, kind);
      to = sinkOf(this.destination, kind);
      if ((state === 'planned' || state === 'rehydrating') && rank(target) >= rank('copied')) {
        written = present.length === 1 ? await this.copy(present[0]!, from, to) : await this.merge(present, from, to);
        if (written === undefined) return; // waiting for an archive tier to rehydrate a source
        await mark((state = 'copied'), { written });
        failpoint('migration.copied');
      }
      if (state === 'copied') {
        if (this.spec.validation) {
          if (to.kind === 'store' && written!.manifest === null) await this.verifyAppend(present, from, to, written!);
          else await this.verify(present.reduce((n, r) => n + r.rows, 0), written!, to, kind);
        }
        await mark((state = 'verified'), { note: this.spec.validation ? null : 'not read back (validation: false)' });
        failpoint('migration.verified');
      }
      if (state === 'verified') {
        // Verified online: now into the archive tier the destination writes to (idempotent on a resume).
        const archive = offlineDestination(to);
        if (archive !== undefined) await withRetry(() => archive.setAccessTier(written!.key, archive.defaultAccessTier), sinkRetry(to, this.retry));
      }
      if (state === 'verified' && rank(target) >= rank('switched')) {
        const { createdAt: _c, updatedAt: _u, lastAccessedAt: _l, accessCount: _a, tierSince: _t, ...identity } = present[0]!;
        // A merged object: its content is the manifest's, its provenance the members' one range.
        const merged = present.length > 1 && written!.manifest !== null ? written!.manifest : undefined;
        const destination: CatalogEntry = {
          ...identity,
          ...(merged === undefined ? {} : { provenance: mergedProvenance(present), timeMinUs: merged.timeMinUs, timeMaxUs: merged.timeMaxUs, bbox: merged.bbox }),
          tier: this.destination.name,
          key: written!.key,
          backend: written!.backend,
          uri: written!.uri,
          format: written!.format,
          codec: written!.codec,
          codecLevel: written!.codecLevel,
          bytes: written!.bytes,
          rows: written!.rows,
          sha256: written!.sha256,
          state: 'committed',
        };
        if (to.kind === 'store' && written!.manifest === null) {
          // An append: the store's one row takes this object's records in, from the store as it is now.
          const store = to;
          await oneAtATime(`${this.destination.name}\u0000${destination.key}`, async () => {
            const [existing] = await catalog.list({ tier: this.destination.name, key: destination.key });
            const now = await withRetry(() => store.zarr.state(destination.key), sinkRetry(store, this.retry));
            Object.assign(destination, {
              // The root is `{memory type}/{partition}.zarr`.
              partitionPath: existing?.partitionPath ?? destination.key.slice(destination.key.indexOf('/') + 1, -'.zarr'.length),
              rows: now.observations, bytes: now.bytes, sha256: now.sha256,
              provenance: existing === undefined ? destination.provenance : mergeProvenance(existing.provenance, destination.provenance),
              timeMinUs: Math.min(existing?.timeMinUs ?? Infinity, destination.timeMinUs),
              timeMaxUs: Math.max(existing?.timeMaxUs ?? -Infinity, destination.timeMaxUs),
              bbox: existing === undefined ? destination.bbox : [Math.min(existing.bbox[0], destination.bbox[0]), Math.min(existing.bbox[1], destination.bbox[1]), Math.max(existing.bbox[2], destination.bbox[2]), Math.max(existing.bbox[3], destination.bbox[3])],
            });
            await catalog.switchTier(this.spec.id, present.map((r) => ({ tier: r.tier, key: r.key, sha256: r.sha256 })), destination);
          });
        } else await catalog.switchTier(this.spec.id, present.map((r) => ({ tier: r.tier, key: r.key, sha256: r.sha256 })), destination);
        state = 'switched';
        failpoint('migration.switched');
        await indexEntry(this.destination, destination, this.retry);
        for (const r of present) {
          this.source.indexBacklog?.forget(r.key);
          await this.source.index?.remove(r.key);
        }
      }
      if (state === 'switched' && target === 'source_deleted') {
        for (const s of unit) {
          if (s.state === 'source_deleted' || s.state === 'retained') continue;
          try {
            // A move that only re-encoded in place would delete its own copy.
            if (!(s.sourceTier === this.destination.name && s.sourceKey === written!.key)) await withRetry(() => from.delete(s.sourceKey), sinkRetry(from, this.retry));
            await catalog.updateMigrationStep(this.spec.id, s.sourceTier, s.sourceKey, 'source_deleted');
          } catch (error) {
            if (!(error instanceof ObjectLockedError)) throw error;
            await catalog.updateMigrationStep(this.spec.id, s.sourceTier, s.sourceKey, 'retained', { note: error.message });
            this.log(`migration ${this.spec.id}: ${s.sourceKey} moved; its source stays until its retention ends: ${error.message}`);
          }
        }
      }
    } catch (error) {
      const reason = describeError(error);
      const retriable = error instanceof EarthMemoryError && error.retriable;
      this.log(`migration ${this.spec.id}: ${name} ${retriable ? 'stopped' : 'failed'} at ${state}: ${reason}`);
      if (retriable || rank(state) >= rank('switched')) {
        // An outage, or a switched object whose source deletion is left: the steps stay where they
        // are (with why), and a rerun of the job goes on from there.
        for (const s of unit) {
          if (s.state !== 'source_deleted' && s.state !== 'retained') {
            await catalog.updateMigrationStep(this.spec.id, s.sourceTier, s.sourceKey, state, { note: `${retriable ? 'retriable' : 'failed'}: ${reason}` });
          }
        }
        return;
      }
      // Not switched yet: the copy (if any) goes, the sources stay as they were.
      // (An append into a Zarr store is not undone: the store holds other objects' data, and the cells are the source's own values.)
      if (written !== undefined && to !== undefined && !(to.kind === 'store' && written.manifest === null)) await to.delete(written.key).catch(() => undefined);
      await mark('failed', { note: `${state}: ${reason}` });
    }
  }

  /** Several consecutive objects of one batch identity → one object at the destination (compaction). */
  private merge(rows: readonly CatalogRow[], from: Sink, to: Sink): Promise<MigrationWritten | undefined> {
    return this.oneInMemory(async () => {
      const records: ObservationRecord[] = [];
      for (const row of rows) {
        const part = await this.readRecords(row, from);
        if (part === undefined) return undefined;
        records.push(...part);
      }
      const bytes = rows.reduce((n, r) => n + r.bytes, 0);
      await this.throttle?.take(bytes);
      const first = rows[0]!;
      const batch: Batch = {
        memoryType: first.memoryType, tier: this.destination.name, dataset: first.dataset, kind: first.kind as Batch['kind'], partitionPath: first.partitionPath,
        records, bytes, flushReason: 'end',
      };
      const { entry, manifest } = await storeBatch(batch, this.destination, mergedProvenance(rows), {
        retry: this.retry,
        contentHash: true,
        ...(offlineDestination(to) ? { accessTier: 'hot' as const } : {}),
      });
      failpoint('migration.put');
      const expected = rows.reduce((n, r) => n + r.rows, 0);
      if (manifest.rows !== expected) throw new MigrationError(`the merged object holds ${manifest.rows} rows, its sources ${expected}`);
      return {
        key: entry.key, backend: entry.backend, uri: entry.uri, format: entry.format, codec: entry.codec, codecLevel: entry.codecLevel,
        bytes: entry.bytes, rows: entry.rows, sha256: entry.sha256, manifest,
      };
    });
  }

  /** Writes the object at the destination, re-encoded to its format and codec unless they match. */
  private async copy(row: CatalogRow, from: Sink, to: Sink): Promise<MigrationWritten | undefined> {
    if (from.kind === 'store' && to.kind === 'store') return this.storeCopy(row, from, to);
    if (to.kind === 'store') return this.appendCopy(row, from, to);
    if (from.kind === 'store') throw new MigrationError(`${row.key}: a Zarr store moves only to another Zarr tier (reading a store back into ${to.kind} is not built yet); the store stays in ${row.tier}`);
    if (to.kind === 'objects' && from.kind === 'objects' && sameEncoding(encoderOf(to, row.kind), row)) {
      return this.rawCopy(row, from, to);
    }
    return this.oneInMemory(async () => {
      const records = await this.readRecords(row, from);
      if (records === undefined) return undefined;
      await this.throttle?.take(row.bytes);
      const batch: Batch = {
        memoryType: row.memoryType, tier: this.destination.name, dataset: row.dataset, kind: row.kind as Batch['kind'], partitionPath: row.partitionPath,
        records, bytes: row.bytes, flushReason: 'end',
      };
      const { entry, manifest } = await storeBatch(batch, this.destination, row.provenance, {
        retry: this.retry,
        contentHash: true,
        ...(offlineDestination(to) ? { accessTier: 'hot' as const } : {}),
      });
      failpoint('migration.put');
      const unlike = manifestDifferences({ ...manifest, rows: row.rows, timeMinUs: row.timeMinUs, timeMaxUs: row.timeMaxUs, bbox: row.bbox }, manifest);
      if (unlike.length > 0) throw new MigrationError(`the source ${row.key} does not hold what its catalog row says: ${unlike.join('; ')}`);
      return {
        key: entry.key, backend: entry.backend, uri: entry.uri, format: entry.format, codec: entry.codec, codecLevel: entry.codecLevel,
        bytes: entry.bytes, rows: entry.rows, sha256: entry.sha256, manifest,
      };
    });
  }

  /**
   * Decoding and re-encoding hold a whole object's records in memory (about 1 KB per record):
   * one object at a time, whatever the job's concurrency, so memory stays bounded by the largest
   * object. Streamed copies run concurrently.
   */
  private inMemory: Promise<unknown> = Promise.resolve();
  private oneInMemory<T>(work: () => Promise<T>): Promise<T> {
    const run = this.inMemory.then(work, work);
    this.inMemory = run.catch(() => undefined);
    return run;
  }

  /** The same bytes to the destination, streamed in chunks: bounded memory whatever the object's size. */
  private async rawCopy(row: CatalogRow, source: Extract<Sink, { kind: 'objects' }>, to: Extract<Sink, { kind: 'objects' }>): Promise<MigrationWritten | undefined> {
    const key = objectKey(row.memoryType, row.partitionPath, row.provenance, encoderOf(to, row.kind).extension);
    const digest = createHash('sha256');
    const throttle = this.throttle;
    const from = source.backend;
    const readRetry = sinkRetry(source, this.retry);
    async function* chunks(): AsyncIterable<Uint8Array> {
      for (let offset = 0; offset < row.bytes; offset += COPY_CHUNK_BYTES) {
        const length = Math.min(COPY_CHUNK_BYTES, row.bytes - offset);
        await throttle?.take(length);
        const chunk = await withRetry(() => from.getRange(row.key, offset, length), readRetry);
        digest.update(chunk);
        yield chunk;
        // The put has taken a chunk and not finished: a crash here interrupts it midway.
        failpoint('migration.copying');
      }
    }
    try {
      const staging = offlineDestination(to) ? { accessTier: 'hot' as const } : {};
      // A streamed body cannot be sent twice: no retry of the put itself (each chunk's read retries; a rerun resumes).
      await withRetry(() => to.backend.put(key, chunks(), { contentType: encoderOf(to, row.kind).contentType, ...staging }), sinkRetry(to, this.retry, { maxElapsedMs: 0 }));
    } catch (error) {
      if (error instanceof ArchivedObjectError) return this.rehydrate(row, error);
      throw error;
    }
    const sha256 = digest.digest('hex');
    if (sha256 !== row.sha256) throw new MigrationError(`the source ${row.key} reads back with sha256 ${sha256}, not the catalogued ${row.sha256}`);
    failpoint('migration.put');
    return {
      key, backend: to.backend.type, uri: to.backend.uri(key), format: row.format, codec: row.codec, codecLevel: row.codecLevel,
      bytes: row.bytes, rows: row.rows, sha256, manifest: null,
    };
  }

  private async readRecords(row: CatalogRow, from: Sink): Promise<ObservationRecord[] | undefined> {
    try {
      if (from.kind === 'records') return await withRetry(() => from.store.readRecords(row.key), sinkRetry(from, this.retry));
      if (from.kind === 'store') throw new MigrationError(`${row.key} is a Zarr store: its records are not read back yet`);
      const bytes = await withRetry(() => from.backend.get(row.key), sinkRetry(from, this.retry));
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      if (sha256 !== row.sha256) throw new MigrationError(`the source ${row.key} reads back with sha256 ${sha256}, not the catalogued ${row.sha256}`);
      // Files keep no per-record source offsets: rows made from an object (objects → rows) get the
      // object's first offset plus their row index, unique and in storage order.
      const first = row.provenance[0];
      const records = decoderOf(from, row.kind, row.format).decode(bytes, { source: first?.source ?? row.key, partition: first?.partition ?? 0 }, row.key).records;
      for (const r of records) r.position.offset += first?.firstOffset ?? 0;
      return records;
    } catch (error) {
      if (error instanceof ArchivedObjectError) return this.rehydrate(row, error);
      throw error;
    }
  }

  /** The source is in an offline archive tier: ask for it back and wait (a rerun resumes). */
  private async rehydrate(row: CatalogRow, cause: ArchivedObjectError): Promise<undefined> {
    await rehydrateStored(this.storage, row, 'hot').catch((error: unknown) => {
      // A rehydration asked for earlier is still pending: the wait goes on.
      if (!/pending|being rehydrated|already/i.test(String((error as Error).message))) throw error;
    });
    await this.storage.catalog.updateMigrationStep(this.spec.id, row.tier, row.key, 'rehydrating', { note: `rehydrating from the archive tier: ${cause.message}` });
    this.log(`migration ${this.spec.id}: ${row.key} is archived; rehydration requested, run the job again once it is online`);
    return undefined;
  }

  /**
   * Reads the copy back from the destination: a raw copy must have the source's bytes (streamed
   * sha256); a re-encoded one must describe the same content as what was written (the manifests:
   * keys and checksums, rows, ids, time range, bbox, columns).
   */
  /**
   * Objects or rows into a Zarr tier: their records are appended to the store of their partition
   * there (the destination's file_organization). The written key is the store's root; `manifest`
   * null marks an append (nothing of its own to delete on failure: the store holds other data).
   */
  private async appendCopy(row: CatalogRow, from: Sink, to: Extract<Sink, { kind: 'store' }>): Promise<MigrationWritten | undefined> {
    return this.oneInMemory(async () => {
      const records = await this.readRecords(row, from);
      if (records === undefined) return undefined;
      await this.throttle?.take(row.bytes);
      const { partitionPath, points } = this.storePartition(row, records, to);
      const batch: Batch = { memoryType: row.memoryType, tier: this.destination.name, dataset: row.dataset, kind: 'point', partitionPath, records: points, bytes: row.bytes, flushReason: 'end' };
      const appended = await withStoreLock(to, this.storage.catalog, to.zarr.rootOf(batch.memoryType, batch.partitionPath), { maxElapsedMs: 0 }, () => withRetry(() => to.zarr.append(batch), sinkRetry(to, this.retry)), { shared: true, log: this.log });
      failpoint('migration.put');
      return {
        key: appended.root, backend: to.backend.type, uri: to.uri(appended.root), format: 'zarr', codec: to.zarr.codec.name, codecLevel: to.zarr.codec.level,
        bytes: appended.bytes, rows: appended.observations, sha256: appended.sha256, manifest: null,
      };
    });
  }

  /** The destination partition of an object's records: one Zarr store holds one partition. */
  private storePartition(row: CatalogRow, records: ObservationRecord[], to: Extract<Sink, { kind: 'store' }>): { partitionPath: string; points: PointRecord[] } {
    if (row.kind !== 'point') throw new MigrationError(`${row.key}: ${row.kind} records do not go into Zarr stores (point time series only); it stays in ${row.tier}`);
    const paths = new Set(records.map((r) => to.template.expand(r, row.memoryType)));
    if (paths.size !== 1) throw new MigrationError(`${row.key}: its records fall in ${paths.size} partitions of tier ${this.destination.name} (${[...paths].slice(0, 3).join(', ')}…); a Zarr store holds one: it stays in ${row.tier}`);
    return { partitionPath: [...paths][0]!, points: records as PointRecord[] };
  }

  /** An append into a store verifies by reading every record's cell back. */
  private async verifyAppend(rows: readonly CatalogRow[], from: Sink, to: Extract<Sink, { kind: 'store' }>, written: MigrationWritten): Promise<void> {
    await this.oneInMemory(async () => {
      for (const row of rows) {
        const records = await this.readRecords(row, from);
        if (records === undefined) this.fail(written, `${row.key} cannot be read back to compare`);
        const { partitionPath, points } = this.storePartition(row, records!, to);
        const problems = await withRetry(() => to.zarr.differences(row.memoryType, partitionPath, points), sinkRetry(to, this.retry));
        if (problems.length > 0) this.fail(written, problems.slice(0, 5).join('; '));
      }
    });
  }

  /** A Zarr store as a unit: every key copied (re-compressed when the codecs differ), metadata last. */
  private async storeCopy(row: CatalogRow, from: Extract<Sink, { kind: 'store' }>, to: Extract<Sink, { kind: 'store' }>): Promise<MigrationWritten> {
    const { copyStore } = await import('../encoders/zarr/move.js');
    if ((await this.storage.catalog.list({ tier: this.destination.name, key: row.key })).length > 0) {
      throw new MigrationError(`${row.key}: tier ${this.destination.name} already has a store at this key (stores are not merged)`);
    }
    await this.throttle?.take(row.bytes);
    const copied = await withRetry(() => copyStore(from.zarr, to.zarr, row.key), sinkRetry(to, this.retry));
    const manifest: Manifest = { keys: copied.keys, rows: row.rows, bbox: row.bbox, timeMinUs: row.timeMinUs, timeMaxUs: row.timeMaxUs, schema: [], contentHash: null };
    return {
      key: row.key, backend: to.backend.type, uri: to.uri(row.key), format: 'zarr', codec: to.zarr.codec.name, codecLevel: to.zarr.codec.level,
      bytes: copied.keys.reduce((n, k) => n + k.bytes, 0), rows: row.rows, sha256: copied.sha256, manifest,
    };
  }

  private verify(rows: number, written: MigrationWritten, to: Sink, kind: ObjectKind): Promise<void> {
    if (to.kind === 'store') return this.verifyStoreCopy(written, to);
    return written.manifest === null ? this.verifyBytes(written, to) : this.oneInMemory(() => this.verifyManifest(rows, written.manifest!, written, to, kind));
  }

  private async verifyStoreCopy(written: MigrationWritten, to: Extract<Sink, { kind: 'store' }>): Promise<void> {
    const { verifyStore } = await import('../encoders/zarr/move.js');
    const problems = await withRetry(() => verifyStore(to.zarr, written.key, written.manifest!.keys), sinkRetry(to, this.retry));
    if (problems.length > 0) this.fail(written, problems.slice(0, 5).join('; '));
  }

  private fail(written: MigrationWritten, what: string): never {
    throw new MigrationError(`the copy at ${this.destination.name}/${written.key} does not verify: ${what}; the source is left as it was`);
  }

  private async verifyBytes(written: MigrationWritten, to: Sink): Promise<void> {
    if (to.kind !== 'objects') throw new MigrationError('a raw copy goes to objects only');
    const digest = createHash('sha256');
    try {
      for (let offset = 0; offset < written.bytes; offset += COPY_CHUNK_BYTES) {
        digest.update(await withRetry(() => to.backend.getRange(written.key, offset, Math.min(COPY_CHUNK_BYTES, written.bytes - offset)), sinkRetry(to, this.retry)));
      }
    } catch (error) {
      if (error instanceof NotFoundError) this.fail(written, 'it is missing');
      throw error;
    }
    const sha256 = digest.digest('hex');
    if (sha256 !== written.sha256) this.fail(written, `sha256 ${sha256}, expected ${written.sha256}`);
  }

  private async verifyManifest(rows: number, expected: Manifest, written: MigrationWritten, to: Sink, kind: ObjectKind): Promise<void> {
    let actual: Manifest;
    try {
      if (to.kind === 'records') {
        const records = await withRetry(() => to.store.readRecords(written.key), sinkRetry(to, this.retry));
        actual = manifestOf(records, [], [{ key: written.key, bytes: written.bytes, sha256: rowsDigest(records) }]);
      } else if (to.kind === 'store') {
        throw new MigrationError(`${written.key}: Zarr stores are not verified as copies yet`);
      } else {
        const bytes = await withRetry(() => to.backend.get(written.key), sinkRetry(to, this.retry));
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        if (sha256 !== written.sha256) this.fail(written, `sha256 ${sha256}, expected ${written.sha256}`);
        const decoded = decoderOf(to, kind, written.format).decode(bytes, { source: written.key, partition: 0 }, written.key);
        actual = manifestOf(decoded.records, decoded.schema, [{ key: written.key, bytes: bytes.byteLength, sha256 }]);
      }
    } catch (error) {
      if (error instanceof NotFoundError) this.fail(written, 'it is missing');
      throw error;
    }
    const unlike = manifestDifferences(expected, actual);
    if (actual.rows !== rows && !unlike.some((u) => u.includes('rows'))) unlike.push(`${actual.rows} rows, not ${rows}`);
    if (unlike.length > 0) this.fail(written, unlike.join('; '));
  }
}

import { randomBytes } from 'node:crypto';
import { isDeadOwner, leaseOwner } from '../catalog/lease-owner.js';
import { objectIdOf, type AgingRun, type CatalogRow, type MigrationJobRecord } from '../catalog/catalog.js';
import { resolveTime, type SelectionCriteria } from '../config/selection.js';
import type { OpenedStorage } from '../pipeline/read.js';
import { TIERS, type AgingConfig, type AgingPolicy, type TierName } from '../pipeline/schema.js';
import type { MigrationJobSpec } from './job.js';
import { executeMigration, migrationStatus, planMigration, selectObjects, type MigrationStatus, type PlannedMove } from './migration.js';

/** The catalog lease that makes one planner run at a time, whatever the number of workers. */
export const AGING_LEASE = 'aging';
/** A pass renews its lease this often; a planner that died frees it after LEASE_TTL. */
const LEASE_TTL_MS = 60_000;
const LEASE_RENEW_MS = 20_000;

export interface PolicyOutcome {
  policy: string;
  source_tier: string;
  destination_tier: string;
  job: string | null;
  planned: number;
  moved_objects: number;
  moved_bytes: number;
  failed: number;
  note: string;
  /** With --dry-run: what would move. */
  objects?: PlannedMove[];
}

export interface AgingPass {
  at: string;
  /** False when another planner holds the lease (nothing was done). */
  ran: boolean;
  note: string;
  policies: PolicyOutcome[];
}

export interface AgingOptions {
  /** Relative times are evaluated against this (ms since the epoch). Default: now. */
  now?: number;
  dryRun?: boolean;
  log?: (line: string) => void;
  /** Who the lease is taken for; default host-pid-random. */
  owner?: string;
}

const jobPrefix = (policy: AgingPolicy, source: string) => `aging.${policy.name}.${source}.`;

/**
 * The order a pass runs policies in: promotions (towards hot) first, then the rest as written, so
 * a demotion never takes an object that is due to come back up (the minimum residence then keeps
 * it where it was promoted to).
 */
function passOrder(policies: readonly AgingPolicy[]): { policy: AgingPolicy; source: TierName }[] {
  const steps = policies.flatMap((policy) => policy.source_tier.map((source) => ({ policy, source })));
  const up = (s: { policy: AgingPolicy; source: TierName }) => TIERS.indexOf(s.policy.destination_tier) < TIERS.indexOf(s.source);
  return [...steps.filter(up), ...steps.filter((s) => !up(s))];
}

function jobSpec(aging: AgingConfig, policy: AgingPolicy, source: TierName, id: string): MigrationJobSpec {
  return {
    id,
    source_tier: source,
    destination_tier: policy.destination_tier,
    // The minimum residence, on the catalog's own clock (not --now, which shifts data ages): an
    // object that a pass moved, or that was just written, stays in its tier for a while.
    selection_criteria: { in_tier_before: { at: Date.now() - aging.min_residence }, ...policy.selection_criteria },
    validation: policy.validation,
    delete_after_migration: policy.delete_after_migration,
    metadata_update: true,
    ...(aging.max_bytes_per_second === undefined ? {} : { max_bytes_per_second: aging.max_bytes_per_second }),
    concurrency: policy.concurrency,
    ...(policy.compact === undefined ? {} : { compact: policy.compact }),
  };
}

/**
 * One pass of the aging stream: under the catalog lease, each policy's unfinished jobs are
 * resumed, then a new MigrationJob moves what its criteria select now. Every policy reports what
 * it planned and did, and why when it moved nothing. A pass never reports work it did not do.
 */
export async function runAgingPass(storage: OpenedStorage, aging: AgingConfig, options: AgingOptions = {}): Promise<AgingPass> {
  const now = options.now ?? Date.now();
  const at = new Date(now).toISOString();
  const log = options.log ?? (() => undefined);
  const { catalog } = storage;
  if (options.dryRun) {
    const policies: PolicyOutcome[] = [];
    for (const { policy, source } of passOrder(aging.policies)) {
      const plan = await planMigration(storage, jobSpec(aging, policy, source, `${jobPrefix(policy, source)}dry-run`), now);
      policies.push({
        policy: policy.name, source_tier: source, destination_tier: policy.destination_tier, job: null, planned: plan.objects.length,
        moved_objects: 0, moved_bytes: 0, failed: 0, objects: plan.objects,
        note: plan.objects.length > 0 ? `would move ${plan.objects.length} objects, ${plan.bytes} bytes (plan ${plan.plan_hash})` : await whyNothing(storage, aging, policy, source, now),
      });
    }
    return { at, ran: true, note: 'dry run: nothing moved', policies };
  }

  const owner = options.owner ?? leaseOwner();
  if (!(await catalog.acquireLease(AGING_LEASE, owner, LEASE_TTL_MS, await deadOwner(storage)))) {
    const held = await catalog.lease(AGING_LEASE);
    const note = `another planner holds the aging lease${held ? ` (${held.owner}, until ${held.expiresAt})` : ''}: this pass did nothing`;
    log(`aging: ${note}`);
    return { at, ran: false, note, policies: [] };
  }
  let lost: unknown;
  const renew = setInterval(() => {
    catalog.acquireLease(AGING_LEASE, owner, LEASE_TTL_MS).catch((error: unknown) => (lost ??= error));
  }, LEASE_RENEW_MS);
  const policies: PolicyOutcome[] = [];
  try {
    for (const { policy, source } of passOrder(aging.policies)) {
      const outcome = await runPolicy(storage, aging, policy, source, now, log);
      policies.push(outcome);
      await catalog.recordAgingRun({
        policy: policy.name, sourceTier: source, destinationTier: policy.destination_tier, ranAt: at, jobId: outcome.job, planned: outcome.planned,
        movedObjects: outcome.moved_objects, movedBytes: outcome.moved_bytes, failed: outcome.failed, note: outcome.note,
      });
      log(`aging ${policy.name} (${source} → ${policy.destination_tier}): ${outcome.note}`);
      if (lost !== undefined) throw lost;
    }
  } finally {
    clearInterval(renew);
    await catalog.releaseLease(AGING_LEASE, owner).catch(() => undefined);
  }
  return { at, ran: true, note: `${policies.reduce((n, p) => n + p.moved_objects, 0)} objects moved`, policies };
}

/** The lease's owner when it is a planner of this host whose process is gone (killed): its lease need not run out. */
async function deadOwner(storage: OpenedStorage): Promise<string | undefined> {
  const held = await storage.catalog.lease(AGING_LEASE);
  return isDeadOwner(held?.owner) ? held!.owner : undefined;
}

async function runPolicy(storage: OpenedStorage, aging: AgingConfig, policy: AgingPolicy, source: TierName, now: number, log: (line: string) => void): Promise<PolicyOutcome> {
  const prefix = jobPrefix(policy, source);
  const base = { policy: policy.name, source_tier: source, destination_tier: policy.destination_tier };
  const statuses: MigrationStatus[] = [];
  // A pass that died (kill -9, lost lease) left its job unfinished: finish it first.
  for (const job of await storage.catalog.migrationJobs(prefix)) {
    if (job.state !== 'running' && job.state !== 'planned' && job.state !== 'rehydrating') continue;
    log(`aging ${policy.name}: resuming ${job.id} (${job.state})`);
    statuses.push(await executeMigration(storage, jobSpec(aging, policy, source, job.id), { now, log }));
  }
  const matching = await selectObjects(storage, jobSpec(aging, policy, source, prefix), now);
  if (matching.length > 0) {
    const id = `${prefix}${new Date(now).toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}-${randomBytes(2).toString('hex')}`;
    statuses.push(await executeMigration(storage, jobSpec(aging, policy, source, id), { now, log }));
  }
  const planned = statuses.reduce((n, s) => n + s.objects_total, 0);
  const moved = statuses.reduce((n, s) => n + s.objects_done, 0);
  const bytes = statuses.reduce((n, s) => n + s.bytes_migrated, 0);
  const failed = statuses.reduce((n, s) => n + s.objects_failed, 0);
  const left = statuses.filter((s) => s.state !== 'completed');
  const note =
    planned === 0
      ? await whyNothing(storage, aging, policy, source, now)
      : `moved ${moved} of ${planned} objects, ${bytes} bytes` +
        (failed > 0 ? `; ${failed} failed: ${statuses.flatMap((s) => s.errors).slice(0, 3).map((e) => `${e.key}: ${e.error}`).join('; ')}` : '') +
        (left.length > 0 ? `; jobs not completed: ${left.map((s) => `${s.id} (${s.state})`).join(', ')}` : '');
  return { ...base, job: statuses.at(-1)?.id ?? null, planned, moved_objects: moved, moved_bytes: bytes, failed, note };
}

/** Why a policy selects nothing: how many objects the tier holds and which criterion leaves them out. */
async function whyNothing(storage: OpenedStorage, aging: AgingConfig, policy: AgingPolicy, source: TierName, now: number): Promise<string> {
  const rows = await storage.catalog.list({ tier: source });
  if (rows.length === 0) return `moved nothing: tier ${source} holds no objects`;
  const c = policy.selection_criteria;
  const checks: [string, (r: CatalogRow) => boolean][] = [];
  const before = (name: keyof SelectionCriteria, value: (r: CatalogRow) => number, unit = 1) => {
    const point = c[name] as Parameters<typeof resolveTime>[0] | undefined;
    if (point === undefined) return;
    const limit = resolveTime(point, now) * unit;
    checks.push([`${name} ${new Date(limit / unit).toISOString()}`, (r) => value(r) < limit]);
  };
  before('last_accessed_before', (r) => Date.parse(r.lastAccessedAt ?? r.createdAt));
  before('created_before', (r) => Date.parse(r.createdAt));
  before('time_before', (r) => r.timeMaxUs, 1000);
  if (c.memory_types) checks.push([`memory_types ${c.memory_types.join(',')}`, (r) => c.memory_types!.includes(r.memoryType)]);
  if (c.datasets) checks.push([`datasets ${c.datasets.join(',')}`, (r) => c.datasets!.includes(r.dataset)]);
  if (c.min_size !== undefined) checks.push([`min_size ${c.min_size}`, (r) => r.bytes >= c.min_size!]);
  if (c.max_size !== undefined) checks.push([`max_size ${c.max_size}`, (r) => r.bytes <= c.max_size!]);
  const arrived = resolveTime(c.in_tier_before ?? { at: Date.now() - aging.min_residence }, now);
  checks.push([`min_residence (in ${source} since before ${new Date(arrived).toISOString()})`, (r) => Date.parse(r.tierSince) < arrived]);
  if (c.accessed_at_least) {
    const reads = await storage.catalog.recentAccesses(now - c.accessed_at_least.windowMs);
    const { times } = c.accessed_at_least;
    checks.push([`accessed_at_least ${times} times`, (r) => (reads.get(objectIdOf(r.key)) ?? 0) >= times]);
  }
  const excluded = checks.map(([what, ok]) => ({ what, out: rows.filter((r) => !ok(r)).length })).filter((e) => e.out > 0).sort((a, b) => b.out - a.out);
  const newest = Math.max(...rows.map((r) => r.timeMaxUs));
  return `moved nothing: none of the ${rows.length} objects in ${source} matches; ${excluded.map((e) => `${e.what} leaves out ${e.out}`).join(', ')} (newest observation ${new Date(newest / 1000).toISOString()})`;
}

export interface PolicyStatus {
  policy: string;
  source_tier: string;
  destination_tier: string;
  last_run: string | null;
  next_run: string | null;
  last_note: string | null;
  moved_objects: number;
  moved_bytes: number;
  pending_objects: number;
  failed_objects: number;
  /** A job with no step done for `stuck_after`: the object and the step it waits on. */
  stuck: { job: string; key: string; state: string; since: string }[];
}

/** `earthmem age status`: per policy, its last and next run, what moved, what is pending or failed, what is stuck. */
export async function agingStatus(storage: OpenedStorage, aging: AgingConfig, now = Date.now()): Promise<{ lease: { owner: string; expiresAt: string } | null; policies: PolicyStatus[] }> {
  const runs = await storage.catalog.agingRuns();
  const policies: PolicyStatus[] = [];
  for (const policy of aging.policies) {
    for (const source of policy.source_tier) {
      const run = runs.find((r: AgingRun) => r.policy === policy.name && r.sourceTier === source);
      const jobs: MigrationJobRecord[] = await storage.catalog.migrationJobs(jobPrefix(policy, source));
      let moved = 0, bytes = 0, pending = 0, failed = 0;
      const stuck: PolicyStatus['stuck'] = [];
      for (const job of jobs) {
        const journal = (await storage.catalog.migrationJob(job.id))!;
        const status = migrationStatus(journal);
        moved += status.objects_done;
        bytes += status.bytes_migrated;
        failed += status.objects_failed;
        const open = journal.steps.filter((s) => !['source_deleted', 'retained', 'failed'].includes(s.state));
        pending += open.length;
        if ((job.state === 'running' || job.state === 'rehydrating') && open.length > 0) {
          const last = Math.max(Date.parse(job.updatedAt), ...journal.steps.map((s) => Date.parse(s.updatedAt)));
          if (now - last >= aging.stuck_after) stuck.push({ job: job.id, key: open[0]!.sourceKey, state: open[0]!.state, since: new Date(last).toISOString() });
        }
      }
      policies.push({
        policy: policy.name, source_tier: source, destination_tier: policy.destination_tier,
        last_run: run?.ranAt ?? null,
        next_run: run === undefined ? null : new Date(Date.parse(run.ranAt) + aging.interval).toISOString(),
        last_note: run?.note ?? null,
        moved_objects: moved, moved_bytes: bytes, pending_objects: pending, failed_objects: failed, stuck,
      });
    }
  }
  const lease = await storage.catalog.lease(AGING_LEASE);
  return { lease: lease ?? null, policies };
}

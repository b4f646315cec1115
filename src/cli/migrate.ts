import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { ConfigError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { parseConfigText, parseConfigValue } from '../config/load.js';
import { migrationJobSchema, type MigrationJobSpec } from '../aging/job.js';
import { cancelMigration, executeMigration, migrationStatus, planMigration, type MigrationStatus } from '../aging/migration.js';
import { openStorage } from '../pipeline/read.js';
import type { PipelineConfig } from '../pipeline/schema.js';
import { formatBytes } from './format.js';
import { UsageError } from './usage.js';

export const migrateUsage = `Usage:
  earthmem migrate PIPELINE.yaml [JOB.yaml] [--dry-run] [--plan HASH] [--now T] [--json] [job options]
  earthmem migrate status PIPELINE.yaml ID [--json]
  earthmem migrate cancel PIPELINE.yaml ID

Moves objects between tiers: copy (re-encoded to the destination's format and compression),
read back and verify, switch the catalog, delete the source; journaled per object in the catalog,
so running a job whose id exists resumes it. Job options (each overrides JOB.yaml's key):
  --id ID  --source-tier T  --destination-tier T
  --last-accessed-before T  --created-before T  --time-before T   (RFC 3339, or "30 days ago")
  --memory-types A,B  --datasets A,B  --min-size S  --max-size S
  --validation true|false  --delete-after-migration true|false  --metadata-update true|false
  --max-bytes-per-second S  --concurrency N
  --dry-run     print the plan (objects, bytes, from → to) and its hash; move nothing
  --plan HASH   execute only if the plan still hashes to HASH
  --now T       evaluate relative times against T instead of now
`;

const jobFlags = {
  id: 'id',
  'source-tier': 'source_tier',
  'destination-tier': 'destination_tier',
  validation: 'validation',
  'delete-after-migration': 'delete_after_migration',
  'metadata-update': 'metadata_update',
  'max-bytes-per-second': 'max_bytes_per_second',
  concurrency: 'concurrency',
} as const;
const criteriaFlags = {
  'last-accessed-before': 'last_accessed_before',
  'created-before': 'created_before',
  'time-before': 'time_before',
  'memory-types': 'memory_types',
  datasets: 'datasets',
  'min-size': 'min_size',
  'max-size': 'max_size',
} as const;

/** The job from JOB.yaml (if given) with the flags on top, through the one job schema. */
function jobOf(file: string | undefined, values: Record<string, string | boolean | undefined>): MigrationJobSpec {
  const base = file === undefined ? {} : ((parseDocument(readFileSync(file, 'utf8')).toJS() ?? {}) as Record<string, unknown>);
  const flags: Record<string, unknown> = {};
  const criteria: Record<string, unknown> = {};
  const typed = (flag: string, text: string): unknown => {
    if (flag === 'concurrency') return Number(text);
    if (['validation', 'delete-after-migration', 'metadata-update'].includes(flag)) {
      if (text !== 'true' && text !== 'false') throw new UsageError(`--${flag} takes true or false`, migrateUsage);
      return text === 'true';
    }
    if (flag === 'memory-types' || flag === 'datasets') return text.split(',').filter(Boolean);
    return text;
  };
  for (const [flag, key] of Object.entries(jobFlags)) if (typeof values[flag] === 'string') flags[key] = typed(flag, values[flag] as string);
  for (const [flag, key] of Object.entries(criteriaFlags)) if (typeof values[flag] === 'string') criteria[key] = typed(flag, values[flag] as string);
  const merged = {
    ...base,
    ...flags,
    ...(Object.keys(criteria).length > 0 ? { selection_criteria: { ...((base.selection_criteria as object | undefined) ?? {}), ...criteria } } : {}),
  };
  if (file !== undefined && Object.keys(flags).length === 0 && Object.keys(criteria).length === 0) {
    // Only the file: its own line numbers in the errors.
    return parseConfigText(readFileSync(file, 'utf8'), file, migrationJobSchema);
  }
  return parseConfigValue(merged, file === undefined ? 'the migrate flags' : `${file} with the migrate flags`, migrationJobSchema);
}

function parseNow(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) throw new UsageError(`--now: expected an RFC 3339 time, got ${JSON.stringify(text)}`, migrateUsage);
  return ms;
}

export function statusText(s: MigrationStatus): string {
  const lines = [
    `job ${s.id}: ${s.state}  (${s.source_tier} → ${s.destination_tier}, plan ${s.plan_hash})`,
    `  progress ${s.progress_percentage.toFixed(1)}%: ${s.objects_done} of ${s.objects_total} objects, ${formatBytes(s.bytes_migrated)} of ${formatBytes(s.bytes_total)}` +
      `${s.objects_failed > 0 ? `, ${s.objects_failed} failed` : ''}${s.eta_seconds === null ? '' : `, eta ${s.eta_seconds} s`}`,
    ...s.errors.map((e) => `  failed ${e.tier}/${e.key}: ${e.error}`),
    ...s.retained.map((r) => `  retained ${r.tier}/${r.key}: ${r.note}`),
  ];
  return lines.join('\n');
}

function progressBar(s: MigrationStatus): string {
  const width = 30;
  const filled = Math.round((s.progress_percentage / 100) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${s.progress_percentage.toFixed(1)}%  ${s.objects_done}/${s.objects_total} objects  ${formatBytes(s.bytes_migrated)}${s.eta_seconds === null ? '' : `  eta ${s.eta_seconds} s`}`;
}

/** `earthmem migrate …`: runs, plans, reports on or cancels a MigrationJob. */
export async function migrateCommand(args: string[], load: (file: string | undefined) => PipelineConfig): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'dry-run': { type: 'boolean', default: false },
      plan: { type: 'string' },
      now: { type: 'string' },
      json: { type: 'boolean', default: false },
      ...Object.fromEntries([...Object.keys(jobFlags), ...Object.keys(criteriaFlags)].map((f) => [f, { type: 'string' as const }])),
    },
  });
  const [first, ...rest] = positionals;
  if (first === 'status' || first === 'cancel') {
    const [pipeline, id] = rest;
    if (id === undefined) throw new UsageError(`migrate ${first} needs PIPELINE.yaml and ID`, migrateUsage);
    const storage = await openStorage(load(pipeline));
    try {
      let status: MigrationStatus;
      if (first === 'cancel') status = await cancelMigration(storage, id);
      else {
        const journal = await storage.catalog.migrationJob(id);
        if (journal === undefined) throw new ConfigError(`no migration job ${id} in the catalog of ${pipeline}`);
        status = migrationStatus(journal);
      }
      process.stdout.write(values.json ? `${JSON.stringify(status)}\n` : `${statusText(status)}\n`);
      return 0;
    } finally {
      await storage.close();
    }
  }
  if (first === undefined) throw new UsageError('missing PIPELINE.yaml', migrateUsage);
  if (rest.length > 1) throw new UsageError(`unexpected ${rest.slice(1).join(' ')}`, migrateUsage);
  const spec = jobOf(rest[0], values);
  const now = parseNow(values.now);
  const storage = await openStorage(load(first));
  try {
    if (values['dry-run']) {
      const plan = await planMigration(storage, spec, now);
      if (values.json) process.stdout.write(`${JSON.stringify(plan)}\n`);
      else {
        for (const o of plan.objects) process.stdout.write(`${o.tier} → ${o.destination_tier}  ${String(o.bytes).padStart(12)}  ${o.key}\n`);
        process.stdout.write(`plan ${plan.plan_hash}: ${plan.objects.length} objects, ${formatBytes(plan.bytes)}, ${plan.source_tier} → ${plan.destination_tier} (job ${plan.id}); run it with --plan ${plan.plan_hash}\n`);
      }
      return 0;
    }
    const tty = process.stderr.isTTY === true && !values.json;
    const status = await executeMigration(storage, spec, {
      ...(now === undefined ? {} : { now }),
      ...(values.plan === undefined ? {} : { planHash: values.plan }),
      log: (line) => process.stderr.write(`${tty ? '\r\x1b[2K' : ''}${redact(line)}\n`),
      ...(tty ? { onProgress: (s: MigrationStatus) => process.stderr.write(`\r\x1b[2K${progressBar(s)}`) } : {}),
    });
    if (tty) process.stderr.write('\r\x1b[2K');
    process.stdout.write(values.json ? `${JSON.stringify(status)}\n` : `${statusText(status)}\n`);
    return status.state === 'completed' ? 0 : 1;
  } finally {
    await storage.close();
  }
}

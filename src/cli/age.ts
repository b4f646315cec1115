import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { ConfigError, describeError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { agingStatus, runAgingPass, type AgingPass } from '../aging/planner.js';
import { openStorage } from '../pipeline/read.js';
import type { PipelineConfig } from '../pipeline/schema.js';
import { formatBytes } from './format.js';
import { UsageError } from './usage.js';

export const ageUsage = `Usage:
  earthmem age PIPELINE.yaml [--once] [--dry-run] [--now T] [--json]
  earthmem age status PIPELINE.yaml [--json]

Runs the pipeline file's aging policies (its aging: section): every aging.interval, or one pass
with --once. Many workers may run it: a lease in the catalog lets one plan and move at a time.
  --dry-run   print, per policy, exactly which objects would move and the bytes; move nothing
  --now T     evaluate relative times ("30 days ago") against T (RFC 3339)
`;

function passText(pass: AgingPass): string {
  const lines = [`aging pass at ${pass.at}: ${pass.note}`];
  for (const p of pass.policies) {
    lines.push(`  ${p.policy} (${p.source_tier} → ${p.destination_tier}): ${p.note}`);
    for (const o of p.objects ?? []) lines.push(`    ${o.tier} → ${o.destination_tier}  ${String(o.bytes).padStart(12)}  ${o.key}`);
  }
  return lines.join('\n');
}

/** `earthmem age …`: the aging stream on its own, one pass, a dry run, or its status. */
export async function ageCommand(args: string[], load: (file: string | undefined) => PipelineConfig): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      once: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      now: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const status = positionals[0] === 'status';
  const file = status ? positionals[1] : positionals[0];
  const config = load(file);
  if (config.aging === undefined) throw new ConfigError(`${file} has no aging: section (policies to run)`);
  const aging = config.aging;
  let now: number | undefined;
  if (values.now !== undefined) {
    now = Date.parse(values.now);
    if (!Number.isFinite(now)) throw new UsageError(`--now: expected an RFC 3339 time, got ${JSON.stringify(values.now)}`, ageUsage);
  }
  const out = (value: unknown, text: string) => process.stdout.write(values.json ? `${JSON.stringify(value)}\n` : `${text}\n`);
  const storage = await openStorage(config);
  try {
    if (status) {
      const s = await agingStatus(storage, aging, now);
      out(
        s,
        [
          `lease: ${s.lease ? `${s.lease.owner} until ${s.lease.expiresAt}` : 'free'}`,
          ...s.policies.map(
            (p) =>
              `${p.policy} (${p.source_tier} → ${p.destination_tier}): last run ${p.last_run ?? 'never'}, next ${p.next_run ?? 'at the next pass'}; ` +
              `moved ${p.moved_objects} objects (${formatBytes(p.moved_bytes)}), pending ${p.pending_objects}, failed ${p.failed_objects}` +
              (p.stuck.length > 0 ? `; STUCK: ${p.stuck.map((x) => `${x.job} waits on ${x.key} at ${x.state} since ${x.since}`).join('; ')}` : '') +
              (p.last_note ? `\n    last pass: ${p.last_note}` : ''),
          ),
        ].join('\n'),
      );
      return 0;
    }
    const log = (line: string) => process.stderr.write(`${redact(line)}\n`);
    if (values.once || values['dry-run']) {
      const pass = await runAgingPass(storage, aging, { ...(now === undefined ? {} : { now }), dryRun: values['dry-run'], log });
      out(pass, passText(pass));
      return pass.policies.some((p) => p.failed > 0) ? 1 : 0;
    }
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    process.once('SIGTERM', () => stop.abort());
    while (!stop.signal.aborted) {
      try {
        const pass = await runAgingPass(storage, aging, { log });
        out(pass, passText(pass));
      } catch (error) {
        log(`aging pass failed: ${describeError(error)}`);
      }
      await sleep(aging.interval, undefined, { signal: stop.signal }).catch(() => undefined);
    }
    return 0;
  } finally {
    await storage.close();
  }
}

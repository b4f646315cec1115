/**
 * Outages of a real server in the middle of a Kafka stream (test/faults): a worker runs a
 * variant of `pipelines/kafka.yaml`, the server is stopped with `scripts/services down`, kept
 * down, started again with `up` (always, also when the test fails), and the run must go on by
 * itself: every offset committed, every valid record exactly once, bounded memory, and a run log
 * that says once per outage what it waits for. The figures go to the test's output.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { CatalogRow } from '../../src/catalog/catalog.js';
import { parseConfigText } from '../../src/config/load.js';
import { openStorage, readStored } from '../../src/pipeline/read.js';
import { pipelineSchema } from '../../src/pipeline/schema.js';
import { catalogRows, startWorker, waitFor, type Worker } from './kafka.js';
import { assertExactlyOnce, drained, loadTopic, scenario, stop, type DeadLetterEntry, type ExactlyOnceFigures, type Scenario } from './kafka-scenario.js';

export type Service = 's3' | 'gcs' | 'azurite' | 'postgres';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the suite with npm test (scripts/services env)`);
  return value;
}

/**
 * The port setting scripts/services reads, set to where the service runs now: `up` then starts
 * it again on the same port, whichever checkout's services the suite was pointed at.
 */
function portEnv(service: Service): NodeJS.ProcessEnv {
  switch (service) {
    case 's3':
      return { EARTHMEM_S3_PORT: new URL(required('S3_ENDPOINT')).port };
    case 'gcs':
      return { EARTHMEM_GCS_PORT: new URL(required('GCS_ENDPOINT')).port };
    case 'azurite':
      return { EARTHMEM_AZURITE_PORT: /BlobEndpoint=https?:\/\/[^:/;]+:(\d+)/.exec(required('AZURE_CONNECTION_STRING'))![1]! };
    case 'postgres':
      return { EARTHMEM_PG_PORT: new URL(required('DATABASE_URL')).port };
  }
}

export function services(command: 'up' | 'down', service: Service): void {
  execFileSync('scripts/services', [command, service], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...portEnv(service) } });
}

/** The largest resident set the process had (VmHWM), in MiB. */
export function peakRssMiB(pid: number): number {
  const kib = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return Math.round(kib / 1024);
}

/** Read but not yet durable, and fetched but not yet pulled: small, so the outage finds the source paused mid-stream. */
const MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024;

/**
 * `pipelines/kafka.yaml` with every tier's primary backend replaced by `backendOf(tier)` (same
 * file_organization), when given, and a small in-flight budget. Written into the scenario's folder.
 */
export function outagePipeline(
  s: Scenario,
  backendOf?: (tier: string) => Record<string, unknown>,
  deadLetter?: Record<string, unknown>,
  edit?: (pipeline: Record<string, any>) => void,
): string {
  const pipeline = parse(readFileSync('pipelines/kafka.yaml', 'utf8')) as Record<string, any>;
  if (deadLetter !== undefined) pipeline.dead_letter = deadLetter;
  edit?.(pipeline);
  pipeline.batch = { ...pipeline.batch, max_in_flight_bytes: MAX_IN_FLIGHT_BYTES, max_open_bytes: MAX_IN_FLIGHT_BYTES / 2 };
  for (const [tier, config] of Object.entries<Record<string, any>>(pipeline.storage.tier_configs)) {
    if (backendOf !== undefined) config.primary_backend = { ...backendOf(tier), file_organization: config.primary_backend.file_organization };
  }
  const file = join(s.dir, 'pipeline.yaml');
  writeFileSync(file, stringify(pipeline));
  return file;
}

/** Each catalogued object fetched from its tier through the pipeline's own backends, into a local file for pyarrow. */
export function fetcher(s: Scenario, pipelineFile: string): { localPath: (row: CatalogRow) => Promise<string>; close: () => Promise<void> } {
  const env = { ...process.env, ...s.env };
  const config = parseConfigText(readFileSync(pipelineFile, 'utf8'), pipelineFile, pipelineSchema, env);
  const storage = openStorage(config, env);
  const dir = join(s.dir, 'fetched');
  mkdirSync(dir, { recursive: true });
  let n = 0;
  return {
    async localPath(row) {
      const content = await readStored(await storage, row);
      assert.equal(content.kind, 'bytes');
      const path = join(dir, `${n++}.parquet`);
      writeFileSync(path, content.bytes);
      return path;
    },
    close: async () => (await storage).close(),
  };
}

export interface OutageFigures extends ExactlyOnceFigures {
  service: string;
  /** The run's topic, catalog schema and folders, for a test's own checks afterwards. */
  scenario: Scenario;
  downSeconds: number;
  /** From the server answering again to the worker's first `recovered after` line. */
  recoverSeconds: number;
  /** How long the worker said it had been retrying (its own `recovered after` line). */
  retriedSeconds: number;
  peakRssMiB: number;
  /** Largest in-flight bytes the worker reported while waiting (its `pipeline waiting` lines), and the budget. */
  peakInFlightBytes: number;
  inFlightBudget: number;
  /** Run-log lines about retries during the outage (first lines, reminders, recoveries). */
  retryLines: number;
  totalSeconds: number;
  /** The worker's whole output. */
  workerLog: string;
  /** Its retry lines, as the operator sees them. */
  retryLog: string[];
}

export interface OutageRun {
  name: string;
  /** A shared server stopped and started by scripts/services, or an outage of the test's own making (a disk filled, a server of its own). */
  service: Service | { label: string; down(): void | Promise<void>; up(): void | Promise<void> };
  downMs: number;
  /** The tiers' backends; default: the local folders of kafka.yaml. */
  backendOf?: (tier: string, s: Scenario) => Record<string, unknown>;
  /** The dead letter, and how to read it back; default: kafka.yaml's topic on the shared broker. */
  deadLetter?: (s: Scenario) => { config: Record<string, unknown>; read: () => DeadLetterEntry[] };
  /** False when the outage must not stall the run (an index or cache down): no stall report is expected. */
  stalls?: boolean;
  /** Any other change to the pipeline (an index_backend, a cache). */
  edit?: (pipeline: Record<string, any>, s: Scenario) => void;
  /** The retry targets the outage must show in the run log (`s3 tier`, `catalog postgresql`). */
  target: RegExp;
}

/**
 * Loads the 4-partition topic, starts one worker, stops `service` once objects are being
 * written, keeps it down for `downMs`, starts it again, and checks that the worker finishes the
 * topic by itself with every record exactly once. The service is started again whatever happens.
 */
export async function rideOutOutage(run: OutageRun): Promise<OutageFigures> {
  const started = Date.now();
  const s = scenario(run.name);
  const deadLetter = run.deadLetter?.(s);
  const pipelineFile = outagePipeline(s, run.backendOf && ((tier) => run.backendOf!(tier, s)), deadLetter?.config, run.edit && ((p) => run.edit!(p, s)));
  await loadTopic(s);
  const w: Worker = startWorker(pipelineFile, s.env);
  await waitFor('some objects to be written', async () => (await catalogRows(s.env.EARTHMEM_CATALOG_SCHEMA).catch(() => [])).length >= 2);
  const mark = w.output().length;
  let upAt: number;
  const outage = typeof run.service === 'string' ? { down: () => services('down', run.service as Service), up: () => services('up', run.service as Service) } : run.service;
  const label = typeof run.service === 'string' ? run.service : run.service.label;
  await outage.down();
  try {
    await new Promise((r) => setTimeout(r, run.downMs));
  } finally {
    await outage.up();
    upAt = Date.now();
  }
  const during = () => w.output().slice(mark);
  await waitFor(`the worker to recover from the ${label} outage`, async () => /recovered after/.test(during()), 120_000).catch((error: Error) => {
    writeFileSync(join(s.dir, 'worker.log'), w.output());
    throw new Error(`${error.message}; the worker said since the outage (whole log ${join(s.dir, 'worker.log')}):\n${tail(during())}`);
  });
  const recoverSeconds = (Date.now() - upAt) / 1000;
  await drained(s, w);
  const peak = peakRssMiB(w.child.pid!);
  await stop(w);
  const workerLog = join(s.dir, 'worker.log');
  writeFileSync(workerLog, w.output());
  const log = during().split('\n');

  const fetch = run.backendOf === undefined ? undefined : fetcher(s, pipelineFile);
  let figures: ExactlyOnceFigures;
  try {
    figures = await assertExactlyOnce(s, fetch?.localPath, deadLetter?.read);
  } finally {
    await fetch?.close();
  }

  // The log says once per outage and target what it waits for, then reminds every 30 s: not one line per attempt.
  const first = log.filter((l) => /: retrying \(for up to /.test(l));
  const reminders = log.filter((l) => /: still retrying for /.test(l));
  const recovered = log.filter((l) => /: recovered after /.test(l));
  // A write of a partition revoked meanwhile stops retrying (its records are read again): that ends its outage too.
  const ended = log.filter((l) => /: (recovered after|stopped retrying after) /.test(l));
  assert.ok(first.some((l) => run.target.test(l)), `the outage was felt by the worker (a "retrying" line for ${run.target}):\n${tail(during())}`);
  assert.ok(!log.some((l) => /^retry \d+ in /.test(l)), 'no line per attempt');
  const targets = new Set(first.map((l) => l.slice(0, l.indexOf(': '))));
  for (const target of targets) {
    const count = (lines: string[]) => lines.filter((l) => l.startsWith(`${target}: `)).length;
    assert.equal(count(ended), count(first), `${target}: every outage it reported ends with a recovery line:\n${[...first, ...ended].join('\n')}`);
    assert.ok(count(first) <= 2, `${target}: at most a flap at the restart, not a line per attempt:\n${first.join('\n')}`);
    assert.ok(count(reminders) <= Math.ceil(run.downMs / 30_000) + 1, `${target}: a reminder every 30 s:\n${reminders.join('\n')}`);
  }
  const retriedSeconds = Math.max(...recovered.map((l) => seconds(/recovered after (.*)$/.exec(l)![1]!)));
  // While waiting the source was paused: what was read and not durable stayed within the budget
  // plus the one chunk that crossed it (a Kafka fetch of one partition: up to 1 MiB of zstd,
  // several MiB of JSON).
  const inFlight = log.flatMap((l) => [...l.matchAll(/in-flight bytes (\d+) of (\d+)/g)].map((m) => Number(m[1])));
  const peakInFlightBytes = Math.max(0, ...inFlight);
  if (run.stalls ?? true) assert.ok(inFlight.length > 0, `the stall report said what was waiting:\n${tail(during())}`);
  assert.ok(peakInFlightBytes <= 3 * MAX_IN_FLIGHT_BYTES, `in-flight bytes ${peakInFlightBytes} stay near the budget ${MAX_IN_FLIGHT_BYTES}`);
  return {
    ...figures!,
    service: label,
    scenario: s,
    downSeconds: run.downMs / 1000,
    recoverSeconds,
    retriedSeconds,
    peakRssMiB: peak,
    peakInFlightBytes,
    inFlightBudget: MAX_IN_FLIGHT_BYTES,
    retryLines: first.length + reminders.length + ended.length,
    totalSeconds: Math.round((Date.now() - started) / 1000),
    workerLog,
    retryLog: log.filter((l) => /: (retrying \(for up to|still retrying for|recovered after|stopped retrying after|gave up after) /.test(l)),
  };
}

/** `62 s`, `1m30s` (formatWait's output) in seconds. */
function seconds(text: string): number {
  const m = /^(?:(\d+)m)?(\d+)\s*s$/.exec(text.trim());
  return m === null ? NaN : Number(m[1] ?? 0) * 60 + Number(m[2]);
}

function tail(output: string): string {
  return output.split('\n').filter((l) => !l.includes('kafkajs ERROR') && !l.startsWith('kafka lag')).slice(-40).join('\n');
}

/** One line for the test output and the closing note. */
export function describeFigures(f: OutageFigures): string {
  return (
    `${f.service} down ${f.downSeconds} s mid-stream: records in ${f.recordsIn}, written ${f.written}, lost ${f.lost}, duplicated ${f.duplicated}, ` +
    `dead-lettered ${f.deadLettered}; peak RSS ${f.peakRssMiB} MiB (in flight at most ${(f.peakInFlightBytes / 2 ** 20).toFixed(1)} of ${f.inFlightBudget / 2 ** 20} MiB); ` +
    `recovered ${f.recoverSeconds.toFixed(1)} s after the server was back (worker retried ${f.retriedSeconds} s); ${f.retryLines} retry log lines; test ${f.totalSeconds} s; ` +
    `worker log ${f.workerLog}\n${f.retryLog.map((l) => `  | ${l}`).join('\n')}`
  );
}

/** Writes until the file system is full (ENOSPC), down to the last byte; the filler keeps what fitted. */
export function fillDisk(path: string): void {
  const fd = openSync(path, 'w');
  try {
    for (const size of [64 * 1024, 512, 1]) {
      const chunk = Buffer.alloc(size, 1);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      }
    }
  } finally {
    closeSync(fd);
  }
}

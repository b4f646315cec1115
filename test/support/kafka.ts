import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { PostgresCatalog } from '../../src/catalog/postgresql.js';
import type { CatalogRow } from '../../src/catalog/catalog.js';

export function brokers(): string {
  const b = process.env.KAFKA_BROKERS;
  if (!b) throw new Error('KAFKA_BROKERS is not set: run the suite with npm test (scripts/services up kafka)');
  return b;
}

export function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run the suite with npm test (scripts/services up postgres)');
  return url;
}

export const kcat = () => process.env.KCAT ?? '/usr/bin/kcat';

const kafka = () => new Kafka({ brokers: brokers().split(','), clientId: 'earthmem-test', logLevel: logLevel.NOTHING });

export async function createTopic(topic: string, partitions = 4): Promise<void> {
  // A broker that has just (re)started answers metadata before it hosts new partitions: retry for a while.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const admin = kafka().admin();
    try {
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      if (metadata.topics[0]?.partitions.every((p) => p.leader >= 0) && metadata.topics[0].partitions.length === partitions) return;
      throw new Error(`${topic}: partitions without a leader yet`);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

/**
 * Produces an NDJSON file with kcat (not our producer), keyed by station so records spread over
 * the partitions the way Java clients place keys (murmur2).
 */
export function produceWithKcat(topic: string, ndjson: string, compression = 'zstd'): void {
  const keyed = `${ndjson}.keyed`;
  const lines = readFileSync(ndjson, 'utf8').split('\n').filter((l) => l.length > 0);
  writeFileSync(
    keyed,
    lines
      .map((line, i) => {
        const station = /"station":"([^"]+)"/.exec(line)?.[1] ?? `k${i % 97}`;
        return `${station}\t${line}`;
      })
      .join('\n') + '\n',
  );
  execFileSync(kcat(), ['-b', brokers(), '-P', '-t', topic, '-K', '\t', '-z', compression, '-X', 'partitioner=murmur2_random', '-l', keyed], {
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 120_000,
  });
}

/** Messages per partition end offset, and the group's committed offsets. */
export async function lag(topic: string, groupId: string): Promise<number> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    const high = await admin.fetchTopicOffsets(topic);
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    const done = new Map(committed[0]!.partitions.map((p) => [p.partition, Math.max(0, Number(p.offset))]));
    return high.reduce((n, p) => n + Number(p.high) - (done.get(p.partition) ?? 0), 0);
  } finally {
    await admin.disconnect();
  }
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    // A broker that is restarting answers with errors (or not at all) for a while: keep asking.
    const answer = await Promise.race([check().catch(() => false), new Promise<false>((r) => setTimeout(() => r(false), 15_000).unref())]);
    if (answer) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface Worker {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

const running = new Set<ChildProcess>();

/** Kills workers a failed test left behind (a live child would keep the test process up). */
export function killWorkers(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/**
 * A worker no test should need longer than this: one that outlives it is killed and `exited`
 * rejects with its log tail, so a failpoint that never fires fails the test instead of hanging
 * the suite.
 */
const WORKER_LIMIT_MS = 8 * 60_000;

export function startWorker(pipeline: string, env: NodeJS.ProcessEnv, args: string[] = ['run'], limitMs = WORKER_LIMIT_MS): Worker {
  const [command, ...flags] = args;
  const child = spawn(process.execPath, ['bin/earthmem.js', command!, pipeline, ...flags], { env: { ...process.env, ...env } });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  running.add(child);
  let overran = false;
  const limit = setTimeout(() => {
    overran = true;
    child.kill('SIGKILL');
  }, limitMs).unref();
  const exited = new Promise<number | null>((resolve, reject) =>
    child.on('exit', (code) => {
      clearTimeout(limit);
      running.delete(child);
      if (overran) reject(new Error(`worker ${command} ${pipeline} still running after ${limitMs / 1000} s, killed; its log ends:\n${output.slice(-3000)}`));
      else resolve(code);
    }),
  );
  // A test that never awaits `exited` (it stops the worker another way) must not see an unhandled rejection.
  exited.catch(() => undefined);
  return { child, output: () => output, exited };
}

export async function catalogRows(schema: string): Promise<CatalogRow[]> {
  const catalog = await PostgresCatalog.open({ connectionString: databaseUrl(), schema });
  try {
    return await catalog.list();
  } finally {
    await catalog.close();
  }
}

/** Dead-letter messages: the `earthmem.reason` and `earthmem.offset` headers, read by kcat. */
export function deadLetters(topic: string, on: string = brokers()): { reason: string; offset: number; partition: number }[] {
  const out = execFileSync(kcat(), ['-b', on, '-C', '-t', topic, '-e', '-q', '-o', 'beginning', '-f', '%h\n'], { encoding: 'utf8', timeout: 120_000 });
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((line) => {
      const headers = new Map(line.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      return { reason: headers.get('earthmem.reason')!, offset: Number(headers.get('earthmem.offset')), partition: Number(headers.get('earthmem.partition')) };
    });
}

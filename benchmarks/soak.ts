/**
 * `npm run bench:soak [-- --minutes 30 --rate 2000]`: one Kafka worker (`pipelines/kafka.yaml`,
 * PostgreSQL catalog, local tiers) fed at a steady produced rate for `--minutes`, its resident
 * set (VmRSS) sampled every 10 s. Prints each sample, then the RSS at the end of the warm-up (the
 * first fifth of the run, at least 1 minute), at the end, and the least-squares slope after the
 * warm-up: a worker that holds no growing state shows a slope near 0. Needs
 * `scripts/services up kafka postgres` (started unless the environment names them).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import { writeSample } from '../src/records/sample.js';
import { serviceEnv } from './peers/env.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    rate: { type: 'string', default: '2000' },
    sample: { type: 'string', default: '10' },
  },
});
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const sampleMs = Number(values.sample) * 1000;
if (!(minutes > 0) || !(rate > 0) || !(sampleMs > 0)) throw new Error('--minutes, --rate and --sample must be positive numbers');
const env = serviceEnv(['kafka', 'postgres'], ['KAFKA_BROKERS', 'DATABASE_URL']);
const kafka = new kafkajs.Kafka({ brokers: env.KAFKA_BROKERS!.split(','), clientId: 'earthmem-soak', logLevel: kafkajs.logLevel.ERROR });

const work = resolve('.bench');
mkdirSync(work, { recursive: true });
// The lines sent, in a cycle: the sample's valid points (ids repeat across cycles; offsets do not).
const pool = join(work, 'soak-points.ndjson');
await writeSample(pool, { points: 100_000, features: 0, badCopies: 0, seed: 3 });
const lines = readFileSync(pool, 'utf8').split('\n').filter((l) => l.length > 0);

const run = Date.now().toString(36);
const topic = `soak-${run}`;
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
const out = join(work, `soak-${run}`);
rmSync(out, { recursive: true, force: true });
const worker = spawn(process.execPath, ['bin/earthmem.js', 'run', 'pipelines/kafka.yaml'], {
  env: {
    ...process.env,
    ...env,
    EARTHMEM_TOPIC: topic,
    EARTHMEM_GROUP: `soak-${run}`,
    EARTHMEM_CATALOG_SCHEMA: `soak_${run}`,
    EARTHMEM_DATA: out,
    EARTHMEM_DEAD_LETTER_TOPIC: `soak-dlq-${run}`,
    EARTHMEM_MAX_AGE: '5s',
  },
  stdio: ['ignore', 'ignore', 'pipe'],
});
let log = '';
worker.stderr!.on('data', (d) => (log = (log + d).slice(-8000)));
const exited = new Promise<number | null>((r) => worker.on('exit', (code) => r(code)));

const producer = kafka.producer();
await producer.connect();
const started = Date.now();
const end = started + minutes * 60_000;
let sent = 0;
let next = 0;
const samples: { s: number; rssMiB: number; lag: number }[] = [];
let nextSample = started + sampleMs;
console.log(`soak: ${minutes} min at ${rate} records/s into ${topic}; RSS every ${sampleMs / 1000} s`);
while (Date.now() < end) {
  // Send what the rate owes by now, in batches of at most 1,000.
  const owed = Math.floor(((Date.now() - started) / 1000) * rate) - sent;
  if (owed > 0) {
    const n = Math.min(owed, 1000);
    const messages = Array.from({ length: n }, () => ({ value: lines[next++ % lines.length]! }));
    await producer.send({ topic, messages });
    sent += n;
  } else {
    await new Promise((r) => setTimeout(r, 50));
  }
  if (Date.now() >= nextSample) {
    nextSample += sampleMs;
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${worker.pid}/status`, 'utf8'))?.[1]) / 1024;
    const lag = await totalLag(`soak-${run}`).catch(() => -1);
    samples.push({ s: Math.round((Date.now() - started) / 1000), rssMiB: Math.round(rss), lag });
    console.log(`t=${samples.at(-1)!.s}s rss=${samples.at(-1)!.rssMiB} MiB lag=${lag} sent=${sent}`);
  }
  if (worker.exitCode !== null) throw new Error(`the worker exited (${worker.exitCode}) during the soak:\n${log}`);
}
await producer.disconnect();
worker.kill('SIGTERM');
const code = await exited;
await admin.disconnect();

const warmupS = Math.max(60, (minutes * 60) / 5);
const after = samples.filter((x) => x.s >= warmupS);
const slope = slopePerHour(after);
const atWarmup = after[0]?.rssMiB ?? NaN;
const atEnd = samples.at(-1)?.rssMiB ?? NaN;
console.log(
  `soak result: ${minutes} min, ${sent} records at ${rate}/s, worker exit ${code}; RSS at end of warm-up (${warmupS} s) ${atWarmup} MiB, ` +
    `at end ${atEnd} MiB, max after warm-up ${Math.max(...after.map((x) => x.rssMiB))} MiB, slope after warm-up ${slope.toFixed(1)} MiB/h; ` +
    `lag at end ${samples.at(-1)?.lag}`,
);

/** Least-squares slope of RSS over time, in MiB per hour. */
function slopePerHour(points: { s: number; rssMiB: number }[]): number {
  if (points.length < 2) return NaN;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.s, 0) / n;
  const my = points.reduce((a, p) => a + p.rssMiB, 0) / n;
  const num = points.reduce((a, p) => a + (p.s - mx) * (p.rssMiB - my), 0);
  const den = points.reduce((a, p) => a + (p.s - mx) ** 2, 0);
  return (num / den) * 3600;
}

async function totalLag(groupId: string): Promise<number> {
  const high = await admin.fetchTopicOffsets(topic);
  const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
  const done = new Map(committed[0]!.partitions.map((p) => [p.partition, Math.max(0, Number(p.offset))]));
  return high.reduce((n, p) => n + Number(p.high) - (done.get(p.partition) ?? 0), 0);
}

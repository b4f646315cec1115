/**
 * `npm run bench:kafka [-- --records N]`: Kafka → GeoParquet(zstd) → local tier with a PostgreSQL
 * catalog, end to end, with one and with two workers, against peers in the same run on the same
 * topic: a raw kafkajs consumer doing nothing with the messages (the ceiling), and what a user
 * would write instead, confluent-kafka + pyarrow writing Parquet per 100k records
 * (benchmarks/peers/kafka_pyarrow.py, installed into the reference venv when missing). Needs
 * `scripts/services up kafka postgres kcat pyref` (the script starts them unless the environment
 * already names them, as after `eval "$(scripts/services env --export)"`).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import { registerCompressionCodecs } from '../connectors/kafka/codecs.js';
import { writeSample } from '../src/records/sample.js';
import { ensurePeerPackage, serviceEnv } from './peers/env.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    /** Also write the results as JSON here (benchmarks/run.ts puts them in its summary). */
    summary: { type: 'string' },
  },
});
const N = Number(values.records);
const env = serviceEnv(['kafka', 'postgres', 'kcat', 'pyref'], ['KAFKA_BROKERS', 'DATABASE_URL', 'KCAT', 'EARTHMEM_PYTHON']);
const python = env.EARTHMEM_PYTHON!;
// Pinned: a cp3x manylinux wheel, so no build step.
ensurePeerPackage(python, 'confluent_kafka', 'confluent-kafka', '2.16.1');
const brokers = env.KAFKA_BROKERS!;
// kcat produces lz4 batches: without the codecs kafkajs fails every fetch (silently at logLevel NOTHING).
registerCompressionCodecs();
const kafka = new kafkajs.Kafka({ brokers: [brokers], clientId: 'earthmem-bench', logLevel: kafkajs.logLevel.ERROR });

const work = resolve('.bench');
mkdirSync(work, { recursive: true });
const input = join(work, `points-${N}.ndjson`);
await writeSample(input, { points: N, features: 0, badCopies: 0, seed: 1 });
const inputBytes = statSync(input).size;
const run = Date.now().toString(36);
const topic = `bench-${run}`;

const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
const t0 = Date.now();
execFileSync(env.KCAT ?? 'kcat', ['-P', '-b', brokers, '-t', topic, '-z', 'lz4', '-X', 'partitioner=murmur2_random', '-l', input], { stdio: 'inherit' });
console.error(`[bench] produced ${N} records with kcat in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

async function totalLag(group: string): Promise<number> {
  const high = await admin.fetchTopicOffsets(topic);
  const done = new Map((await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]!.partitions.map((p) => [p.partition, Math.max(0, Number(p.offset))]));
  return high.reduce((n, p) => n + Number(p.high) - (done.get(p.partition) ?? 0), 0);
}

/** The ceiling: a kafkajs group consumer that counts messages and bytes, nothing else. */
async function rawConsume(): Promise<{ seconds: number; bytes: number }> {
  const consumer = kafka.consumer({ groupId: `bench-raw-${run}`, maxBytesPerPartition: 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let count = 0;
  let bytes = 0;
  const started = Date.now();
  const done = new Promise<void>((resolveDone, reject) => {
    const timer = setTimeout(() => reject(new Error(`raw consume read only ${count} of ${N} in 300 s`)), 300_000);
    void consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) bytes += m.value?.length ?? 0;
        count += batch.messages.length;
        if (count >= N) {
          clearTimeout(timer);
          resolveDone();
        }
      },
    });
  });
  await done;
  const seconds = (Date.now() - started) / 1000;
  await consumer.disconnect();
  return { seconds, bytes };
}

/** `earthmem run` workers until the group's lag is 0; peak RSS from /proc (VmHWM) per worker. */
async function endToEnd(workers: number): Promise<{ seconds: number; peakRssMiB: number[]; objects: number }> {
  const id = `${run}_${workers}`;
  const out = join(work, `kafka-${id}`);
  rmSync(out, { recursive: true, force: true });
  const workerEnv = {
    ...process.env,
    ...env,
    EARTHMEM_TOPIC: topic,
    EARTHMEM_GROUP: `bench-${id}`,
    EARTHMEM_CATALOG_SCHEMA: `bench_${id}`,
    EARTHMEM_DATA: out,
    EARTHMEM_DEAD_LETTER_TOPIC: `bench-dlq-${id}`,
    EARTHMEM_MAX_ROWS: '50000',
    EARTHMEM_MAX_AGE: '2s',
  };
  const started = Date.now();
  const children = Array.from({ length: workers }, () =>
    spawn(process.execPath, ['bin/earthmem.js', 'run', 'pipelines/kafka.yaml'], { env: workerEnv, stdio: ['ignore', 'ignore', 'pipe'] }),
  );
  const peaks = children.map(() => 0);
  const logs = children.map(() => '');
  children.forEach((c, i) => c.stderr!.on('data', (d) => (logs[i] = (logs[i]! + d).slice(-4000))));
  const deadline = Date.now() + 600_000;
  for (;;) {
    children.forEach((c, i) => {
      try {
        const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${c.pid}/status`, 'utf8'));
        if (hwm) peaks[i] = Math.max(peaks[i]!, Number(hwm[1]) / 1024);
      } catch {
        // exited
      }
    });
    if ((await totalLag(`bench-${id}`).catch(() => -1)) === 0) break;
    if (Date.now() > deadline) throw new Error(`workers did not finish in 600 s:\n${logs.join('\n---\n')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const seconds = (Date.now() - started) / 1000;
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((r) => {
          c.on('exit', () => r());
          c.kill('SIGTERM');
        }),
    ),
  );
  const objects = Number(
    execFileSync('psql', [env.DATABASE_URL!, '-Atc', `select count(*) from bench_${id}.objects`], { encoding: 'utf8' }).trim(),
  );
  return { seconds, peakRssMiB: peaks, objects };
}

/**
 * `earthmem replay --from-beginning` of the same topic: the backfill path, one worker, bounded,
 * so it ends with the backlog (no batch waits out max_age for records that will not come). Wall
 * time from spawn to exit, like the workers'; peak RSS from /proc.
 */
async function replay(): Promise<{ seconds: number; peakRssMiB: number }> {
  const out = join(work, `kafka-replay-${run}`);
  rmSync(out, { recursive: true, force: true });
  const started = Date.now();
  const child = spawn(process.execPath, ['bin/earthmem.js', 'replay', 'pipelines/kafka.yaml', '--from-beginning'], {
    env: {
      ...process.env,
      ...env,
      EARTHMEM_TOPIC: topic,
      EARTHMEM_GROUP: `bench-replay-${run}`,
      EARTHMEM_CATALOG_SCHEMA: `bench_${run}_replay`,
      EARTHMEM_DATA: out,
      EARTHMEM_DEAD_LETTER_TOPIC: `bench-dlq-${run}-replay`,
      EARTHMEM_MAX_ROWS: '50000',
      EARTHMEM_MAX_AGE: '2s',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
  let peak = 0;
  const sampler = setInterval(() => {
    try {
      const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (hwm) peak = Math.max(peak, Number(hwm[1]) / 1024);
    } catch {
      // exited
    }
  }, 100);
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  clearInterval(sampler);
  if (code !== 0) throw new Error(`replay exited with ${code}:\n${log}`);
  rmSync(out, { recursive: true, force: true });
  return { seconds: (Date.now() - started) / 1000, peakRssMiB: peak };
}

/** The peer a user would write (benchmarks/peers/kafka_pyarrow.py); wall time from spawn to exit, like the workers'. */
function pyarrowConsume(): { seconds: number; peakRssMiB: number; bytes: number; files: number } {
  const out = join(work, `kafka-pyarrow-${run}`);
  rmSync(out, { recursive: true, force: true });
  const started = Date.now();
  const result = JSON.parse(
    execFileSync(python, [resolve('benchmarks/peers/kafka_pyarrow.py'), brokers, topic, `bench-pyarrow-${run}`, String(N), out, '100000'], { encoding: 'utf8' }),
  ) as { records: number; files: number; bytes: number; maxRssKiB: number };
  const seconds = (Date.now() - started) / 1000;
  rmSync(out, { recursive: true, force: true });
  if (result.records !== N) throw new Error(`confluent-kafka + pyarrow read ${result.records} of ${N}`);
  return { seconds, peakRssMiB: result.maxRssKiB / 1024, bytes: result.bytes, files: result.files };
}

const raw = await rawConsume();
const peer = pyarrowConsume();
const one = await endToEnd(1);
const two = await endToEnd(2);
const backfill = await replay();
await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
await admin.disconnect();

const rate = (s: number) => Math.round(N / s).toLocaleString('en-US');
const mbs = (s: number) => (inputBytes / 1e6 / s).toFixed(1);
console.log(`\n${N.toLocaleString('en-US')} point records, ${(inputBytes / 1e6).toFixed(1)} MB NDJSON, 4 partitions, produced by kcat (lz4).\n`);
console.log('| run | records/s | MB/s | seconds | ratio to raw consume | ratio to confluent-kafka + pyarrow | peak RSS per process | objects |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
const ratios = (s: number) => `${(raw.seconds / s).toFixed(2)} | ${(peer.seconds / s).toFixed(2)}`;
console.log(`| ceiling: raw kafkajs consume (no processing) | ${rate(raw.seconds)} | ${mbs(raw.seconds)} | ${raw.seconds.toFixed(1)} | ${ratios(raw.seconds)} | | |`);
console.log(
  `| peer: confluent-kafka + pyarrow, JSON → Parquet(zstd) per 100k | ${rate(peer.seconds)} | ${mbs(peer.seconds)} | ${peer.seconds.toFixed(1)} | ${ratios(peer.seconds)} | ${Math.round(peer.peakRssMiB)} MiB | ${peer.files} |`,
);
for (const [name, r] of [
  ['end to end, 1 worker', one],
  ['end to end, 2 workers', two],
] as const) {
  console.log(
    `| ${name} | ${rate(r.seconds)} | ${mbs(r.seconds)} | ${r.seconds.toFixed(1)} | ${ratios(r.seconds)} | ${r.peakRssMiB.map((p) => `${Math.round(p)} MiB`).join(', ')} | ${r.objects} |`,
  );
}
console.log(
  `| backfill: \`earthmem replay --from-beginning\`, 1 worker | ${rate(backfill.seconds)} | ${mbs(backfill.seconds)} | ${backfill.seconds.toFixed(1)} | ${ratios(backfill.seconds)} | ${Math.round(backfill.peakRssMiB)} MiB | |`,
);
console.log('\nRatios are the run\'s records/s over the peer\'s. End to end and the pyarrow peer include process start-up (about 1 s), group join and the last commit; the raw consume does not.');
if (values.summary !== undefined) {
  const seconds = { raw: raw.seconds, pyarrow: peer.seconds, oneWorker: one.seconds, twoWorkers: two.seconds, replay: backfill.seconds };
  writeFileSync(values.summary, JSON.stringify({ records: N, seconds }));
}

/**
 * `npm run bench:kafka [-- --records N]`: Kafka → GeoParquet(zstd) → local tier end to end with
 * one and two workers, against the same run's ceiling: raw kafkajs consumption of the same topic
 * with no processing. Needs `scripts/services up kafka postgres kcat`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import { writeSample } from '../src/records/sample.js';

const { Kafka, logLevel } = kafkajs;
const { values } = parseArgs({ options: { records: { type: 'string', default: '500000' } } });
const N = Number(values.records);
const brokers = process.env.KAFKA_BROKERS;
if (!brokers || !process.env.DATABASE_URL) throw new Error('KAFKA_BROKERS and DATABASE_URL: eval "$(scripts/services env --export)"');
const work = resolve('.bench');
mkdirSync(work, { recursive: true });
const input = join(work, `points-${N}.ndjson`);
if (!existsSync(input)) await writeSample(input, { points: N, features: 0, badCopies: 0, seed: 1 });
const inputBytes = statSync(input).size;
const run = Date.now();
const topic = `bench-${N}-${run}`;
const kafka = new Kafka({ brokers: brokers.split(','), clientId: 'bench', logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic, numPartitions: 4, replicationFactor: 1 }], waitForLeaders: true });
// kcat loads the topic (keyed by station, so all 4 partitions get data).
const keyed = `${input}.keyed`;
if (!existsSync(keyed)) {
  writeFileSync(keyed, readFileSync(input, 'utf8').split('\n').filter(Boolean).map((l) => `${/"station":"([^"]+)"/.exec(l)![1]}\t${l}`).join('\n') + '\n');
}
execFileSync(process.env.KCAT ?? 'kcat', ['-b', brokers, '-P', '-t', topic, '-K', '\t', '-z', 'lz4', '-X', 'partitioner=murmur2_random', '-l', keyed]);

async function lag(group: string): Promise<number> {
  const high = await admin.fetchTopicOffsets(topic);
  const done = new Map((await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]!.partitions.map((p) => [p.partition, Math.max(0, Number(p.offset))]));
  return high.reduce((n, p) => n + Number(p.high) - (done.get(p.partition) ?? 0), 0);
}

/** Ceiling: a kafkajs consumer group reading every message, touching nothing. */
async function rawConsume(): Promise<number> {
  const consumer = kafka.consumer({ groupId: `raw-${run}`, maxBytesPerPartition: 4 << 20 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const t0 = performance.now();
  let seen = 0;
  await new Promise<void>((done) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        seen += batch.messages.length;
        if (seen >= N) done();
      },
    });
  });
  const seconds = (performance.now() - t0) / 1000;
  await consumer.disconnect();
  return seconds;
}

const worker = `
  import { loadConfigFile } from './dist/src/config/load.js';
  import { pipelineSchema } from './dist/src/pipeline/schema.js';
  import { runPipeline } from './dist/src/pipeline/run.js';
  const { config } = loadConfigFile('benchmarks/pipelines/kafka-geoparquet.yaml', pipelineSchema);
  const controller = new AbortController();
  process.on('SIGTERM', () => controller.abort());
  const s = await runPipeline(config, { signal: controller.signal });
  console.log(JSON.stringify({ written: s.recordsWritten, objects: s.objects, bytes: s.bytesWritten, maxRssKiB: process.resourceUsage().maxRSS }));`;

/** Workers in one group, from spawn until the group has committed every offset. */
async function endToEnd(workers: number) {
  const group = `e2e-${workers}-${run}`;
  const out = join(work, `kafka-out-${workers}`);
  rmSync(out, { recursive: true, force: true });
  const env = { ...process.env, BENCH_TOPIC: topic, BENCH_GROUP: group, BENCH_OUT: out, BENCH_SCHEMA: `bench_${workers}_${run}` };
  const t0 = performance.now();
  const children = Array.from({ length: workers }, () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', worker], { env });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => process.stderr.write(d));
    return { child, result: new Promise<string>((r) => child.on('exit', () => r(stdout))) };
  });
  await new Promise((r) => setTimeout(r, 1000));
  while ((await lag(group).catch(() => N)) > 0) await new Promise((r) => setTimeout(r, 100));
  const seconds = (performance.now() - t0) / 1000;
  for (const c of children) c.child.kill('SIGTERM');
  const results = (await Promise.all(children.map((c) => c.result))).map((s) => JSON.parse(s.trim().split('\n').pop()!));
  const written = results.reduce((n, r) => n + r.written, 0);
  if (written !== N) throw new Error(`wrote ${written} of ${N}`);
  return { seconds, results };
}

const raw = await rawConsume();
const one = await endToEnd(1);
const two = await endToEnd(2);
await admin.deleteTopics({ topics: [topic] });
await admin.disconnect();

const MB = 1e6;
const line = (stage: string, seconds: number, note = '') =>
  `| ${stage} | ${Math.round(N / seconds).toLocaleString('en-US')} | ${(inputBytes / MB / seconds).toFixed(1)} | ${seconds.toFixed(2)} | ${note} |`;
const rss = (rs: { maxRssKiB: number }[]) => rs.map((r) => `${(r.maxRssKiB / 1024).toFixed(0)} MiB`).join(', ');
console.log(`\n${N.toLocaleString('en-US')} point records on a 4-partition topic (${(inputBytes / MB).toFixed(1)} MB NDJSON, lz4 by kcat), node ${process.version}\n`);
console.log('| stage | records/s | MB/s (payload) | seconds | note |');
console.log('|---|---:|---:|---:|---|');
console.log(line('ceiling: raw kafkajs consume, no processing', raw));
console.log(line('end to end, 1 worker (spawn → all committed)', one.seconds, `peak RSS ${rss(one.results)}; ${(raw / one.seconds).toFixed(2)}× ceiling`));
console.log(line('end to end, 2 workers (spawn → all committed)', two.seconds, `peak RSS ${rss(two.results)}; ${(raw / two.seconds).toFixed(2)}× ceiling`));

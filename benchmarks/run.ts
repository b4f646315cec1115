/**
 * `npm run bench [-- --records N]`: file → GeoParquet(zstd) → local tier, end to end and per
 * stage, against ceilings measured in the same run (raw read, parse-only). Prints a Markdown
 * table; numbers vary ±40% run to run on 2-core machines, so compare the ratios.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FileSource } from '../connectors/local-file/source.js';
import type { Batch } from '../src/core/batch.js';
import type { PointRecord } from '../src/core/record.js';
import { columnsToTable, packBatch } from '../src/encoders/arrow/batch-table.js';
import { GeoParquetEncoder } from '../src/encoders/parquet/geoparquet.js';
import { parseRecord } from '../src/records/parse.js';
import { writeSample } from '../src/records/sample.js';
import { compileClassifier } from '../src/stages/classify.js';
import { compileTemplate } from '../src/stages/object-key.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    /** Skip the Kafka part (benchmarks/kafka.ts), which starts Kafka and PostgreSQL. */
    'no-kafka': { type: 'boolean', default: false },
    'kafka-records': { type: 'string', default: '300000' },
    /** Skip the MigrationJob part (benchmarks/migration.ts). */
    'no-migration': { type: 'boolean', default: false },
    'migration-records': { type: 'string', default: '2000000' },
  },
});
const N = Number(values.records);
const work = resolve('.bench');
mkdirSync(work, { recursive: true });
const input = join(work, `points-${N}.ndjson`);
if (!existsSync(input)) await writeSample(input, { points: N, features: 0, badCopies: 0, seed: 1 });
const inputBytes = statSync(input).size;
const MB = 1e6;

interface Row {
  stage: string;
  seconds: number;
  records: number;
  bytes: number;
  note?: string;
}
const rows: Row[] = [];
const timed = async (stage: string, records: number, bytes: number, fn: () => Promise<void> | void, note?: string) => {
  const t0 = process.hrtime.bigint();
  await fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  rows.push({ stage, seconds, records, bytes, note });
  return seconds;
};

// Ceiling 1: read and split lines only.
await timed('ceiling: read + split lines', N, inputBytes, async () => {
  let n = 0;
  for await (const chunk of new FileSource({ type: 'file', path: input, format: 'ndjson', max_record_bytes: 1 << 20 }).chunks(new AbortController().signal)) {
    n += chunk.payloads.length;
  }
  if (n !== N) throw new Error(`read ${n}`);
});

// Ceiling 2: read + parse + validate, nothing else.
const sample: PointRecord[] = [];
await timed('ceiling: read + parse + validate', N, inputBytes, async () => {
  for await (const chunk of new FileSource({ type: 'file', path: input, format: 'ndjson', max_record_bytes: 1 << 20 }).chunks(new AbortController().signal)) {
    for (let i = 0; i < chunk.payloads.length; i++) {
      const r = parseRecord(chunk.payloads[i]!, chunk.positions[i]!);
      if (r.ok && sample.length < 100_000) sample.push(r.record as PointRecord);
    }
  }
});

// Per stage, on the first 100k records.
const S = sample.length;
const sampleBytes = sample.reduce((n, r) => n + r.size, 0);
const classify = compileClassifier({ rules: [{ match: { kind: 'point' }, memory_type: 'ObservationMemory' }], default: 'dead_letter' });
const template = compileTemplate('year/month/dataset');
await timed('stage: classify + route (key path)', S, sampleBytes, () => {
  for (const r of sample) template.expand(r, classify(r));
});
const batch: Batch = { memoryType: 'ObservationMemory', tier: 'hot', dataset: 'x', kind: 'point', partitionPath: 'p', records: sample, bytes: sampleBytes, flushReason: 'rows' };
await timed('stage: pack columns (main thread)', S, sampleBytes, () => void packBatch(batch));
const packed = packBatch(batch);
await timed('stage: Arrow build from columns (typed arrays)', S, sampleBytes, () => void columnsToTable(packed));
let parquetBytes = 0;
const encoder = new GeoParquetEncoder({ compression: { algorithm: 'zstd', level: 'low' }, rowGroupSize: 65_536 });
await timed('stage: pack + Arrow + GeoParquet encode (zstd), in process', S, sampleBytes, async () => {
  parquetBytes = (await encoder.encode(batch)).bytes.byteLength;
});
rows[rows.length - 1]!.note = `${(sampleBytes / parquetBytes).toFixed(1)}× smaller than NDJSON`;

// End to end in a child process, so its peak RSS is its own.
const endToEnd = (label: string, maxRows: number, encodeWorkers?: number) => {
  const out = join(work, 'out');
  rmSync(out, { recursive: true, force: true });
  const script = `
    import { loadConfigFile } from './dist/src/config/load.js';
    import { pipelineSchema } from './dist/src/pipeline/schema.js';
    import { runPipeline } from './dist/src/pipeline/run.js';
    const { config } = loadConfigFile('benchmarks/pipelines/file-geoparquet.yaml', pipelineSchema);
    if (process.env.BENCH_ENCODE_WORKERS) config.batch.encode_workers = Number(process.env.BENCH_ENCODE_WORKERS);
    const t0 = performance.now();
    const s = await runPipeline(config);
    const seconds = (performance.now() - t0) / 1000;
    console.log(JSON.stringify({ seconds, written: s.recordsWritten, bytes: s.bytesWritten, objects: s.objects, maxRssKiB: process.resourceUsage().maxRSS, encodeWorkers: config.batch.encode_workers }));`;
  const result = JSON.parse(
    execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, BENCH_INPUT: input, BENCH_OUT: out, BENCH_MAX_ROWS: String(maxRows), BENCH_ENCODE_WORKERS: encodeWorkers === undefined ? '' : String(encodeWorkers) },
      encoding: 'utf8',
    }),
  );
  if (result.written !== N) throw new Error(`wrote ${result.written} of ${N}`);
  rows.push({
    stage: label,
    seconds: result.seconds,
    records: N,
    bytes: inputBytes,
    note: `${result.objects} objects, ${(result.bytes / MB).toFixed(1)} MB out, peak RSS ${(result.maxRssKiB / 1024).toFixed(0)} MiB, encode_workers ${result.encodeWorkers}`,
  });
};
endToEnd('end to end: file → GeoParquet(zstd) → local tier + catalog', 100_000);
endToEnd('end to end, encoding on the main thread', 100_000, 0);

const parseCeiling = rows.find((r) => r.stage.startsWith('ceiling: read + parse'))!;
const e2e = rows.find((r) => r.stage.startsWith('end to end'))!;
const rate = (r: Row) => r.records / r.seconds;
console.log(`\n${N.toLocaleString('en-US')} point records, ${(inputBytes / MB).toFixed(1)} MB NDJSON, node ${process.version}\n`);
console.log('| stage | records/s | MB/s (input) | seconds | note |');
console.log('|---|---:|---:|---:|---|');
for (const r of rows) {
  console.log(`| ${r.stage} | ${Math.round(rate(r)).toLocaleString('en-US')} | ${(r.bytes / MB / r.seconds).toFixed(1)} | ${r.seconds.toFixed(2)} | ${r.note ?? ''} |`);
}
console.log(`\nend to end / parse-only ceiling: ${(rate(e2e) / rate(parseCeiling)).toFixed(2)}`);

if (!values['no-migration']) {
  console.log('\n## MigrationJob against a raw copy through the same backend\n');
  execFileSync(process.execPath, [resolve('dist/benchmarks/migration.js'), '--records', values['migration-records']!], { stdio: 'inherit' });
}

if (!values['no-kafka']) {
  console.log('\n## Kafka → GeoParquet(zstd) → local tiers + PostgreSQL catalog\n');
  execFileSync(process.execPath, [resolve('dist/benchmarks/kafka.js'), '--records', values['kafka-records']!], { stdio: 'inherit' });
}

/**
 * `npm run bench [-- --records N]`: file → GeoParquet(zstd) → local tier, end to end and per
 * stage, against ceilings measured in the same run (raw read, parse-only) and a peer on the same
 * NDJSON: DuckDB's `COPY … TO … (FORMAT parquet, COMPRESSION zstd)` (speed, peak RSS, bytes, bytes
 * per column). Prints Markdown tables and a summary against the peers, with the Kafka runs'
 * (benchmarks/kafka.ts); numbers vary ±40% run to run on 2-core machines, so compare the ratios.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
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
import { serviceEnv } from './peers/env.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    /** Skip the Kafka part (benchmarks/kafka.ts), which starts Kafka and PostgreSQL. */
    'no-kafka': { type: 'boolean', default: false },
    'kafka-records': { type: 'string', default: '300000' },
    /** Skip the MigrationJob part (benchmarks/migration.ts). */
    'no-migration': { type: 'boolean', default: false },
    'migration-records': { type: 'string', default: '2000000' },
    /** Skip the COG writer against gdal_translate (benchmarks/cog.ts). */
    'no-cog': { type: 'boolean', default: false },
    'cog-size': { type: 'string', default: '10000' },
    /** Skip the Zarr raster appends against zarr-python (benchmarks/zarr.ts). */
    'no-zarr': { type: 'boolean', default: false },
    /** Skip raster scenes through the pipeline and Kafka (benchmarks/raster.ts). */
    'no-raster': { type: 'boolean', default: false },
    'raster-size': { type: 'string', default: '20000' },
    'raster-kafka-size': { type: 'string', default: '4096' },
  },
});
const N = Number(values.records);
const work = resolve('.bench');
mkdirSync(work, { recursive: true });
const input = join(work, `points-${N}.ndjson`);
if (!existsSync(input)) await writeSample(input, { points: N, features: 0, badCopies: 0, seed: 1 });
const inputBytes = statSync(input).size;
const MB = 1e6;
const python = serviceEnv(['pyref'], ['EARTHMEM_PYTHON']).EARTHMEM_PYTHON!;

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
const out = join(work, 'out');
const endToEnd = (label: string, maxRows: number, encodeWorkers?: number) => {
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
    note: `${result.objects} objects, ${(result.bytes / MB).toFixed(2)} MB out, peak RSS ${(result.maxRssKiB / 1024).toFixed(0)} MiB, encode_workers ${result.encodeWorkers}`,
  });
  return result as { seconds: number; bytes: number; maxRssKiB: number };
};
const ours = endToEnd('end to end: file → GeoParquet(zstd) → local tier + catalog', 100_000);
endToEnd('end to end, encoding on the main thread (encode_workers 0)', 100_000, 0);

// The peer on the same NDJSON, in its own process too (benchmarks/peers/duckdb_copy.py).
const duckOut = join(work, 'duckdb.parquet');
rmSync(duckOut, { force: true });
const duck = JSON.parse(execFileSync(python, [resolve('benchmarks/peers/duckdb_copy.py'), input, duckOut], { encoding: 'utf8' })) as {
  seconds: number; rows: number; bytes: number; maxRssKiB: number;
};
if (duck.rows !== N) throw new Error(`DuckDB wrote ${duck.rows} of ${N}`);
rows.push({ stage: 'peer: DuckDB COPY read_json_auto → Parquet(zstd)', seconds: duck.seconds, records: N, bytes: inputBytes, note: `1 file, ${(duck.bytes / MB).toFixed(2)} MB out, peak RSS ${(duck.maxRssKiB / 1024).toFixed(0)} MiB` });

const parquetFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? parquetFiles(join(dir, e.name)) : e.name.endsWith('.parquet') ? [join(dir, e.name)] : []));
const columnBytes = (files: string[]) =>
  JSON.parse(execFileSync(python, [resolve('benchmarks/peers/parquet_columns.py'), ...files], { encoding: 'utf8' })) as Record<string, number>;
const ourColumns = columnBytes(parquetFiles(out));
const duckColumns = columnBytes([duckOut]);

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

console.log('\n| column | earth-memory B/record | DuckDB B/record | ratio to DuckDB |');
console.log('|---|---:|---:|---:|');
const perRecord = (b: number | undefined) => (b === undefined ? '–' : (b / N).toFixed(3));
for (const column of [...new Set([...Object.keys(ourColumns), ...Object.keys(duckColumns)])]) {
  const [a, b] = [ourColumns[column], duckColumns[column]];
  console.log(`| ${column} | ${perRecord(a)} | ${perRecord(b)} | ${a !== undefined && b !== undefined ? (a / b).toFixed(2) : ''} |`);
}
console.log(`| whole files (with footers) | ${perRecord(ours.bytes)} | ${perRecord(duck.bytes)} | ${(ours.bytes / duck.bytes).toFixed(2)} |`);

const summary: string[] = [
  `| file replay records/s, end to end vs DuckDB COPY | ${Math.round(N / ours.seconds).toLocaleString('en-US')} | ${Math.round(N / duck.seconds).toLocaleString('en-US')} | ${(duck.seconds / ours.seconds).toFixed(2)} |`,
  `| output bytes vs DuckDB (zstd) | ${ours.bytes.toLocaleString('en-US')} | ${duck.bytes.toLocaleString('en-US')} | ${(ours.bytes / duck.bytes).toFixed(2)} |`,
  `| peak RSS vs DuckDB | ${(ours.maxRssKiB / 1024).toFixed(0)} MiB | ${(duck.maxRssKiB / 1024).toFixed(0)} MiB | ${(ours.maxRssKiB / duck.maxRssKiB).toFixed(2)} |`,
];

if (!values['no-migration']) {
  console.log('\n## MigrationJob against a raw copy through the same backend\n');
  execFileSync(process.execPath, [resolve('dist/benchmarks/migration.js'), '--records', values['migration-records']!], { stdio: 'inherit' });
}

if (!values['no-kafka']) {
  console.log('\n## Kafka → GeoParquet(zstd) → local tiers + PostgreSQL catalog\n');
  const kafkaSummary = join(work, 'kafka-summary.json');
  rmSync(kafkaSummary, { force: true });
  execFileSync(process.execPath, [resolve('dist/benchmarks/kafka.js'), '--records', values['kafka-records']!, '--summary', kafkaSummary], { stdio: 'inherit' });
  const kafka = JSON.parse(readFileSync(kafkaSummary, 'utf8')) as { records: number; seconds: { raw: number; pyarrow: number; oneWorker: number; twoWorkers: number; replay: number } };
  const r = (s: number) => Math.round(kafka.records / s).toLocaleString('en-US');
  const { raw, pyarrow, oneWorker, twoWorkers, replay } = kafka.seconds;
  summary.push(
    `| Kafka records/s, 1 worker vs raw kafkajs consume | ${r(oneWorker)} | ${r(raw)} | ${(raw / oneWorker).toFixed(2)} |`,
    `| Kafka records/s, 1 worker vs confluent-kafka + pyarrow | ${r(oneWorker)} | ${r(pyarrow)} | ${(pyarrow / oneWorker).toFixed(2)} |`,
    `| Kafka records/s, 2 workers vs 1 worker | ${r(twoWorkers)} | ${r(oneWorker)} | ${(oneWorker / twoWorkers).toFixed(2)} |`,
    `| Kafka backfill (\`earthmem replay\`, 1 worker) vs raw kafkajs consume | ${r(replay)} | ${r(raw)} | ${(raw / replay).toFixed(2)} |`,
  );
}

if (!values['no-cog']) {
  console.log('\n## COG writer against gdal_translate -of COG\n');
  const cogSummary = join(work, 'cog-summary.json');
  rmSync(cogSummary, { force: true });
  execFileSync(process.execPath, [resolve('dist/benchmarks/cog.js'), '--size', values['cog-size']!, '--summary', cogSummary], { stdio: 'inherit' });
  const cog = JSON.parse(readFileSync(cogSummary, 'utf8')) as { size: number; ours: { seconds: number; bytes: number }; gdal: { seconds: number; bytes: number } };
  summary.push(
    `| COG ${cog.size}² float32 wall s vs gdal_translate -of COG (GDAL ÷ ours: ≥ 1 is not slower) | ${cog.ours.seconds.toFixed(2)} | ${cog.gdal.seconds.toFixed(2)} | ${(cog.gdal.seconds / cog.ours.seconds).toFixed(2)} |`,
    `| COG output bytes vs GDAL | ${cog.ours.bytes.toLocaleString('en-US')} | ${cog.gdal.bytes.toLocaleString('en-US')} | ${(cog.ours.bytes / cog.gdal.bytes).toFixed(3)} |`,
  );
}

if (!values['no-zarr']) {
  console.log('\n## Zarr raster appends against zarr-python\n');
  const zarrSummary = join(work, 'zarr-summary.json');
  rmSync(zarrSummary, { force: true });
  execFileSync(process.execPath, [resolve('dist/benchmarks/zarr.js'), '--rounds', '3', '--summary', zarrSummary], { stdio: 'inherit' });
  const zarr = JSON.parse(readFileSync(zarrSummary, 'utf8')) as { rawMB: number; ours: { seconds: number; p50: number }; peer: { seconds: number; p50: number } };
  summary.push(
    `| Zarr raster append MB/s raw (zstd 3, fsynced commit per time step) vs zarr-python 3 | ${(zarr.rawMB / zarr.ours.seconds).toFixed(0)} | ${(zarr.rawMB / zarr.peer.seconds).toFixed(0)} | ${(zarr.peer.seconds / zarr.ours.seconds).toFixed(2)} |`,
    `| Zarr commit latency per time step, p50 ms | ${zarr.ours.p50.toFixed(0)} | ${zarr.peer.p50.toFixed(0)} | ${(zarr.ours.p50 / zarr.peer.p50).toFixed(2)} |`,
  );
}

if (!values['no-raster']) {
  console.log('\n## Raster scenes through the pipeline (tile source, Kafka)\n');
  const rasterSummary = join(work, 'raster-summary.json');
  rmSync(rasterSummary, { force: true });
  execFileSync(process.execPath, [resolve('dist/benchmarks/raster.js'), '--size', values['raster-size']!, '--kafka-size', values['raster-kafka-size']!, '--summary', rasterSummary], { stdio: 'inherit' });
  const raster = JSON.parse(readFileSync(rasterSummary, 'utf8')) as Record<'synthetic' | 'kafka', { size: number; seconds: number; written: number; maxRssKiB: number }>;
  const { synthetic, kafka } = raster;
  summary.push(
    `| raster ${synthetic.size}² float32 scene: peak RSS vs its pixels | ${(synthetic.maxRssKiB / 1024).toFixed(0)} MiB | ${((synthetic.size ** 2 * 4) / 2 ** 20).toFixed(0)} MiB | ${((synthetic.maxRssKiB * 1024) / (synthetic.size ** 2 * 4)).toFixed(2)} |`,
    `| raster tiles/s through Kafka (${kafka.size}², 512-px float32 tiles), pixel MB/s | ${(kafka.written / kafka.seconds).toFixed(1)} tiles/s | ${((kafka.size ** 2 * 4) / 1e6 / kafka.seconds).toFixed(1)} MB/s | – |`,
  );
}

console.log('\n## Summary against peers in the same run\n');
console.log('| job | earth-memory | peer in the same run | ratio |');
console.log('|---|---:|---:|---:|');
for (const line of summary) console.log(line);
console.log('\nRatios: records/s over the peer\'s (above 1: faster), bytes and RSS over the peer\'s (below 1: smaller).');

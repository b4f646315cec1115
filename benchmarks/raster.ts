/**
 * `npm run build && node dist/benchmarks/raster.js [--size 20000] [--kafka-size 4096] [--tile 512] [--summary FILE]`:
 * raster scenes through the whole pipeline (ledger, tile decode, scene assembly, COG writer,
 * local tier, SQLite catalog), each run in its own process under /usr/bin/time for its peak RSS:
 *  1. a `--size`² float32 scene from an in-process tile source (what a file replay feeds), to see
 *     that memory stays far below the scene's size (20,000² float32 = 1.6 GB of pixels);
 *  2. a `--kafka-size`² float32 scene produced to Kafka as tile envelopes, consumed end to end:
 *     tiles/s and MB/s (pixel bytes) from the worker's start to the scene catalogued.
 * Tiles are zstd-compressed envelopes (level 1). COG options: DEFLATE, predictor 2, 256-px blocks, overviews (the spec defaults).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Committable } from '../src/core/offset-tracker.js';
import type { RawChunk, Source } from '../src/core/source.js';
import { parseConfigValue } from '../src/config/load.js';
import { encodeRasterTile, type RasterTileHeader } from '../src/records/raster.js';
import { pipelineSchema } from '../src/pipeline/schema.js';
import { runPipeline } from '../src/pipeline/run.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '20000' },
    'kafka-size': { type: 'string', default: '4096' },
    tile: { type: 'string', default: '512' },
    child: { type: 'string' },
    summary: { type: 'string' },
  },
});
const TILE = Number(values.tile);
const work = resolve('.bench/raster');
const MB = 1e6;

function header(size: number, x: number, y: number, w: number, h: number): RasterTileHeader {
  return {
    dataset: 'bench', variable: 'lst', time: '2024-06-01T00:00:00Z', crs: 32632, scene_id: `bench-${size}`,
    scene_width: size, scene_height: size, geotransform: [600000, 10, 0, 5000000, 0, -10],
    x, y, width: w, height: h, dtype: 'float32', nodata: -9999,
  };
}

/** A smooth field with a little noise, like benchmarks/cog.ts's (compresses like real temperatures). */
function tilePixels(x: number, y: number, w: number, h: number): Uint8Array {
  const a = new Float32Array(w * h);
  let seed = (x * 7919 + y * 104729) >>> 0;
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const X = x + c;
      const Y = y + r;
      a[r * w + c] = 280 + 15 * Math.sin(X / 400) * Math.cos(Y / 300) + 3 * Math.sin((X + Y) / 37) + (seed / 4294967296) * 0.05;
    }
  }
  return new Uint8Array(a.buffer);
}

async function* envelopes(size: number): AsyncGenerator<Uint8Array> {
  for (let y = 0; y < size; y += TILE) {
    for (let x = 0; x < size; x += TILE) {
      const w = Math.min(TILE, size - x);
      const h = Math.min(TILE, size - y);
      yield encodeRasterTile(header(size, x, y, w, h), tilePixels(x, y, w, h), 'zstd', 1);
    }
  }
}

const tilesOf = (size: number) => Math.ceil(size / TILE) ** 2;

function configOf(dir: string, source: Record<string, unknown>) {
  return parseConfigValue(
    {
      source,
      classify: { rules: [{ match: { kind: 'raster' }, memory_type: 'SurfaceMemory' }] },
      storage: { tier_configs: { hot: { primary_backend: { type: 'local_file', base_path: join(dir, 'hot'), format: 'cog' } } } },
      raster: { tmp_dir: dir },
      catalog: { type: 'sqlite', path: join(dir, 'catalog.sqlite') },
      dead_letter: { type: 'local_file', path: join(dir, 'dead-letter.ndjson') },
    },
    'raster bench',
    pipelineSchema,
  );
}

/** The tiles of one scene as a bounded source, four per chunk (what raster_file's replay feeds the pipeline). */
class SceneSource implements Source {
  readonly name = 'bench-scene';
  readonly bounded = true;
  readonly shared = false;
  readonly payloadFormat = 'raster_tile';
  constructor(private readonly size: number) {}
  async *chunks(): AsyncIterable<RawChunk> {
    let offset = 0;
    let chunk: RawChunk = { payloads: [], positions: [] };
    for await (const payload of envelopes(this.size)) {
      chunk.payloads.push(payload);
      chunk.positions.push({ source: this.name, partition: 0, offset: ++offset });
      if (chunk.payloads.length === 4) {
        yield chunk;
        chunk = { payloads: [], positions: [] };
      }
    }
    if (chunk.payloads.length > 0) yield chunk;
  }
  async commit(_offsets: Committable[]): Promise<void> {}
  async close(): Promise<void> {}
}

if (values.child) {
  const [mode, sizeText, dir, topic] = values.child.split(',');
  const size = Number(sizeText);
  const t0 = performance.now();
  if (mode === 'synthetic') {
    const config = configOf(dir!, { type: 'file', path: 'unused.ndjson' });
    const summary = await runPipeline(config, { source: new SceneSource(size) });
    process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, written: summary.recordsWritten, bytes: summary.bytesWritten }));
  } else {
    const config = configOf(dir!, { type: 'kafka', format: 'raster_tile', brokers: process.env.KAFKA_BROKERS, topics: [topic], group_id: `g-${topic}`, start: 'earliest', lag_log_interval: '0s', max_record_bytes: '16MiB' });
    const abort = new AbortController();
    const tiles = tilesOf(size);
    const summary = await runPipeline(config, {
      signal: abort.signal,
      progressIntervalMs: 50,
      onProgress: (s) => {
        if (s.recordsWritten >= tiles) abort.abort();
      },
    });
    process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, written: summary.recordsWritten, bytes: summary.bytesWritten }));
  }
  process.exit(0);
}

interface ChildResult {
  seconds: number;
  written: number;
  bytes: number;
  maxRssKiB: number;
}

function child(arg: string): ChildResult {
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, process.argv[1]!, '--tile', String(TILE), '--child', arg], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`child ${arg} failed: ${r.stderr}`);
  const kib = Number(r.stderr.trim().split('\n').at(-1));
  return { ...(JSON.parse(r.stdout) as Omit<ChildResult, 'maxRssKiB'>), maxRssKiB: kib };
}

mkdirSync(work, { recursive: true });
const size = Number(values.size);
const syntheticDir = join(work, `synthetic-${size}`);
rmSync(syntheticDir, { recursive: true, force: true });
mkdirSync(syntheticDir, { recursive: true });
const synthetic = child(`synthetic,${size},${syntheticDir}`);
rmSync(syntheticDir, { recursive: true, force: true });

const kafkaSize = Number(values['kafka-size']);
const kafkaDir = join(work, `kafka-${kafkaSize}`);
rmSync(kafkaDir, { recursive: true, force: true });
mkdirSync(kafkaDir, { recursive: true });
const topic = `bench-raster-${process.pid}-${Date.now().toString(36)}`;
const { Kafka, logLevel } = await import('kafkajs');
const kafka = new Kafka({ brokers: process.env.KAFKA_BROKERS!.split(','), clientId: 'bench-raster', logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
await admin.disconnect();
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
let i = 0;
for await (const envelope of envelopes(kafkaSize)) await producer.send({ topic, acks: -1, messages: [{ value: Buffer.from(envelope), partition: i++ % 3 }] });
await producer.disconnect();
const viaKafka = child(`kafka,${kafkaSize},${kafkaDir},${topic}`);
rmSync(kafkaDir, { recursive: true, force: true });

const pixelMB = (n: number) => (n * n * 4) / MB;
console.log(`raster scenes through the pipeline: float32, ${TILE}-px tiles, COG DEFLATE predictor 2, 256-px blocks, overviews; ${process.version}`);
console.log('| run | scene | tiles | wall s | tiles/s | pixel MB/s | COG MB | peak RSS |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const [name, n, r] of [['in-process tile source', size, synthetic], ['Kafka (3 partitions) → worker', kafkaSize, viaKafka]] as const) {
  console.log(
    `| ${name} | ${n} × ${n} (${pixelMB(n).toFixed(0)} MB) | ${r.written} | ${r.seconds.toFixed(1)} | ${(r.written / r.seconds).toFixed(1)} | ${(pixelMB(n) / r.seconds).toFixed(1)} | ${(r.bytes / MB).toFixed(1)} | ${(r.maxRssKiB / 1024).toFixed(0)} MiB |`,
  );
}
if (values.summary) writeFileSync(values.summary, JSON.stringify({ synthetic: { size, ...synthetic }, kafka: { size: kafkaSize, ...viaKafka } }));

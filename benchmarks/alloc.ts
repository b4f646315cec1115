/**
 * `npm run bench:alloc [-- --records N --top K]`: what the main thread allocates during a file
 * replay (benchmarks/pipelines/file-geoparquet.yaml), short-lived objects included. V8's
 * sampling heap profiler is told to keep the samples of objects the collector freed, so the total
 * is everything allocated, not what is live at the end: per-record garbage is what sizes the heap
 * and the GC time (benchmarks/RESULTS.md). Prints the total, bytes per record and the functions
 * that allocate most (self), as Markdown.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../src/config/load.js';
import { runPipeline } from '../src/pipeline/run.js';
import { pipelineSchema } from '../src/pipeline/schema.js';
import { writeSample } from '../src/records/sample.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '500000' },
    top: { type: 'string', default: '15' },
    'encode-workers': { type: 'string', default: '1' },
  },
});
const N = Number(values.records);
const work = resolve('.bench');
mkdirSync(work, { recursive: true });
const input = join(work, `points-${N}.ndjson`);
if (!existsSync(input)) await writeSample(input, { points: N, features: 0, badCopies: 0, seed: 1 });
const out = join(work, 'alloc-out');
rmSync(out, { recursive: true, force: true });
process.env.BENCH_INPUT = input;
process.env.BENCH_OUT = out;
const { config } = loadConfigFile('benchmarks/pipelines/file-geoparquet.yaml', pipelineSchema);
config.batch.encode_workers = Number(values['encode-workers']);

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const session = new Session();
session.connect();
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 16_384,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
const t0 = performance.now();
const summary = await runPipeline(config);
const seconds = (performance.now() - t0) / 1000;
const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: ProfileNode } };
session.disconnect();
if (summary.recordsWritten !== N) throw new Error(`wrote ${summary.recordsWritten} of ${N}`);

const byFunction = new Map<string, number>();
let total = 0;
const walk = (node: ProfileNode): void => {
  total += node.selfSize;
  if (node.selfSize > 0) {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url === '' ? '(native)' : `${url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')}:${lineNumber + 1}`;
    const name = `${functionName || '(anonymous)'} ${where}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + node.selfSize);
  }
  node.children.forEach(walk);
};
walk(profile.head);

const MiB = 1024 * 1024;
console.log(`file replay of ${N} points, encode_workers ${config.batch.encode_workers}: ${seconds.toFixed(2)} s (profiled), main thread allocated ${(total / MiB).toFixed(1)} MiB, ${(total / N).toFixed(0)} B per record\n`);
console.log('| function (self) | MiB | share |\n|---|---:|---:|');
for (const [name, bytes] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
  console.log(`| \`${name}\` | ${(bytes / MiB).toFixed(1)} | ${((100 * bytes) / total).toFixed(1)}% |`);
}

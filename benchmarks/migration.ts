/**
 * `npm run bench:migration [-- --records N]`: MigrationJob throughput against a raw copy of the
 * same objects through the same backend, in the same run. Objects are large (one per dataset and
 * month, ≥ 8 MB) so per-object overheads do not hide the copy. Two moves:
 * - hot → glacier, same codec: the job streams the bytes across (copy, read-back, switch, delete);
 * - hot → cold, zstd 1 → zstd 9: the job decodes and re-encodes each object.
 * The ceiling is a plain getRange/put loop over the same objects with the same backend type.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalFileStorage } from '../connectors/local-file/storage.js';
import { MemoryCodex } from '../src/codex/memory-codex.js';
import { writeSample } from '../src/records/sample.js';

const { values } = parseArgs({ options: { records: { type: 'string', default: '2000000' } } });
const N = Number(values.records);
const work = resolve('.bench/migration');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const input = join(work, 'in.ndjson');
await writeSample(input, { points: N, features: 0, badCopies: 0, seed: 2, days: 60 });
const pipeline = join(work, 'pipeline.yaml');
const tier = (name: string, level: string) => `    ${name}:
      primary_backend: { type: local_file, base_path: ${join(work, name)}, format: parquet, file_organization: "{dataset}" }
      compression: { algorithm: zstd, level: ${level} }
`;
writeFileSync(
  pipeline,
  `source: { type: file, path: ${input} }
classify: { default: ObservationMemory }
batch: { max_rows: 10000000, max_bytes: 1GiB, max_open_bytes: 2GiB, max_in_flight_bytes: 4GiB }
storage:
  tier_configs:
${tier('hot', 'low')}${tier('cold', 'high')}${tier('glacier', 'low')}    warm:
      primary_backend: { type: local_file, base_path: ${join(work, 'raw-copy')} }
catalog: { type: sqlite, path: ${join(work, 'catalog.sqlite')} }
dead_letter: { type: local_file, path: ${join(work, 'dead.ndjson')} }
`,
);
const codex = MemoryCodex.fromFile(pipeline);
await codex.run();
const objects = await codex.listObjects({ tier: 'hot' });
const bytes = objects.reduce((n, r) => n + r.bytes, 0);
const MB = 1e6;

// Ceiling: the same objects copied by getRange (8 MiB) + streamed put on the same backend type, and read back.
const from = new LocalFileStorage({ base_path: join(work, 'hot'), permissions: '0644' });
const to = new LocalFileStorage({ base_path: join(work, 'raw-copy'), permissions: '0644' });
const t0 = performance.now();
for (const row of objects) {
  async function* chunks() {
    for (let at = 0; at < row.bytes; at += 8 << 20) yield await from.getRange(row.key, at, Math.min(8 << 20, row.bytes - at));
  }
  await to.put(row.key, chunks());
  await to.get(row.key);
}
const rawSeconds = (performance.now() - t0) / 1000;

const timed = (id: string, destination: 'glacier' | 'cold' | 'hot', source: 'hot' | 'glacier', maxBytesPerSecond?: number): { seconds: number; rssMiB: number } => {
  const script = `
    import { MemoryCodex } from './dist/src/codex/memory-codex.js';
    const t = performance.now();
    const status = await MemoryCodex.fromFile(${JSON.stringify(pipeline)}).executeMigration({ id: '${id}', source_tier: '${source}', destination_tier: '${destination}', concurrency: 2${maxBytesPerSecond === undefined ? '' : `, max_bytes_per_second: ${maxBytesPerSecond}`} });
    if (status.state !== 'completed') throw new Error(JSON.stringify(status));
    console.log(JSON.stringify({ seconds: (performance.now() - t) / 1000, rssMiB: process.resourceUsage().maxRSS / 1024 }));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
};
const streamed = timed('bench-raw', 'glacier', 'hot');
// The throttle: the same streamed copy back, held to 10 MB/s (a few seconds of copying, so the
// job's fixed costs weigh little in the rate).
const limit = 10 * MB;
const throttled = timed('bench-throttled', 'hot', 'glacier', limit);
const reencoded = timed('bench-reencode', 'cold', 'hot');

console.log(`\n${objects.length} objects, ${(bytes / MB).toFixed(1)} MB (${(bytes / objects.length / MB).toFixed(1)} MB each), ${N.toLocaleString('en-US')} records, node ${process.version}\n`);
console.log('| move | MB/s | seconds | ratio to raw copy | peak RSS |');
console.log('|---|---:|---:|---:|---:|');
const line = (what: string, seconds: number, rss: string) =>
  console.log(`| ${what} | ${(bytes / MB / seconds).toFixed(1)} | ${seconds.toFixed(2)} | ${(rawSeconds / seconds).toFixed(2)} | ${rss} |`);
line('ceiling: raw copy + read back, local_file → local_file', rawSeconds, '');
line('MigrationJob hot → glacier, same codec (streamed copy, verify, switch, delete)', streamed.seconds, `${streamed.rssMiB.toFixed(0)} MiB`);
line(`MigrationJob glacier → hot, same codec, max_bytes_per_second ${(limit / MB).toFixed(1)} MB`, throttled.seconds, `${throttled.rssMiB.toFixed(0)} MiB`);
line('MigrationJob hot → cold, zstd 1 → 9 (decode, re-encode, verify, switch, delete)', reencoded.seconds, `${reencoded.rssMiB.toFixed(0)} MiB`);
const achieved = bytes / throttled.seconds;
console.log(`\nthrottle: ${(achieved / MB).toFixed(2)} MB/s against max_bytes_per_second ${(limit / MB).toFixed(2)} MB/s (${(((achieved - limit) / limit) * 100).toFixed(1)}%)`);

/**
 * `npm run bench:zarr [-- --size 2000 --steps 20 --rounds 3]`: Zarr append throughput for raster tiles
 * (MB/s of raw float32 pixels, zstd level 3, chunks (1, 500, 500), v2) against zarr-python
 * (zarr 3.1, numcodecs Zstd level 3) appending the same array, one time step per append, in the
 * same run from the same raw bytes. Also the commit latency per time step (one append: chunks,
 * then metadata, consolidated last; each put fsynced) as p50 / p95. Ours and the peer take turns
 * `--rounds` times; the table shows the round with the median ratio, and every ratio.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalFileStorage } from '../connectors/local-file/storage.js';
import type { RasterRecord, RasterScene } from '../src/core/raster.js';
import { chunkCodec } from '../src/encoders/zarr/codecs.js';
import { appendRasterTiles } from '../src/encoders/zarr/raster.js';
import { ZarrStore } from '../src/encoders/zarr/store.js';

const { values } = parseArgs({ options: { size: { type: 'string', default: '2000' }, steps: { type: 'string', default: '20' }, rounds: { type: 'string', default: '3' }, summary: { type: 'string' } } });
const N = Number(values.size);
const STEPS = Number(values.steps);
/** Ours and the peer take turns this many times: on a shared machine one pair says little, the median of the ratios more. */
const ROUNDS = Number(values.rounds);
const TILE = 500;
const work = resolve('.bench/zarr');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// A smooth field with noise, like a measured variable: compresses as real data does (not all zeros, not random).
const raw = join(work, 'in.f32');
const field = new Float32Array(N * N);
for (let y = 0; y < N; y++) for (let x = 0; x < N; x++) field[y * N + x] = Math.round((280 + 10 * Math.sin(x / 97) * Math.cos(y / 131) + ((x * 7919 + y * 104729) % 1000) / 1000) * 100) / 100;
writeFileSync(raw, new Uint8Array(field.buffer));
const pixels = new Uint8Array(readFileSync(raw));
const rawMB = (N * N * 4 * STEPS) / 1e6;

const scene: RasterScene = { sceneId: 'b', width: N, height: N, dtype: 'float32', bands: 1, geotransform: [600000, 10, 0, 5000000, 0, -10], crs: 32632, epsg: 32632, nodata: null };
const DAY = 86_400_000_000;
const origin = Date.UTC(2024, 0, 1) * 1000;
// One time step's tiles, built once: each step appends the same pixels at its own time, as the
// peer writes the same array at each step (building them is not the writer's work).
const stepTiles: RasterRecord[] = [];
for (let y = 0; y < N; y += TILE) {
  for (let x = 0; x < N; x += TILE) {
    const w = Math.min(TILE, N - x), h = Math.min(TILE, N - y);
    const px = new Uint8Array(w * h * 4);
    for (let j = 0; j < h; j++) px.set(pixels.subarray(((y + j) * N + x) * 4, ((y + j) * N + x + w) * 4), j * w * 4);
    stepTiles.push({ kind: 'raster', position: { source: 'bench', partition: 0, offset: stepTiles.length }, size: px.byteLength, dataset: 'd', variable: 'v', timeUs: origin, scene, x, y, width: w, height: h, pixels: px, bboxNative: [0, 0, 0, 0], bbox: [0, 0, 0, 0] } as RasterRecord);
  }
}
const tilesOf = (step: number): RasterRecord[] => stepTiles.map((t, i) => ({ ...t, timeUs: origin + step * DAY, position: { source: 'bench', partition: 0, offset: step * 1000 + i } }));

async function oursOnce(): Promise<{ seconds: number; latencies: number[] }> {
  rmSync(join(work, 'ours'), { recursive: true, force: true });
  const store = new ZarrStore(new LocalFileStorage({ base_path: join(work, 'ours'), permissions: 'rw-r--r--' }), 'v.zarr', { format: 2, separator: '/', codec: chunkCodec('zstd', 3, 2) });
  const latencies: number[] = [];
  const t0 = performance.now();
  for (let step = 0; step < STEPS; step++) {
    const tiles = tilesOf(step);
    const s = performance.now();
    await appendRasterTiles(store, tiles, { timeStepUs: DAY, originUs: origin, chunks: [1, 500, 500] });
    latencies.push(performance.now() - s);
  }
  return { seconds: (performance.now() - t0) / 1000, latencies };
}

const python = process.env.EARTHMEM_PYTHON ?? resolve('.services/venv/bin/python');
const peerOnce = (): [number, number, number] =>
  execFileSync(python, ['-c', `
import sys, time, shutil, numpy as np, zarr
from numcodecs import Zstd
n, steps, raw, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
shutil.rmtree(out, ignore_errors=True)
a = np.fromfile(raw, dtype="<f4").reshape(n, n)
t0 = time.perf_counter()
g = zarr.open_group(out, mode="w", zarr_format=2)
z = g.create_array("v", shape=(0, n, n), chunks=(1, 500, 500), dtype="<f4", compressors=Zstd(level=3), fill_value=float("nan"))
lat = []
for t in range(steps):
    s = time.perf_counter()
    z.resize((t + 1, n, n))
    z[t] = a
    zarr.consolidate_metadata(out)
    lat.append(time.perf_counter() - s)
print(time.perf_counter() - t0, sorted(lat)[len(lat) // 2] * 1000, sorted(lat)[int(len(lat) * 0.95)] * 1000)
`, String(N), String(STEPS), raw, join(work, 'peer.zarr')]).toString().trim().split(' ').map(Number) as [number, number, number];

const rounds: { ours: Awaited<ReturnType<typeof oursOnce>>; peer: [number, number, number] }[] = [];
for (let r = 0; r < ROUNDS; r++) rounds.push({ ours: await oursOnce(), peer: peerOnce() });
const ratios = rounds.map((r) => r.peer[0] / r.ours.seconds);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pick = rounds[ratios.indexOf(median(ratios))]!;
const { seconds: ours, latencies } = pick.ours;
const peer = pick.peer;
const [peerSeconds, peerP50, peerP95] = peer as [number, number, number];
const sorted = [...latencies].sort((a, b) => a - b);
const du = (path: string) => Number(execFileSync('du', ['-sb', path]).toString().split('\t')[0]);
console.log(`Zarr append, ${STEPS} time steps of ${N}×${N} float32 (${rawMB.toFixed(0)} MB raw), chunks (1, 500, 500), zstd 3, v2`);
console.log('| writer | seconds | MB/s raw | commit p50 ms | commit p95 ms | bytes out |');
console.log('|---|---:|---:|---:|---:|---:|');
console.log(`| earth-memory appendRasterTiles (native zstd, fsync per key) | ${ours.toFixed(2)} | ${(rawMB / ours).toFixed(0)} | ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} | ${sorted[Math.floor(sorted.length * 0.95)]!.toFixed(0)} | ${du(join(work, 'ours'))} |`);
console.log(`| zarr-python 3.1 + numcodecs Zstd (no fsync) | ${peerSeconds.toFixed(2)} | ${(rawMB / peerSeconds).toFixed(0)} | ${peerP50.toFixed(0)} | ${peerP95.toFixed(0)} | ${du(join(work, 'peer.zarr'))} |`);
console.log(`ratio (ours / zarr-python, MB/s): ${(peerSeconds / ours).toFixed(2)}× (the median round of ${ROUNDS}; every round: ${ratios.map((r) => `${r.toFixed(2)}×`).join(', ')})`);
if (values.summary !== undefined) {
  writeFileSync(values.summary, JSON.stringify({ rawMB, ours: { seconds: ours, p50: sorted[Math.floor(sorted.length / 2)], p95: sorted[Math.floor(sorted.length * 0.95)] }, peer: { seconds: peerSeconds, p50: peerP50, p95: peerP95 }, ratios }));
}

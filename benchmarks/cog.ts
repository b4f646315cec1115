/**
 * `npm run build && node dist/benchmarks/cog.js [--size 10000] [--threads N]`: our COG writer
 * against GDAL's COG driver on the same float32 raster (DEFLATE, predictor 2, 256-px blocks,
 * overviews), in the same run. Both read the same raw file (page-cached); each runs in its own
 * process, so peak RSS is its own. Prints wall and CPU times, their ratio, peak RSS and output
 * sizes; ours runs twice, with libuv's default pool (4 threads) and with one thread.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, openSync, readSync, closeSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { CogWriter } from '../src/encoders/cog/writer.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '10000' },
    child: { type: 'string' },
    resampling: { type: 'string', default: 'average' },
    /** Also write the figures as JSON here (npm run bench's summary). */
    summary: { type: 'string' },
  },
});
const N = Number(values.size);
const work = resolve('.bench/cog');
const raw = join(work, `in-${N}.f32`);
const GT = [600000, 10, 0, 5000000, 0, -10] as const;

if (values.child) {
  // Child: stream the raw file through the writer, block row by block row.
  const t0 = performance.now();
  const writer = new CogWriter(
    { width: N, height: N, dtype: 'float32', geotransform: GT, crs: 32632, nodata: null },
    { compression: 'DEFLATE', predictor: 2, blocksize: 256, overview_resampling: values.resampling as 'average' | 'nearest' },
  );
  const fd = openSync(raw, 'r');
  const strip = new Float32Array(N * 256);
  const stripBytes = new Uint8Array(strip.buffer);
  const { across, down } = writer.grid;
  for (let row = 0; row < down; row++) {
    const rows = Math.min(256, N - row * 256);
    readSync(fd, stripBytes, 0, rows * N * 4, row * 256 * N * 4);
    for (let col = 0; col < across; col++) {
      const { width, height } = writer.blockSize(col, row);
      const block = new Float32Array(width * height);
      for (let y = 0; y < height; y++) block.set(strip.subarray(y * N + col * 256, y * N + col * 256 + width), y * width);
      await writer.writeBlock(col, row, block);
    }
  }
  closeSync(fd);
  await pipeline(Readable.from(writer.finish()), createWriteStream(values.child));
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ seconds, maxRssKiB: process.resourceUsage().maxRSS, bigtiff: writer.result?.bigtiff }) + '\n');
  process.exit(0);
}

mkdirSync(work, { recursive: true });
if (!existsSync(raw) || statSync(raw).size !== N * N * 4) {
  // A smooth field (terrain-like) plus sensor noise in the low bits, written strip by strip.
  const fd = openSync(raw, 'w');
  const row = new Float32Array(N);
  let seed = 12345;
  for (let y = 0; y < N; y++) {
    for (let x = 0; x < N; x++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      row[x] = 280 + 15 * Math.sin(x / 400) * Math.cos(y / 300) + 3 * Math.sin((x + y) / 37) + (seed / 4294967296) * 0.05;
    }
    writeSync(fd, new Uint8Array(row.buffer));
  }
  closeSync(fd);
}
const vrt = join(work, `in-${N}.vrt`);
writeFileSync(
  vrt,
  `<VRTDataset rasterXSize="${N}" rasterYSize="${N}">
  <SRS>EPSG:32632</SRS>
  <GeoTransform>${GT.join(', ')}</GeoTransform>
  <VRTRasterBand dataType="Float32" band="1" subClass="VRTRawRasterBand">
    <SourceFilename relativetoVRT="1">in-${N}.f32</SourceFilename>
    <ImageOffset>0</ImageOffset><PixelOffset>4</PixelOffset><LineOffset>${N * 4}</LineOffset><ByteOrder>LSB</ByteOrder>
  </VRTRasterBand>
</VRTDataset>
`,
);
// Warm the page cache for both.
execFileSync('cat', [raw], { stdio: ['ignore', 'ignore', 'inherit'] });

const ours = join(work, 'ours.tif');
const gdalOut = join(work, 'gdal.tif');
const timed = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) => {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', cmd, ...args], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const [seconds, kib, user, sys] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  return { seconds: seconds!, maxRssKiB: kib!, cpu: user! + sys!, stdout: r.stdout };
};
const loadBefore = loadavg().map((l) => l.toFixed(2)).join(' ');
const oursArgs = [process.argv[1]!, '--size', String(N), '--child', ours, '--resampling', values.resampling!];
const oursRun = timed(process.execPath, oursArgs);
// The same with one libuv thread: what compressing tiles in parallel buys.
const oursOneThread = timed(process.execPath, oursArgs.map((a) => (a === ours ? ours + '.1.tif' : a)), { ...process.env, UV_THREADPOOL_SIZE: '1' });
const gdalRun = timed('gdal_translate', ['-q', '-of', 'COG', '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=2', '-co', 'BLOCKSIZE=256', vrt, gdalOut]);
const gdalAvg = timed('gdal_translate', ['-q', '-of', 'COG', '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=2', '-co', 'BLOCKSIZE=256', '-co', 'OVERVIEW_RESAMPLING=AVERAGE', vrt, gdalOut + '.avg.tif']);
const validate = (p: string) =>
  spawnSync('/usr/bin/python3', ['/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_cloud_optimized_geotiff.py', '-q', '--full-check=yes', p]).status === 0;
const MiB = 1024 * 1024;
const size = (p: string) => statSync(p).size;
// Times so far are in variables; print after all runs.
const row = (name: string, r: { seconds: number; maxRssKiB: number; cpu: number }, file: string) =>
  `| ${name} | ${r.seconds.toFixed(2)} | ${(r.seconds / gdalRun.seconds).toFixed(2)} | ${r.cpu.toFixed(2)} | ${(r.maxRssKiB / 1024).toFixed(0)} MiB | ${(size(file) / MiB).toFixed(1)} MiB (${((size(file) / size(gdalOut) - 1) * 100).toFixed(1)}%) | ${validate(file) ? 'valid' : 'INVALID'} |`;
console.log(`COG ${N} × ${N} float32 (${((N * N * 4) / MiB).toFixed(0)} MiB raw), DEFLATE level 6, predictor 2, 256-px blocks, overviews; ${process.version}, ${spawnSync('gdalinfo', ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? 'GDAL'}`);
console.log(`load average before: ${loadBefore}`);
console.log('| writer | wall s | wall ratio to GDAL | CPU s (user+sys) | peak RSS | output (vs GDAL default) | GDAL validator |');
console.log('|---|---:|---:|---:|---:|---:|---|');
console.log(row(`ours (overview_resampling ${values.resampling}), libuv pool ${process.env.UV_THREADPOOL_SIZE ?? 4}`, oursRun, ours));
console.log(row('ours, UV_THREADPOOL_SIZE=1', oursOneThread, ours + '.1.tif'));
console.log(row('gdal_translate -of COG (default CUBIC overviews)', gdalRun, gdalOut));
console.log(row('gdal_translate -of COG -co OVERVIEW_RESAMPLING=AVERAGE', gdalAvg, gdalOut + '.avg.tif'));
if (values.summary) {
  writeFileSync(values.summary, JSON.stringify({ size: N, ours: { seconds: oursRun.seconds, bytes: size(ours), maxRssKiB: oursRun.maxRssKiB }, gdal: { seconds: gdalRun.seconds, bytes: size(gdalOut), maxRssKiB: gdalRun.maxRssKiB } }));
}

import { execFileSync } from 'node:child_process';
import { seededRandom } from '../../src/records/sample.js';
import { createWriteStream, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CogWriter } from '../../src/encoders/cog/writer.js';
import { DTYPE, type Dtype, type PixelArray } from '../../src/encoders/cog/scene.js';
import { referencePython } from './python.js';

/** Debian's python3 with python3-gdal (GDAL's own COG validator); `scripts/services up pyref` installs it. */
export function gdalPython(): string {
  const python = process.env.EARTHMEM_GDAL_PYTHON ?? '/usr/bin/python3';
  if (!existsSync(python)) throw new Error(`GDAL python not found at ${python}: run scripts/services up pyref`);
  return python;
}

export interface GdalCogCheck {
  path: string;
  gdal_version: string;
  validator: { warnings: string[]; errors: string[] };
  gdalinfo: { rc: number; layout_cog: boolean; stderr: string };
  gdal_cog_overviews?: [number, number][];
}

/**
 * GDAL's validate_cloud_optimized_geotiff (full check) and `gdalinfo -checksum` on each file; with
 * `cogBlocksize`, also the overview sizes GDAL's COG driver would make for it.
 */
export function gdalCheckCogs(files: { path: string; cogBlocksize?: number | null; checksum?: boolean }[]): GdalCogCheck[] {
  const input = JSON.stringify(files.map((f) => ({ path: f.path, cog_blocksize: f.cogBlocksize ?? null, checksum: f.checksum ?? true })));
  const out = execFileSync(gdalPython(), [resolve('test/support/gdal_cog_check.py')], { input, maxBuffer: 1 << 28 });
  return JSON.parse(out.toString()) as GdalCogCheck[];
}

/** Problems GDAL found, as one line per file (empty when GDAL is content). */
export function gdalProblems(check: GdalCogCheck): string[] {
  const problems = [...check.validator.errors.map((e) => `validator error: ${e}`), ...check.validator.warnings.map((w) => `validator warning: ${w}`)];
  if (check.gdalinfo.rc !== 0) problems.push(`gdalinfo exit ${check.gdalinfo.rc}`);
  if (!check.gdalinfo.layout_cog) problems.push('gdalinfo: no LAYOUT=COG');
  if (check.gdalinfo.stderr) problems.push(`gdalinfo stderr: ${check.gdalinfo.stderr}`);
  return problems;
}

export interface RasterioCase {
  tif: string;
  raw: string;
  width: number;
  height: number;
  bands: number;
  dtype: string;
  geotransform: number[];
  epsg: number;
  nodata: number | 'nan' | null;
  resampling: 'nearest' | 'average';
  compression: string;
  predictor: number;
  levels: [number, number][];
}

export interface RasterioCheck {
  tif: string;
  problems: string[];
  info: Record<string, unknown>;
}

/** rio-cogeo strict validation and rasterio reads, bit-exact (test/support/check_cog.py). */
export function rasterioCheckCogs(cases: RasterioCase[]): RasterioCheck[] {
  const out = execFileSync(referencePython(), [resolve('test/support/check_cog.py')], { input: JSON.stringify(cases), maxBuffer: 1 << 28 });
  return JSON.parse(out.toString()) as RasterioCheck[];
}

export interface CogWindow {
  /** null: full resolution; else the overview index (0 = largest). */
  overview: number | null;
  col_off: number;
  row_off: number;
  width: number;
  height: number;
  /** File with the expected pixels. */
  raw: string;
}

/** rio-cogeo strict validation plus rasterio reads of windows (test/support/check_cog_windows.py). */
export function rasterioCheckWindows(tif: string, windows: CogWindow[]): { problems: string[]; overviews: [number, number][] } {
  const out = execFileSync(referencePython(), [resolve('test/support/check_cog_windows.py')], { input: JSON.stringify({ tif, windows }) });
  return JSON.parse(out.toString()) as { problems: string[]; overviews: [number, number][] };
}

export async function writeCogFile(writer: CogWriter, path: string): Promise<void> {
  await pipeline(Readable.from(writer.finish()), createWriteStream(path));
}

/** A small deterministic PRNG (mulberry32), so tests make the same pixels every run. */
export const prng = seededRandom;

export function shuffled<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Test pixels for a dtype: a smooth field with noise (so predictors and codecs have something to
 * do), the type's extremes, and for floats NaN, ±Inf, -0 and subnormals; patches of nodata when
 * the scene has one (a whole 2×2 cell and lone pixels, so averages skip and empty cells occur).
 */
export function makePixels(dtype: Dtype, width: number, height: number, bands: number, nodata: number | null, seed: number): PixelArray {
  const info = DTYPE[dtype];
  const random = prng(seed);
  const a = new info.array(width * height * bands);
  const span = info.float ? 1000 : Math.min(info.max - info.min, 60000);
  const base = info.float ? -300 : info.min + Math.floor((info.max - info.min - span) / 2);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let b = 0; b < bands; b++) {
        const smooth = (Math.sin(x / 37 + b) * Math.cos(y / 23) + 1) / 2;
        const noise = random() * 0.05;
        const v = base + (smooth * 0.95 + noise) * span;
        a[(y * width + x) * bands + b] = info.float ? v : Math.floor(v);
      }
    }
  }
  const at = (x: number, y: number, b = 0) => (y * width + x) * bands + b;
  const specials: number[] = info.float
    ? [NaN, Infinity, -Infinity, -0, dtype === 'float32' ? 1e-40 : 5e-324, info.max, -info.max]
    : [info.min, info.max, info.min + 1, info.max - 1];
  for (let i = 0; i < 40; i++) {
    a[at(Math.floor(random() * width), Math.floor(random() * height), Math.floor(random() * bands))] = specials[i % specials.length]!;
  }
  if (nodata !== null) {
    for (let y = 0; y < Math.min(height, 6); y++) for (let x = 0; x < Math.min(width, 6); x++) for (let b = 0; b < bands; b++) a[at(x, y, b)] = nodata;
    for (let i = 0; i < 30; i++) a[at(Math.floor(random() * width), Math.floor(random() * height))] = nodata;
  }
  return a;
}

export interface FeedOptions {
  seed?: number;
  /** Hand in edge blocks as full blocksize buffers with junk outside the raster. */
  paddedEdges?: boolean;
  /** Block indices (row-major) to leave out. */
  skip?: Set<number>;
}

/** Cuts `pixels` into the writer's blocks and writes them in a shuffled order. */
export async function feed(writer: CogWriter, pixels: PixelArray, options: FeedOptions = {}): Promise<void> {
  const { across, down } = writer.grid;
  const { width: W } = writer.scene;
  const bands = writer.scene.bands;
  const random = prng(options.seed ?? 1);
  const indices = shuffled(
    Array.from({ length: across * down }, (_, i) => i).filter((i) => !options.skip?.has(i)),
    random,
  );
  for (const i of indices) {
    const col = i % across;
    const row = Math.floor(i / across);
    const { width, height } = writer.blockSize(col, row);
    const padded = options.paddedEdges && (width < writer.blockWidth || height < writer.blockHeight);
    const stride = padded ? writer.blockWidth : width;
    const block = new writer.scene.info.array(stride * (padded ? writer.blockHeight : height) * bands);
    if (padded) for (let k = 0; k < block.length; k++) block[k] = (k * 7) % 100;
    for (let y = 0; y < height; y++) {
      const from = ((row * writer.blockHeight + y) * W + col * writer.blockWidth) * bands;
      block.set(pixels.subarray(from, from + width * bands), y * stride * bands);
    }
    await writer.writeBlock(col, row, block);
  }
}

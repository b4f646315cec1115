/**
 * The writer's output against readers no one here wrote, over a matrix of dtype × compression ×
 * predictor × odd sizes × CRS × nodata: GDAL 3.6's validate_cloud_optimized_geotiff.py
 * (full check) and gdalinfo -checksum (Debian), rio-cogeo's strict validation and rasterio's
 * reads (its own bundled GDAL), bit-exact at every level.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import {
  feed,
  gdalCheckCogs,
  gdalProblems,
  makePixels,
  rasterioCheckCogs,
  writeCogFile,
  type GdalCogCheck,
  type RasterioCase,
  type RasterioCheck,
} from '../../../test/support/cog.js';
import { referencePython } from '../../../test/support/python.js';
import type { CogCompression, CogOptionsInput } from './config.js';
import { DTYPES, type CogScene, type Dtype } from './scene.js';
import { CogWriter } from './writer.js';

const wkt = (name: string) => readFileSync(resolve('test/fixtures/cog', name), 'utf8').trim();

/** CRS, its EPSG code as rasterio should report it, and a geotransform in its units. */
const CRSES: { label: string; crs: number | string; epsg: number; gt: [number, number, number, number, number, number] }[] = [
  { label: 'EPSG:4326', crs: 4326, epsg: 4326, gt: [-10.5, 0.00083333333333, 0, 45.25, 0, -0.00083333333333] },
  { label: 'UTM 33N', crs: 32633, epsg: 32633, gt: [399960.123456789, 10, 0, 5000040.987654321, 0, -10] },
  { label: 'UTM 55S', crs: 32755, epsg: 32755, gt: [300000, 30, 0, 6100000, 0, -30] },
  { label: 'EPSG:3857', crs: 3857, epsg: 3857, gt: [1113194.9079327357, 38.21851414258813, 0, 6800125.454397307, 0, -38.21851414258813] },
  { label: 'WKT2 EPSG:2193', crs: wkt('epsg2193.wkt2'), epsg: 2193, gt: [1748000.5, 0.3, 0, 5428000.25, 0, -0.3] },
  { label: 'WKT1 EPSG:4258', crs: wkt('epsg4258.wkt1'), epsg: 4258, gt: [5.1, 0.0002, 0, 52.9, 0, -0.0002] },
  { label: 'WKT2 EPSG:32618', crs: wkt('epsg32618.wkt2'), epsg: 32618, gt: [580000, 0.5, 0, 4510000, 0, -0.5] },
  { label: 'WKT1 EPSG:27700', crs: wkt('epsg27700.wkt1'), epsg: 27700, gt: [530000, 25, 0, 180000, 0, -25] },
];

/**
 * Odd sizes: none a multiple of the block, tall, wide, and one that halves to an odd overview.
 * (Not 257 × 1031 with 128-px blocks: rio-cogeo's heuristic calls an overview whose width equals
 * the block width and whose height exceeds 512 "not tiled", for GDAL's own COG of it too.)
 */
const SIZES: [number, number][] = [
  [613, 401],
  [333, 1031],
  [1000, 77],
  [515, 515],
  [301, 299],
];

interface Case {
  name: string;
  scene: CogScene;
  options: CogOptionsInput;
  paddedEdges?: boolean;
  skip?: Set<number>;
}

function matrix(): Case[] {
  const cases: Case[] = [];
  let i = 0;
  for (const dtype of DTYPES) {
    const float = dtype.startsWith('float');
    for (const compression of ['DEFLATE', 'ZSTD', 'LZW', 'NONE'] as CogCompression[]) {
      const predictors = compression === 'NONE' ? [1] : float ? [1, 2, 3] : [1, 2];
      for (const predictor of predictors) {
        const crs = CRSES[i % CRSES.length]!;
        const [width, height] = SIZES[i % SIZES.length]!;
        const withNodata = i % 2 === 0;
        const nodata = !withNodata ? null : float ? (i % 4 === 0 ? NaN : -9999.5) : dtype.startsWith('u') ? 0 : -1;
        cases.push({
          name: `${dtype} ${compression} p${predictor} ${width}×${height} ${crs.label} nodata=${nodata}`,
          scene: { width, height, dtype, geotransform: crs.gt, crs: crs.crs, nodata },
          options: {
            compression,
            predictor: predictor as 1 | 2 | 3,
            blocksize: i % 3 === 0 ? 128 : 256,
            overview_resampling: i % 5 === 1 ? 'nearest' : 'average',
          },
          paddedEdges: i % 2 === 1,
        });
        i++;
      }
    }
  }
  return cases;
}

const utm = CRSES[1]!;
const extras: Case[] = [
  {
    name: '3 bands uint16 DEFLATE p2',
    scene: { width: 530, height: 290, dtype: 'uint16', bands: 3, geotransform: utm.gt, crs: utm.crs, nodata: 0 },
    options: { compression: 'DEFLATE', predictor: 2 },
  },
  {
    name: '4 bands float32 ZSTD p3 nearest',
    scene: { width: 300, height: 333, dtype: 'float32', bands: 4, geotransform: utm.gt, crs: utm.crs, nodata: NaN },
    options: { compression: 'ZSTD', predictor: 3, blocksize: 128, overview_resampling: 'nearest' },
  },
  {
    name: '2 bands float64 LZW p2',
    scene: { width: 270, height: 260, dtype: 'float64', bands: 2, geotransform: utm.gt, crs: 3857, nodata: null },
    options: { compression: 'LZW', predictor: 2 },
  },
  {
    name: 'one partial block, no overviews (20×13)',
    scene: { width: 20, height: 13, dtype: 'int16', geotransform: utm.gt, crs: utm.crs, nodata: -32768 },
    options: {},
  },
  {
    name: 'overviews: false',
    scene: { width: 500, height: 300, dtype: 'uint8', geotransform: utm.gt, crs: 4326, nodata: null },
    options: { overviews: false },
  },
  {
    name: 'overviews: 6 (past one block, down to 4×4)',
    scene: { width: 300, height: 290, dtype: 'float32', geotransform: utm.gt, crs: 4326, nodata: -1 },
    options: { overviews: 6, blocksize: 128 },
  },
  {
    name: 'non-square blocks 256×128',
    scene: { width: 700, height: 500, dtype: 'int32', geotransform: utm.gt, crs: utm.crs, nodata: null },
    options: { blocksize: [256, 128], compression: 'ZSTD', level: 19 },
  },
  {
    name: 'DEFLATE level 1, GDAL defaults otherwise (16×16 blocks)',
    scene: { width: 100, height: 90, dtype: 'uint32', geotransform: utm.gt, crs: utm.crs, nodata: 7 },
    options: { level: 1, blocksize: 16 },
  },
  {
    name: 'a three-pixel-wide column (3 × 700)',
    scene: { width: 3, height: 700, dtype: 'int16', geotransform: utm.gt, crs: utm.crs, nodata: null },
    options: { blocksize: 128 },
  },
  {
    name: 'a one-pixel-high row (900 × 1), nearest',
    scene: { width: 900, height: 1, dtype: 'uint8', geotransform: utm.gt, crs: utm.crs, nodata: 3 },
    options: { overview_resampling: 'nearest' },
  },
  {
    name: 'float32 nodata 0.1 (stored as float32 rounds it)',
    scene: { width: 520, height: 530, dtype: 'float32', geotransform: utm.gt, crs: utm.crs, nodata: 0.1 },
    options: { predictor: 3 },
  },
  {
    name: 'missing blocks filled with nodata',
    scene: { width: 600, height: 520, dtype: 'float32', geotransform: utm.gt, crs: utm.crs, nodata: -9999 },
    options: {},
    skip: new Set([0, 4, 5]),
  },
];

const cases = [...matrix(), ...extras];
const dir = mkdtempSync(join(tmpdir(), 'earthmem-cog-ref-'));
const gdalByPath = new Map<string, GdalCogCheck>();
const rioByPath = new Map<string, RasterioCheck>();
let levelsByPath = new Map<string, [number, number][]>();
const bigtiff = new Map<string, boolean>();

before(async () => {
  const rio: RasterioCase[] = [];
  for (const [n, c] of cases.entries()) {
    const writer = new CogWriter(c.scene, c.options);
    const bands = writer.scene.bands;
    const pixels = makePixels(c.scene.dtype as Dtype, c.scene.width, c.scene.height, bands, writer.scene.nodataStored, n + 1);
    const tif = join(dir, `${n}.tif`);
    const raw = join(dir, `${n}.raw`);
    await feed(writer, pixels, { seed: n + 7, paddedEdges: c.paddedEdges, skip: c.skip });
    await writeCogFile(writer, tif);
    bigtiff.set(tif, writer.result!.bigtiff);
    if (c.skip) {
      // What the reader must see where blocks never came: nodata.
      const { across } = writer.grid;
      for (const i of c.skip) {
        const col = i % across;
        const row = Math.floor(i / across);
        const { width, height } = writer.blockSize(col, row);
        for (let y = 0; y < height; y++) {
          const from = ((row * writer.blockHeight + y) * c.scene.width + col * writer.blockWidth) * bands;
          pixels.fill(writer.scene.nodataStored!, from, from + width * bands);
        }
      }
    }
    writeFileSync(raw, new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength));
    const nd = writer.scene.nodata;
    rio.push({
      tif,
      raw,
      width: c.scene.width,
      height: c.scene.height,
      bands,
      dtype: c.scene.dtype,
      geotransform: [...c.scene.geotransform],
      epsg: writer.scene.geoKeys.epsg,
      nodata: nd === null ? null : Number.isNaN(nd) ? 'nan' : nd,
      resampling: writer.options.overview_resampling,
      compression: writer.options.compression,
      predictor: writer.options.predictor,
      levels: writer.levels.slice(1).map((l) => [l.width, l.height]),
    });
  }
  const gdalFiles = cases.map((c, n) => {
    const b = c.options.blocksize ?? 256;
    const square = typeof b === 'number' ? b : b[0] === b[1] ? b[0] : null;
    const auto = c.options.overviews === undefined || c.options.overviews === true;
    return { path: join(dir, `${n}.tif`), cogBlocksize: auto && square !== null && square >= 128 ? square : null };
  });
  for (const check of gdalCheckCogs(gdalFiles)) gdalByPath.set(check.path, check);
  levelsByPath = new Map(rio.map((r) => [r.tif, r.levels]));
  for (const check of rasterioCheckCogs(rio)) rioByPath.set(check.tif, check);
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('COG writer against GDAL, rio-cogeo and rasterio', () => {
  it(`covers every dtype × compression × predictor GDAL allows (${matrix().length} cases) and the CRS list`, () => {
    const combos = new Set(matrix().map((c) => `${c.scene.dtype}/${c.options.compression}/${c.options.predictor}`));
    assert.equal(combos.size, 6 * (3 * 2 + 1) + 2 * (3 * 3 + 1));
    const crsSeen = new Set(matrix().map((c) => c.scene.crs));
    assert.equal(crsSeen.size, CRSES.length);
    const compared = [...gdalByPath.values()].filter((g) => g.gdal_cog_overviews !== undefined).length;
    assert.ok(compared >= matrix().length, `overview sizes compared with GDAL's COG driver for ${compared} files`);
  });

  it('passes `rio cogeo validate --strict` (the CLI itself, on a few files)', () => {
    const rio = join(dirname(referencePython()), 'rio');
    for (const n of [0, 17, cases.length - 1]) {
      const out = execFileSync(rio, ['cogeo', 'validate', '--strict', join(dir, `${n}.tif`)], { encoding: 'utf8' });
      assert.match(out, /is a valid cloud optimized GeoTIFF/);
    }
  });

  for (const [n, c] of cases.entries()) {
    it(c.name, () => {
      const tif = join(dir, `${n}.tif`);
      assert.equal(bigtiff.get(tif), false, 'classic TIFF: every offset fits in 32 bits');
      assert.equal(readFileSync(tif).readUInt16LE(2), 42);
      const gdal = gdalByPath.get(tif);
      assert.ok(gdal, 'GDAL checked the file');
      assert.deepEqual(gdalProblems(gdal), [], `GDAL ${gdal.gdal_version}`);
      if (gdal.gdal_cog_overviews) assert.deepEqual(levelsByPath.get(tif), gdal.gdal_cog_overviews, "the overviews GDAL's COG driver makes");
      const rio = rioByPath.get(tif);
      assert.ok(rio, 'rasterio checked the file');
      assert.deepEqual(rio.problems, []);
    });
  }
});

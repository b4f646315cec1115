import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { feed, makePixels } from '../../../test/support/cog.js';
import { ConfigError, EncodeError } from '../../core/errors.js';
import { crsGeoKeys, parseWktIdentity } from './geokeys.js';
import { levelSizes } from './overviews.js';
import type { CogOptionsInput } from './config.js';
import type { CogScene } from './scene.js';
import { CogWriter, type CogWriterSettings } from './writer.js';

const scene: CogScene = { width: 613, height: 401, dtype: 'float32', geotransform: [500000, 10, 0, 4000000, 0, -10], crs: 32633, nodata: -9999 };

async function sha(writer: CogWriter): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of writer.finish()) hash.update(chunk);
  return hash.digest('hex');
}

async function encode(s: CogScene, options: CogOptionsInput, seed: number, paddedEdges: boolean, settings: CogWriterSettings = {}): Promise<string> {
  const writer = new CogWriter(s, options, settings);
  await feed(writer, makePixels(s.dtype, s.width, s.height, writer.scene.bands, writer.scene.nodataStored, 42), { seed, paddedEdges });
  return sha(writer);
}

describe('COG writer: options', () => {
  const make = (options: unknown) => () => new CogWriter(scene, options as CogOptionsInput);

  it('defaults to the spec (DEFLATE, 256 × 256, predictor 2, overviews) and GDAL (level 6, average for cubic)', () => {
    const w = new CogWriter(scene);
    assert.deepEqual(w.options, { overviews: true, compression: 'DEFLATE', blocksize: [256, 256], predictor: 2, overview_resampling: 'average', level: 6 });
    assert.equal(new CogWriter(scene, { compression: 'ZSTD' }).options.level, 9);
    assert.equal(new CogWriter(scene, { compression: 'NONE' }).options.predictor, 1);
    const lzw = new CogWriter(scene, { compression: 'LZW' }).options;
    assert.equal(lzw.level, null);
    assert.deepEqual(new CogWriter(scene, lzw).options, lzw, 'resolved options are accepted as they are');
  });

  it('rejects unknown keys, bad values and combinations GDAL refuses, as ConfigError', () => {
    for (const bad of [
      { overview: true },
      { compression: 'JPEG' },
      { blocksize: [250, 256] },
      { blocksize: 8 },
      { predictor: 4 },
      { compression: 'NONE', predictor: 2 },
      { compression: 'LZW', level: 5 },
      { compression: 'DEFLATE', level: 12 },
      { compression: 'ZSTD', level: 0 },
      { overview_resampling: 'cubic' },
      { overviews: -1 },
    ]) {
      assert.throws(make(bad), ConfigError, JSON.stringify(bad));
    }
    assert.throws(() => new CogWriter({ ...scene, dtype: 'uint16', nodata: null }, { predictor: 3 }), ConfigError, 'predictor 3 needs floats');
    assert.ok(new CogWriter({ ...scene, dtype: 'uint16', nodata: null }, { predictor: 2 }));
  });

  it('rejects scenes it cannot write, as ConfigError', () => {
    for (const bad of [
      { width: 0 },
      { height: 1.5 },
      { dtype: 'complex64' },
      { bands: 0 },
      { geotransform: [0, 10, 0.5, 0, 0, -10] },
      { geotransform: [0, 10, 0, 0, 0, 10] },
      { crs: 99999 },
      { crs: 2193 },
      { crs: 'GEOGCRS["no id",DATUM["x"]]' },
      { crs: 'COMPOUNDCRS["x",ID["EPSG",9518]]' },
      { dtype: 'uint8', nodata: -1 },
      { dtype: 'int16', nodata: 0.5 },
      { dtype: 'float32', nodata: 1e39 },
    ]) {
      assert.throws(() => new CogWriter({ ...scene, ...bad } as CogScene), ConfigError, JSON.stringify(bad));
    }
  });
});

describe('COG writer: CRS', () => {
  it("reads the root's EPSG identifier from WKT2 and WKT1, not a nested one", () => {
    const wkt2 = 'PROJCRS["NZGD2000 / New Zealand Transverse Mercator 2000",BASEGEOGCRS["NZGD2000",DATUM["x",ELLIPSOID["GRS 1980",6378137,298.257222101]],ID["EPSG",4167]],CONVERSION["x",METHOD["Transverse Mercator",ID["EPSG",9807]]],CS[Cartesian,2],ID["EPSG",2193]]';
    assert.deepEqual(parseWktIdentity(wkt2), { epsg: 2193, kind: 'projected' });
    const wkt1 = 'GEOGCS["ETRS89",DATUM["European_Terrestrial_Reference_System_1989",SPHEROID["GRS 1980",6378137,298.257222101,AUTHORITY["EPSG","7019"]],AUTHORITY["EPSG","6258"]],AUTHORITY["EPSG","4258"]]';
    assert.deepEqual(parseWktIdentity(wkt1), { epsg: 4258, kind: 'geographic' });
    assert.deepEqual(parseWktIdentity('GEOGCRS["a ""quoted"" name",ID["EPSG",4326]]'), { epsg: 4326, kind: 'geographic' });
    assert.throws(() => parseWktIdentity('PROJCRS["x",BASEGEOGCRS["y",ID["EPSG",4326]]]'), /no outer EPSG/);
    assert.throws(() => parseWktIdentity('PROJCRS["x",ID["EPSG",2193]] trailing'), /trailing/);
  });

  it('writes geographic and projected keys for the known codes', () => {
    assert.deepEqual(crsGeoKeys(4326).keys, [[1024, 2], [1025, 1], [2048, 4326]]);
    assert.deepEqual(crsGeoKeys(32755).keys, [[1024, 1], [1025, 1], [3072, 32755]]);
    assert.deepEqual(crsGeoKeys('EPSG:3857').keys, [[1024, 1], [1025, 1], [3072, 3857]]);
  });
});

describe('COG writer: overview levels', () => {
  it("follows GDAL's rule: halve (rounding down) until the level fits in one block; a count is exact", () => {
    assert.deepEqual(levelSizes(257, 1031, 256, 256, true).map((l) => [l.width, l.height]), [[257, 1031], [128, 515], [64, 257], [32, 128]]);
    assert.deepEqual(levelSizes(256, 256, 256, 256, true).length, 1);
    assert.deepEqual(levelSizes(300, 290, 128, 128, 6).map((l) => l.width), [300, 150, 75, 37, 18, 9, 4]);
    assert.deepEqual(levelSizes(3, 1, 16, 16, 5).map((l) => [l.width, l.height]), [[3, 1], [1, 1]]);
    assert.equal(levelSizes(5000, 5000, 256, 256, false).length, 1);
  });
});

describe('COG writer: deterministic bytes', () => {
  for (const [label, s, options] of [
    ['float32 DEFLATE p2 average', scene, {}],
    ['uint16 × 3 LZW p2 nearest', { ...scene, dtype: 'uint16', bands: 3, nodata: 0 }, { compression: 'LZW', overview_resampling: 'nearest', blocksize: 128 }],
    ['float64 ZSTD p3', { ...scene, dtype: 'float64', nodata: NaN }, { compression: 'ZSTD', predictor: 3 }],
  ] as [string, CogScene, CogOptionsInput][]) {
    it(`${label}: any block order, exact or padded edge blocks, memory or temp file → the same sha256`, async () => {
      const reference = await encode(s, options, 1, false);
      assert.equal(await encode(s, options, 2, true), reference, 'another order, padded edges');
      assert.equal(await encode(s, options, 3, false, { memoryBytes: 0, maxInFlight: 1 }), reference, 'spilled to a temp file, one tile at a time');
      const other = await encode({ ...s, geotransform: [500000, 10, 0, 4000010, 0, -10] }, options, 1, false);
      assert.notEqual(other, reference, 'a different scene gives different bytes');
    });
  }
});

describe('COG writer: errors', () => {
  it('refuses blocks outside the grid, twice, of the wrong type or length, and writes after finish', async () => {
    const w = new CogWriter(scene);
    const { width, height } = w.blockSize(2, 1);
    assert.deepEqual([width, height], [101, 145]);
    await assert.rejects(w.writeBlock(3, 0, new Float32Array(256 * 256)), EncodeError);
    await assert.rejects(w.writeBlock(-1, 0, new Float32Array(256 * 256)), EncodeError);
    await assert.rejects(w.writeBlock(0, 0, new Float64Array(256 * 256)), /not a float32 typed array/);
    await assert.rejects(w.writeBlock(2, 1, new Float32Array(100 * 145)), /expected 14645 \(101 × 145 × 1\) or 65536/);
    await w.writeBlock(2, 1, new Float32Array(101 * 145));
    await assert.rejects(w.writeBlock(2, 1, new Float32Array(101 * 145)), /already written/);
    await w.abort();
  });

  it('names the blocks that never arrived when there is no nodata to fill them', async () => {
    const w = new CogWriter({ ...scene, nodata: null });
    await w.writeBlock(0, 0, new Float32Array(256 * 256));
    await assert.rejects(async () => {
      for await (const chunk of w.finish()) void chunk;
    }, (e: unknown) => e instanceof EncodeError && /5 of 6 blocks never arrived \(first: 1, 0\)/.test(e.message));
  });

  it('spills to an unlinked temp file and leaves nothing behind, finished or aborted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'earthmem-cog-spill-'));
    // Open descriptors on files under `dir` (Linux: /proc/self/fd links end in " (deleted)").
    const openSpills = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir);
        } catch {
          return false;
        }
      }).length;
    try {
      // One tile in flight: each writeBlock returns once its tile is in the temp file.
      const finished = new CogWriter(scene, {}, { tmpDir: dir, memoryBytes: 0, maxInFlight: 1 });
      await feed(finished, makePixels('float32', scene.width, scene.height, 1, -9999, 1));
      assert.equal(openSpills(), 1, 'the tiles are in one open temp file');
      assert.deepEqual(readdirSync(dir), [], 'which has no name');
      await sha(finished);
      const aborted = new CogWriter(scene, {}, { tmpDir: dir, memoryBytes: 0 });
      await aborted.writeBlock(0, 0, new Float32Array(256 * 256));
      await aborted.abort();
      assert.equal(openSpills(), 0);
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

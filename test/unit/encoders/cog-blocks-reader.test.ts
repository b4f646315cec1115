import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BlockAssembler } from '../../../src/encoders/cog/blocks.js';
import { CogReader, readWindow } from '../../../src/encoders/cog/reader.js';
import { DTYPES, DTYPE, type Dtype } from '../../../src/encoders/cog/scene.js';
import { CogWriter } from '../../../src/encoders/cog/writer.js';
import { makePixels, prng, shuffled } from '../../support/cog.js';

/** The windows of a `tw` × `th` tiling of a `w` × `h` raster. */
function tiling(w: number, h: number, tw: number, th: number): [number, number, number, number][] {
  const out: [number, number, number, number][] = [];
  for (let y = 0; y < h; y += th) for (let x = 0; x < w; x += tw) out.push([x, y, Math.min(tw, w - x), Math.min(th, h - y)]);
  return out;
}

function cut(bytes: Uint8Array, width: number, sample: number, [x, y, w, h]: [number, number, number, number]): Uint8Array {
  const out = new Uint8Array(w * h * sample);
  for (let r = 0; r < h; r++) out.set(bytes.subarray(((y + r) * width + x) * sample, ((y + r) * width + x + w) * sample), r * w * sample);
  return out;
}

describe('BlockAssembler (property): any tiling, any order → each block once, with the raster\'s pixels', () => {
  it('holds for random sizes, tilings, block sizes and orders', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 90 }), fc.integer({ min: 1, max: 90 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }),
        fc.constantFrom(16, 32), fc.constantFrom(16, 48), fc.integer(), fc.boolean(),
        (width, height, tw, th, bw, bh, seed, twice) => {
          const grid = { width, height, bands: 1, dtype: 'uint16' as const, fill: 0, blockWidth: bw, blockHeight: bh };
          const pixels = new Uint16Array(width * height).map((_, i) => (i * 7919 + seed) & 0xffff);
          const bytes = new Uint8Array(pixels.buffer);
          const blocks = new BlockAssembler(grid);
          const seen = new Map<string, Uint16Array>();
          const windows = shuffled(tiling(width, height, tw, th), prng(seed));
          for (const win of twice ? [...windows, ...windows.slice(0, 3)] : windows) {
            for (const b of blocks.put(win[0], win[1], win[2], win[3], cut(bytes, width, 2, win))) {
              assert.ok(!seen.has(`${b.col},${b.row}`), 'a block is handed over once');
              seen.set(`${b.col},${b.row}`, b.pixels as Uint16Array);
            }
          }
          assert.ok(blocks.complete);
          assert.equal(blocks.heldBytes, 0);
          assert.equal([...blocks.rest()].length, 0);
          assert.equal(seen.size, blocks.across * blocks.down);
          for (const [k, p] of seen) {
            const [col, row] = k.split(',').map(Number) as [number, number];
            const { width: w, height: h } = blocks.blockSize(col, row);
            const expected = new Uint16Array(cut(bytes, width, 2, [col * bw, row * bh, w, h]).buffer);
            assert.deepEqual(p, expected);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('rest() gives the missing blocks filled with the nodata value, partly filled ones with what came', () => {
    const blocks = new BlockAssembler({ width: 40, height: 20, bands: 1, dtype: 'float32', fill: NaN, blockWidth: 16, blockHeight: 16 });
    assert.deepEqual(blocks.put(0, 0, 10, 10, new Uint8Array(new Float32Array(100).fill(1).buffer)), []);
    const rest = [...blocks.rest()];
    assert.equal(rest.length, 6);
    const first = rest[0]!.pixels as Float32Array;
    assert.equal(first[0], 1);
    assert.ok(Number.isNaN(first[10]));
    assert.ok((rest[5]!.pixels as Float32Array).every((v) => Number.isNaN(v)));
  });
});

describe('CogReader reads back what CogWriter wrote, bit-exact (every dtype, DEFLATE/ZSTD/NONE, predictors 1–3)', () => {
  const cases: { dtype: Dtype; compression: 'DEFLATE' | 'ZSTD' | 'NONE'; predictor: 1 | 2 | 3 }[] = [];
  for (const dtype of DTYPES) {
    for (const compression of ['DEFLATE', 'ZSTD', 'NONE'] as const) {
      for (const predictor of [1, 2, 3] as const) {
        if (compression === 'NONE' && predictor !== 1) continue;
        if (predictor === 3 && !DTYPE[dtype].float) continue;
        cases.push({ dtype, compression, predictor });
      }
    }
  }
  for (const { dtype, compression, predictor } of cases) {
    it(`${dtype} ${compression} predictor ${predictor}`, async () => {
      const [width, height] = [83, 61];
      const pixels = makePixels(dtype, width, height, 1, null, 5);
      const writer = new CogWriter({ width, height, dtype, geotransform: [500000, 10, 0, 5300000, 0, -10], crs: 32633, nodata: null }, { compression, predictor, blocksize: 32 });
      const bytes = new Uint8Array(pixels.buffer);
      const blocks = new BlockAssembler({ width, height, bands: 1, dtype, fill: 0, blockWidth: 32, blockHeight: 32 });
      for (const b of blocks.put(0, 0, width, height, bytes)) await writer.writeBlock(b.col, b.row, b.pixels);
      const chunks: Buffer[] = [];
      for await (const c of writer.finish()) chunks.push(c);
      const file = Buffer.concat(chunks);
      const reader = await CogReader.open(async (offset, length) => file.subarray(offset, offset + length));
      assert.equal(reader.info.dtype, dtype);
      assert.equal(reader.info.epsg, 32633);
      assert.deepEqual(reader.info.geotransform, [500000, 10, 0, 5300000, 0, -10]);
      assert.equal(reader.info.levels.length, writer.levels.length);
      assert.deepEqual(Buffer.from(await readWindow(reader, 0, 0, width, height)), Buffer.from(bytes));
      // A window inside one tile reads that tile only (and the head).
      const before = reader.fetched;
      const window = await readWindow(reader, 33, 33, 10, 5);
      assert.deepEqual(Buffer.from(window), Buffer.from(cut(bytes, width, DTYPE[dtype].bytes, [33, 33, 10, 5])));
      assert.equal(reader.fetched - before, reader.info.levels[0]!.counts[1 * reader.info.levels[0]!.across + 1]);
    });
  }
});

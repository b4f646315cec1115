/**
 * BigTIFF exactly when an offset would pass 4 GiB: a 57,344 × 57,344 uint8 scene with
 * compression NONE (3.3 GB at full resolution, 4.4 GB with overviews) streamed to a file, whose
 * full-resolution tiles come last and so start past 4 GiB. GDAL's validator (full check of every
 * tile's leader and trailer), gdalinfo, rio-cogeo and rasterio reads of windows at the far end
 * check it. Slow by nature (~4.4 GB written twice: the spill, then the file); deleted after.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readSync, closeSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gdalCheckCogs, gdalProblems, rasterioCheckWindows, writeCogFile, type CogWindow } from '../../../test/support/cog.js';
import { CogWriter } from './writer.js';

const N = 57344;
const dir = mkdtempSync(join(tmpdir(), 'earthmem-cog-big-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Pixel (x, y) of level k: level 0 is (x + 7y) mod 256, and nearest overviews pick (2^k x, 2^k y). */
const pixel = (x: number, y: number, k: number) => ((x << k) + 7 * (y << k)) & 255;

describe('COG writer: BigTIFF', () => {
  it('switches to BigTIFF when the full-resolution tiles start past 4 GiB, and GDAL, rio-cogeo and rasterio read it', { timeout: 20 * 60_000 }, async () => {
    const writer = new CogWriter(
      { width: N, height: N, dtype: 'uint8', geotransform: [-180, 360 / N, 0, 90, 0, -180 / N], crs: 4326, nodata: null },
      { compression: 'NONE', overview_resampling: 'nearest' },
    );
    const { across, down } = writer.grid;
    // Rows of a block are slices of one ramp, so making 3.3 GB of pixels costs little.
    const ramp = new Uint8Array(512 + 256);
    for (let i = 0; i < ramp.length; i++) ramp[i] = i & 255;
    for (let row = 0; row < down; row++) {
      for (let col = 0; col < across; col++) {
        const block = new Uint8Array(256 * 256);
        for (let y = 0; y < 256; y++) {
          const start = (col * 256 + 7 * (row * 256 + y)) & 255;
          block.set(ramp.subarray(start, start + 256), y * 256);
        }
        await writer.writeBlock(col, row, block);
      }
    }
    const tif = join(dir, 'big.tif');
    await writeCogFile(writer, tif);
    const result = writer.result!;
    assert.equal(result.bigtiff, true);
    assert.equal(statSync(tif).size, result.bytes);
    assert.ok(result.bytes > 2 ** 32 + 256 * 256, `${result.bytes} bytes`);

    const head = Buffer.alloc(16);
    const fd = openSync(tif, 'r');
    readSync(fd, head, 0, 16, 0);
    closeSync(fd);
    assert.deepEqual([...head.subarray(0, 8)], [0x49, 0x49, 43, 0, 8, 0, 0, 0], 'BigTIFF header');

    const [gdal] = gdalCheckCogs([{ path: tif, checksum: false }]);
    assert.deepEqual(gdalProblems(gdal!), [], `GDAL ${gdal!.gdal_version}`);

    const windows: CogWindow[] = [];
    const window = (overview: number | null, x: number, y: number, width: number, height: number) => {
      const k = overview === null ? 0 : overview + 1;
      const expected = new Uint8Array(width * height);
      for (let j = 0; j < height; j++) for (let i = 0; i < width; i++) expected[j * width + i] = pixel(x + i, y + j, k);
      const raw = join(dir, `w${windows.length}.raw`);
      writeFileSync(raw, expected);
      windows.push({ overview, col_off: x, row_off: y, width, height, raw });
    };
    window(null, N - 300, N - 200, 300, 200); // the last tiles, past 4 GiB
    window(null, 0, 0, 512, 300);
    window(null, 28000, 30000, 700, 600);
    window(0, 14000, 14000, 500, 300);
    window(writer.levels.length - 2, 0, 0, writer.levels.at(-1)!.width, writer.levels.at(-1)!.height);
    const rio = rasterioCheckWindows(tif, windows);
    assert.deepEqual(rio.problems, []);
    assert.deepEqual(rio.overviews, writer.levels.slice(1).map((l) => [l.width, l.height]));
  });
});

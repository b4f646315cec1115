import { ConfigError, EncodeError } from '../../core/errors.js';
import { parseConfigValue } from '../../config/load.js';
import { compressTile, COMPRESSION_CODE } from './codecs.js';
import { cogOptionsSchema, type CogOptions, type CogOptionsInput } from './config.js';
import { levelSizes, reduceQuadrant, type Level, type Reduction } from './overviews.js';
import { floatingPointDifference, horizontalDifference } from './predictor.js';
import { nodataText, resolveScene, type CogScene, type PixelArray, type ResolvedScene } from './scene.js';
import { SpillStore } from './spill.js';
import { ASCII, DOUBLE, firstIfdOffset, ifdSize, LONG, LONG8, SHORT, TAG, writeHeader, writeIfd, type Tag } from './tiff.js';

export interface CogWriterSettings {
  /** Where compressed tiles spill once they exceed `memoryBytes` (default: the OS temp dir). */
  tmpDir?: string;
  /** Compressed bytes kept in memory before spilling to a temp file (default 64 MiB). */
  memoryBytes?: number;
  /** Tiles being predicted/compressed at once; `writeBlock` waits beyond it (default 2 × libuv pool). */
  maxInFlight?: number;
}

export interface CogResult {
  bytes: number;
  bigtiff: boolean;
  /** Tiles per level, full resolution first. */
  tiles: number[];
  levels: { width: number; height: number }[];
}

const MAX_TILE_BYTES = 256 * 1024 * 1024;
const CHUNK = 1 << 20;
const UINT32_MAX = 0xffffffff;

/**
 * A streaming Cloud-Optimized GeoTIFF writer. Blocks of the full-resolution grid arrive in any
 * order (`writeBlock`); each is compressed as soon as it arrives and folded into its overview
 * parents, which are compressed when their last child arrives. `finish()` then yields the file in
 * COG order: header, ghost area, IFDs (full resolution, then overviews largest first), tiles of
 * the smallest overview first and of full resolution last, each row-major with GDAL's 4-byte
 * leader and trailer. Same pixels, same options → same bytes, whatever the block order.
 */
export class CogWriter {
  readonly scene: ResolvedScene;
  readonly options: CogOptions;
  readonly levels: readonly Level[];
  readonly blockWidth: number;
  readonly blockHeight: number;
  private readonly reduction: Reduction;
  private readonly padValue: number;
  private readonly levelKeyBase: number[];
  private readonly received: Uint8Array;
  private receivedCount = 0;
  private readonly pending: Map<number, { data: PixelArray; remaining: number }>[];
  private readonly spill: SpillStore;
  private readonly maxInFlight: number;
  private inFlight = 0;
  private waiters: (() => void)[] = [];
  private failure: Error | undefined;
  private state: 'open' | 'finishing' | 'done' = 'open';
  private scratch: Uint8Array | undefined;
  result: CogResult | undefined;

  constructor(scene: CogScene, options: CogOptionsInput | CogOptions = {}, settings: CogWriterSettings = {}) {
    this.scene = resolveScene(scene);
    this.options = parseConfigValue(options, 'cog options', cogOptionsSchema);
    const { info, bands } = this.scene;
    if (this.options.predictor === 3 && !info.float) {
      throw new ConfigError('cog options: predictor: 3 (floating point) needs float32 or float64 pixels', [
        { file: 'cog options', path: 'predictor', message: `3 is for floats, not ${this.scene.dtype}` },
      ]);
    }
    [this.blockWidth, this.blockHeight] = this.options.blocksize;
    if (this.blockWidth * this.blockHeight * bands * info.bytes > MAX_TILE_BYTES) {
      throw new ConfigError('cog options: blocksize × bands × sample size exceeds 256 MiB per tile', [
        { file: 'cog options', path: 'blocksize', message: 'tile too large' },
      ]);
    }
    this.levels = levelSizes(this.scene.width, this.scene.height, this.blockWidth, this.blockHeight, this.options.overviews);
    this.levelKeyBase = [];
    let base = 0;
    for (const l of this.levels) {
      this.levelKeyBase.push(base);
      base += l.blocksAcross * l.blocksDown;
    }
    const nodata = this.scene.nodataStored;
    this.padValue = nodata ?? 0;
    this.reduction = { mode: this.options.overview_resampling, spp: bands, float: info.float, nodata, empty: nodata ?? NaN };
    this.received = new Uint8Array(this.levels[0]!.blocksAcross * this.levels[0]!.blocksDown);
    this.pending = this.levels.map(() => new Map());
    this.spill = new SpillStore(settings.memoryBytes ?? 64 * 1024 * 1024, settings.tmpDir);
    // libuv's pool runs the compressions: 4 threads unless UV_THREADPOOL_SIZE says otherwise.
    const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
    this.maxInFlight = settings.maxInFlight ?? 2 * pool;
  }

  /** Full-resolution blocks across and down. */
  get grid(): { across: number; down: number } {
    return { across: this.levels[0]!.blocksAcross, down: this.levels[0]!.blocksDown };
  }

  /** Pixels (width × height) of block (col, row): blocksize, less at the right and bottom edges. */
  blockSize(col: number, row: number, level = 0): { width: number; height: number } {
    const l = this.levels[level]!;
    return {
      width: Math.min(this.blockWidth, l.width - col * this.blockWidth),
      height: Math.min(this.blockHeight, l.height - row * this.blockHeight),
    };
  }

  /**
   * Block (col, row) of the full-resolution grid: pixels row-major, bands interleaved, in the
   * scene's typed array (Float32Array for float32 …), either exactly the block's size (smaller
   * at the edges) or a full blocksize buffer (whose part outside the raster is ignored). Resolves
   * once the writer can take another block (bounded memory: await it).
   */
  async writeBlock(col: number, row: number, pixels: PixelArray): Promise<void> {
    this.throwIfFailed();
    const context = { col, row };
    if (this.state !== 'open') throw new EncodeError('COG writer: writeBlock after finish', { context });
    const { across, down } = this.grid;
    if (!Number.isInteger(col) || !Number.isInteger(row) || col < 0 || row < 0 || col >= across || row >= down) {
      throw new EncodeError(`COG writer: block (${col}, ${row}) is outside the ${across} × ${down} grid`, { context });
    }
    const index = row * across + col;
    if (this.received[index]) throw new EncodeError(`COG writer: block (${col}, ${row}) was already written`, { context });
    const { info, bands, dtype } = this.scene;
    if (!info.is(pixels)) throw new EncodeError(`COG writer: block (${col}, ${row}) is not a ${dtype} typed array`, { context });
    const { width, height } = this.blockSize(col, row);
    const full = this.blockWidth * this.blockHeight * bands;
    const exact = width * height * bands;
    if (pixels.length !== exact && pixels.length !== full) {
      throw new EncodeError(`COG writer: block (${col}, ${row}) has ${pixels.length} samples, expected ${exact} (${width} × ${height} × ${bands}) or ${full}`, { context });
    }
    this.received[index] = 1;
    this.receivedCount++;
    const srcStride = (pixels.length === full ? this.blockWidth : width) * bands;
    this.accept(0, col, row, this.padded(pixels, srcStride, width, height));
    await this.capacity();
  }

  /**
   * The COG's bytes, in order. Blocks never written are filled with nodata when the scene has
   * one, and are an error otherwise. The temp file is gone when the iteration ends or stops.
   */
  async *finish(): AsyncGenerator<Buffer, void, undefined> {
    if (this.state !== 'open') throw new EncodeError('COG writer: finish called twice');
    this.state = 'finishing';
    try {
      await this.fillMissing();
      await this.drain();
      this.throwIfFailed();
      for (const [k, p] of this.pending.entries()) {
        if (p.size) throw new EncodeError(`COG writer: internal: ${p.size} overview blocks of level ${k} incomplete`);
      }
      const layout = this.layout();
      yield layout.head;
      let chunk = Buffer.allocUnsafe(CHUNK);
      let used = 0;
      for (const key of layout.order) {
        const length = this.spill.size(key);
        const need = length + 8;
        if (used > 0 && used + need > chunk.length) {
          yield chunk.subarray(0, used);
          chunk = Buffer.allocUnsafe(Math.max(CHUNK, need));
          used = 0;
        } else if (need > chunk.length) chunk = Buffer.allocUnsafe(need);
        // GDAL's block leader (the size) and trailer (the last 4 bytes again).
        chunk.writeUInt32LE(length, used);
        await this.spill.read(key, chunk, used + 4);
        chunk.copyWithin(used + 4 + length, used + length, used + 4 + length);
        used += need;
      }
      if (used > 0) yield chunk.subarray(0, used);
      this.result = layout.result;
      this.state = 'done';
    } finally {
      await this.spill.close();
    }
  }

  /** Drops everything written so far (and the temp file). */
  async abort(): Promise<void> {
    this.state = 'done';
    this.failure ??= new EncodeError('COG writer aborted');
    await this.drain().catch(() => undefined);
    await this.spill.close();
  }

  private padded(pixels: PixelArray, srcStride: number, width: number, height: number): PixelArray {
    const bands = this.scene.bands;
    const rowLength = this.blockWidth * bands;
    const block = new this.scene.info.array(rowLength * this.blockHeight);
    if (width === this.blockWidth && height === this.blockHeight && srcStride === rowLength) {
      block.set(pixels);
      return block;
    }
    if (this.padValue !== 0) block.fill(this.padValue);
    for (let r = 0; r < height; r++) {
      block.set(pixels.subarray(r * srcStride, r * srcStride + width * bands), r * rowLength);
    }
    return block;
  }

  /** A finished block of `level`: fold it into its overview parent, then compress it. */
  private accept(level: number, col: number, row: number, block: PixelArray): void {
    const here = this.levels[level]!;
    const up = this.levels[level + 1];
    if (up) {
      const pcol = col >> 1;
      const prow = row >> 1;
      const parent = this.blockSize(pcol, prow, level + 1);
      const dx = col & 1;
      const dy = row & 1;
      // A child whose quadrant starts beyond the parent's pixels feeds nothing (odd sizes).
      if ((dx * this.blockWidth) / 2 < parent.width && (dy * this.blockHeight) / 2 < parent.height) {
        const key = prow * up.blocksAcross + pcol;
        const pending = this.pending[level + 1]!;
        let entry = pending.get(key);
        if (!entry) {
          const data = new this.scene.info.array(this.blockWidth * this.blockHeight * this.scene.bands);
          if (this.padValue !== 0) data.fill(this.padValue);
          entry = { data, remaining: this.contributors(pcol, prow, parent, here) };
          pending.set(key, entry);
        }
        const child = this.blockSize(col, row, level);
        reduceQuadrant(this.reduction, entry.data, block, this.blockWidth, this.blockHeight, dx, dy, child.width, child.height, parent.width, parent.height);
        if (--entry.remaining === 0) {
          pending.delete(key);
          this.accept(level + 1, pcol, prow, entry.data);
        }
      }
    }
    this.encode(this.levelKeyBase[level]! + row * here.blocksAcross + col, block);
  }

  private contributors(pcol: number, prow: number, parent: { width: number; height: number }, here: Level): number {
    let n = 0;
    for (let dy = 0; dy < 2; dy++) {
      for (let dx = 0; dx < 2; dx++) {
        const col = 2 * pcol + dx;
        const row = 2 * prow + dy;
        if (col >= here.blocksAcross || row >= here.blocksDown) continue;
        if ((dx * this.blockWidth) / 2 < parent.width && (dy * this.blockHeight) / 2 < parent.height) n++;
      }
    }
    return n;
  }

  private encode(key: number, block: PixelArray): void {
    const { info, bands } = this.scene;
    const bytes = new Uint8Array(block.buffer, block.byteOffset, block.byteLength);
    const rowSamples = this.blockWidth * bands;
    if (this.options.predictor === 2) horizontalDifference(bytes, info.bytes, rowSamples, this.blockHeight, bands);
    else if (this.options.predictor === 3) {
      this.scratch ??= new Uint8Array(rowSamples * info.bytes);
      floatingPointDifference(bytes, info.bytes, rowSamples, this.blockHeight, bands, this.scratch);
    }
    this.inFlight++;
    compressTile(bytes, this.options.compression, this.options.level)
      .then((data) => {
        if (data.length < 4) throw new Error(`compressed tile of ${data.length} bytes has no 4-byte trailer`);
        return this.spill.put(key, data);
      })
      .catch((error: unknown) => {
        this.failure ??= new EncodeError(`COG writer: tile ${key} failed to ${this.options.compression}-compress or spill`, {
          cause: error,
          context: { tile: key, compression: this.options.compression },
        });
      })
      .finally(() => {
        this.inFlight--;
        this.waiters.shift()?.();
        if (this.inFlight === 0) for (const w of this.waiters.splice(0)) w();
      });
  }

  private async capacity(): Promise<void> {
    while (this.inFlight >= this.maxInFlight && !this.failure) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.throwIfFailed();
  }

  private async drain(): Promise<void> {
    while (this.inFlight > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private async fillMissing(): Promise<void> {
    const total = this.received.length;
    if (this.receivedCount === total) return;
    const first = this.received.indexOf(0);
    const { across } = this.grid;
    if (this.scene.nodataStored === null) {
      throw new EncodeError(`COG writer: ${total - this.receivedCount} of ${total} blocks never arrived (first: ${first % across}, ${Math.floor(first / across)}) and the scene has no nodata to fill them`, {
        context: { missing: total - this.receivedCount },
      });
    }
    const empty = new this.scene.info.array(0);
    for (let i = first; i < total; i++) {
      if (this.received[i]) continue;
      this.received[i] = 1;
      this.receivedCount++;
      this.accept(0, i % across, Math.floor(i / across), this.padded(empty, 0, 0, 0));
      await this.capacity();
    }
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private tags(level: number, big: boolean, offsets: number[], counts: number[]): Tag[] {
    const { info, bands, geotransform: gt, geoKeys, nodata } = this.scene;
    const l = this.levels[level]!;
    const perBand = (v: number) => Array.from({ length: bands }, () => v);
    const tags: Tag[] = [
      { tag: TAG.ImageWidth, type: LONG, values: [l.width] },
      { tag: TAG.ImageLength, type: LONG, values: [l.height] },
      { tag: TAG.BitsPerSample, type: SHORT, values: perBand(info.bytes * 8) },
      { tag: TAG.Compression, type: SHORT, values: [COMPRESSION_CODE[this.options.compression]] },
      { tag: TAG.Photometric, type: SHORT, values: [1] },
      { tag: TAG.SamplesPerPixel, type: SHORT, values: [bands] },
      { tag: TAG.PlanarConfig, type: SHORT, values: [1] },
      { tag: TAG.TileWidth, type: SHORT, values: [this.blockWidth] },
      { tag: TAG.TileLength, type: SHORT, values: [this.blockHeight] },
      { tag: TAG.TileOffsets, type: big ? LONG8 : LONG, values: offsets },
      { tag: TAG.TileByteCounts, type: big ? LONG8 : LONG, values: counts },
      { tag: TAG.SampleFormat, type: SHORT, values: perBand(info.sampleFormat) },
    ];
    if (level > 0) tags.push({ tag: TAG.NewSubfileType, type: LONG, values: [1] });
    if (this.options.predictor !== 1) tags.push({ tag: TAG.Predictor, type: SHORT, values: [this.options.predictor] });
    // Bands beyond the first are "unspecified" extra samples of a grey image, as GDAL writes them.
    if (bands > 1) tags.push({ tag: TAG.ExtraSamples, type: SHORT, values: Array.from({ length: bands - 1 }, () => 0) });
    if (level === 0) {
      tags.push(
        { tag: TAG.ModelPixelScale, type: DOUBLE, values: [gt[1]!, -gt[5]!, 0] },
        { tag: TAG.ModelTiepoint, type: DOUBLE, values: [0, 0, 0, gt[0]!, gt[3]!, 0] },
        { tag: TAG.GeoKeyDirectory, type: SHORT, values: [1, 1, 0, geoKeys.keys.length, ...geoKeys.keys.flatMap(([id, v]) => [id, 0, 1, v])] },
      );
    }
    if (nodata !== null) tags.push({ tag: TAG.GdalNodata, type: ASCII, values: nodataText(nodata) });
    return tags;
  }

  private layout(): { head: Buffer; order: number[]; result: CogResult } {
    const L = this.levels.length;
    const tileCount = this.levels.map((l) => l.blocksAcross * l.blocksDown);
    // Data order: smallest overview first, full resolution last, each row-major.
    const order: number[] = [];
    for (let k = L - 1; k >= 0; k--) for (let i = 0; i < tileCount[k]!; i++) order.push(this.levelKeyBase[k]! + i);
    const plan = (big: boolean) => {
      const ifdAt: number[] = [];
      let at = firstIfdOffset(big);
      for (let k = 0; k < L; k++) {
        ifdAt.push(at);
        const zeros = new Array<number>(tileCount[k]!).fill(0);
        at += ifdSize(this.tags(k, big, zeros, zeros), big);
      }
      const offsets = tileCount.map((n) => new Array<number>(n));
      const counts = tileCount.map((n) => new Array<number>(n));
      let pos = at;
      let last = 0;
      for (let k = L - 1; k >= 0; k--) {
        for (let i = 0; i < tileCount[k]!; i++) {
          const length = this.spill.size(this.levelKeyBase[k]! + i);
          offsets[k]![i] = last = pos + 4;
          counts[k]![i] = length;
          pos += length + 8;
        }
      }
      return { ifdAt, headBytes: at, offsets, counts, last, end: pos };
    };
    // BigTIFF exactly when a classic TIFF would need an offset past 4 GiB.
    let big = false;
    let p = plan(false);
    if (p.last > UINT32_MAX) {
      big = true;
      p = plan(true);
    }
    const head = Buffer.alloc(p.headBytes);
    writeHeader(head, big);
    for (let k = 0; k < L; k++) {
      writeIfd(head, p.ifdAt[k]!, this.tags(k, big, p.offsets[k]!, p.counts[k]!), k + 1 < L ? p.ifdAt[k + 1]! : 0, big);
    }
    return {
      head,
      order,
      result: { bytes: p.end, bigtiff: big, tiles: tileCount, levels: this.levels.map(({ width, height }) => ({ width, height })) },
    };
  }
}

import { EncodeError } from '../../core/errors.js';
import { DTYPE, type Dtype, type PixelArray } from './scene.js';

export interface BlockGrid {
  width: number;
  height: number;
  bands: number;
  dtype: Dtype;
  /** What pixels never given hold (nodata, or 0 without one). */
  fill: number;
  blockWidth: number;
  blockHeight: number;
}

export interface Block {
  col: number;
  row: number;
  /** Exactly the block's size (smaller at the right and bottom edges), in the dtype's array. */
  pixels: PixelArray;
}

/**
 * Cuts windows of a raster (tiles as a source sends them, at any offset and size) into the
 * blocks of a COG's grid: a block is handed over as soon as all of its pixels are in, so the
 * memory held is the partly filled blocks only. Pixels for a block already handed over are
 * ignored (a window given again, or a block already read back from an earlier COG of the scene);
 * windows overlapping inside a block still being filled count their pixels twice, so sources must
 * not overlap.
 */
export class BlockAssembler {
  readonly across: number;
  readonly down: number;
  private readonly open = new Map<number, { pixels: PixelArray; bytes: Uint8Array; missing: number }>();
  private readonly done: Uint8Array;
  private readonly sample: number;

  constructor(readonly grid: BlockGrid) {
    this.across = Math.ceil(grid.width / grid.blockWidth);
    this.down = Math.ceil(grid.height / grid.blockHeight);
    this.done = new Uint8Array(this.across * this.down);
    this.sample = DTYPE[grid.dtype].bytes * grid.bands;
  }

  /** True when every block was handed over. */
  get complete(): boolean {
    return this.done.every((d) => d === 1);
  }

  /** Which blocks were handed over, one byte per block (row-major). */
  get handedOver(): Uint8Array {
    return this.done;
  }

  /** Bytes of the partly filled blocks. */
  get heldBytes(): number {
    let n = 0;
    for (const b of this.open.values()) n += b.bytes.byteLength;
    return n;
  }

  blockSize(col: number, row: number): { width: number; height: number } {
    const { width, height, blockWidth, blockHeight } = this.grid;
    return { width: Math.min(blockWidth, width - col * blockWidth), height: Math.min(blockHeight, height - row * blockHeight) };
  }

  /**
   * Takes the window (x, y, w, h) whose pixels are `bytes` (row-major, bands interleaved,
   * little-endian), and returns the blocks it completed.
   */
  put(x: number, y: number, w: number, h: number, bytes: Uint8Array): Block[] {
    const { width, height, blockWidth, blockHeight } = this.grid;
    const context = { x, y, width: w, height: h };
    if (x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > width || y + h > height) {
      throw new EncodeError(`window (${x}, ${y}) ${w} × ${h} is outside the ${width} × ${height} raster`, { context });
    }
    if (bytes.byteLength !== w * h * this.sample) {
      throw new EncodeError(`window (${x}, ${y}) ${w} × ${h} has ${bytes.byteLength} bytes, expected ${w * h * this.sample}`, { context });
    }
    const completed: Block[] = [];
    for (let row = Math.floor(y / blockHeight); row * blockHeight < y + h; row++) {
      for (let col = Math.floor(x / blockWidth); col * blockWidth < x + w; col++) {
        const index = row * this.across + col;
        const size = this.blockSize(col, row);
        const bx = col * blockWidth;
        const by = row * blockHeight;
        const x0 = Math.max(x, bx);
        const x1 = Math.min(x + w, bx + size.width);
        const y0 = Math.max(y, by);
        const y1 = Math.min(y + h, by + size.height);
        if (this.done[index]) continue;
        let block = this.open.get(index);
        if (block === undefined) {
          const pixels = new DTYPE[this.grid.dtype].array(size.width * size.height * this.grid.bands);
          if (this.grid.fill !== 0) pixels.fill(this.grid.fill as never);
          block = { pixels, bytes: new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength), missing: size.width * size.height };
          this.open.set(index, block);
        }
        const rowBytes = (x1 - x0) * this.sample;
        for (let yy = y0; yy < y1; yy++) {
          const from = ((yy - y) * w + (x0 - x)) * this.sample;
          block.bytes.set(bytes.subarray(from, from + rowBytes), ((yy - by) * size.width + (x0 - bx)) * this.sample);
        }
        block.missing -= (x1 - x0) * (y1 - y0);
        if (block.missing <= 0) {
          this.open.delete(index);
          this.done[index] = 1;
          completed.push({ col, row, pixels: block.pixels });
        }
      }
    }
    return completed;
  }

  /** The blocks not handed over yet, partly filled or never touched (filled with `fill`), one at a time. */
  *rest(): Generator<Block> {
    for (let index = 0; index < this.done.length; index++) {
      if (this.done[index]) continue;
      const col = index % this.across;
      const row = Math.floor(index / this.across);
      let pixels = this.open.get(index)?.pixels;
      if (pixels === undefined) {
        const size = this.blockSize(col, row);
        pixels = new DTYPE[this.grid.dtype].array(size.width * size.height * this.grid.bands);
        if (this.grid.fill !== 0) pixels.fill(this.grid.fill as never);
      }
      this.open.delete(index);
      this.done[index] = 1;
      yield { col, row, pixels };
    }
  }
}

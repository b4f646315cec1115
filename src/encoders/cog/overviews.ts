import type { PixelArray } from './scene.js';

export interface Level {
  width: number;
  height: number;
  blocksAcross: number;
  blocksDown: number;
}

const level = (width: number, height: number, bw: number, bh: number): Level => ({
  width,
  height,
  blocksAcross: Math.ceil(width / bw),
  blocksDown: Math.ceil(height / bh),
});

/**
 * Full resolution first, then the overviews, by GDAL's COG driver (cogdriver.cpp): each level is
 * the previous one halved, rounding down (at least 1 pixel); `true` halves until the level fits
 * in one block, a number asks for exactly that many levels (fewer if 1×1 comes first).
 */
export function levelSizes(width: number, height: number, bw: number, bh: number, overviews: boolean | number): Level[] {
  const levels = [level(width, height, bw, bh)];
  let w = width;
  let h = height;
  for (;;) {
    if (overviews === true) {
      if (w <= bw && h <= bh) break;
    } else if (levels.length - 1 >= Number(overviews) || (w === 1 && h === 1)) break;
    w = Math.max(1, Math.floor(w / 2));
    h = Math.max(1, Math.floor(h / 2));
    levels.push(level(w, h, bw, bh));
  }
  return levels;
}

export interface Reduction {
  mode: 'nearest' | 'average';
  spp: number;
  float: boolean;
  /** The nodata value as the pixels store it, or null. */
  nodata: number | null;
  /** What a pixel with no valid source becomes: nodata, else NaN (floats; ints always have one). */
  empty: number;
}

/**
 * Writes the part of a parent (overview) block that one child block covers: parent pixel (i, j)
 * is made from child-level pixels (2i..2i+1, 2j..2j+1) that exist. `nearest` takes (2i, 2j);
 * `average` takes the mean of the valid ones (not nodata, not NaN), integers rounded half up,
 * and `empty` when none is valid. Child quadrant (dx, dy) fills parent columns from dx·bw/2.
 */
export function reduceQuadrant(
  r: Reduction,
  parent: PixelArray,
  child: PixelArray,
  bw: number,
  bh: number,
  dx: number,
  dy: number,
  childW: number,
  childH: number,
  parentW: number,
  parentH: number,
): void {
  const spp = r.spp;
  const c0 = (dx * bw) / 2;
  const r0 = (dy * bh) / 2;
  const c1 = Math.min(c0 + bw / 2, parentW);
  const r1 = Math.min(r0 + bh / 2, parentH);
  const rowStride = bw * spp;
  if (r.mode === 'nearest') {
    for (let pr = r0; pr < r1; pr++) {
      const src = 2 * (pr - r0) * rowStride;
      const dst = pr * rowStride;
      for (let pc = c0; pc < c1; pc++) {
        const s = src + 2 * (pc - c0) * spp;
        const d = dst + pc * spp;
        for (let b = 0; b < spp; b++) parent[d + b] = child[s + b]!;
      }
    }
    return;
  }
  const nodata = r.nodata;
  const checkValid = r.float || nodata !== null;
  const round = !r.float;
  for (let pr = r0; pr < r1; pr++) {
    const sy = 2 * (pr - r0);
    const hasRow2 = sy + 1 < childH;
    const dst = pr * rowStride;
    for (let pc = c0; pc < c1; pc++) {
      const sx = 2 * (pc - c0);
      const hasCol2 = sx + 1 < childW;
      const a = sy * rowStride + sx * spp;
      const d = dst + pc * spp;
      for (let b = 0; b < spp; b++) {
        // Fixed order (a, right, below, below-right) from +0: the result does not depend on anything else.
        let sum = 0;
        let n = 0;
        let v = child[a + b]!;
        if (!checkValid || (v === v && v !== nodata)) {
          sum += v;
          n++;
        }
        if (hasCol2) {
          v = child[a + spp + b]!;
          if (!checkValid || (v === v && v !== nodata)) {
            sum += v;
            n++;
          }
        }
        if (hasRow2) {
          v = child[a + rowStride + b]!;
          if (!checkValid || (v === v && v !== nodata)) {
            sum += v;
            n++;
          }
          if (hasCol2) {
            v = child[a + rowStride + spp + b]!;
            if (!checkValid || (v === v && v !== nodata)) {
              sum += v;
              n++;
            }
          }
        }
        parent[d + b] = n === 0 ? r.empty : round ? Math.floor(sum / n + 0.5) : sum / n;
      }
    }
  }
}

/**
 * TIFF predictors, applied in place to one tile (rows of `rowSamples` samples), as libtiff's
 * tif_predict.c encodes them for a little-endian file. Each row is predicted on its own.
 */

/**
 * Predictor 2, horizontal differencing: each sample minus the same band's sample one pixel to
 * the left, wrapping at the sample size. On floats it works on their bit patterns (libtiff's
 * horDiff32/horDiff64), which GDAL accepts.
 */
export function horizontalDifference(tile: Uint8Array, bytesPerSample: number, rowSamples: number, rows: number, spp: number): void {
  const { buffer, byteOffset } = tile;
  switch (bytesPerSample) {
    case 1:
      return diff(tile, rowSamples, rows, spp);
    case 2:
      return diff(new Uint16Array(buffer, byteOffset, rowSamples * rows), rowSamples, rows, spp);
    case 4:
      return diff(new Uint32Array(buffer, byteOffset, rowSamples * rows), rowSamples, rows, spp);
    case 8:
      return diff64(new Uint32Array(buffer, byteOffset, rowSamples * rows * 2), rowSamples, rows, spp);
    default:
      throw new Error(`no horizontal predictor for ${bytesPerSample}-byte samples`);
  }
}

function diff(a: Uint8Array | Uint16Array | Uint32Array, rowSamples: number, rows: number, spp: number): void {
  // Typed arrays wrap on store, so a - b stored back is the modular difference.
  for (let r = 0; r < rows; r++) {
    const start = r * rowSamples;
    for (let i = start + rowSamples - 1; i >= start + spp; i--) a[i] = a[i]! - a[i - spp]!;
  }
}

/** 64-bit samples as (low, high) 32-bit words: subtract with borrow. */
function diff64(w: Uint32Array, rowSamples: number, rows: number, spp: number): void {
  for (let r = 0; r < rows; r++) {
    const start = r * rowSamples;
    for (let i = start + rowSamples - 1; i >= start + spp; i--) {
      const lo = w[2 * i]!;
      const plo = w[2 * (i - spp)]!;
      const borrow = lo < plo ? 1 : 0;
      w[2 * i] = lo - plo;
      w[2 * i + 1] = w[2 * i + 1]! - w[2 * (i - spp) + 1]! - borrow;
    }
  }
}

/**
 * Predictor 3, floating point (libtiff's fpDiff): each row's samples are split into byte planes,
 * most significant byte first, then every byte has the byte `spp` places before it subtracted,
 * across the whole row.
 */
export function floatingPointDifference(tile: Uint8Array, bytesPerSample: number, rowSamples: number, rows: number, spp: number, scratch: Uint8Array): void {
  const rowBytes = rowSamples * bytesPerSample;
  for (let r = 0; r < rows; r++) {
    const row = tile.subarray(r * rowBytes, (r + 1) * rowBytes);
    scratch.set(row);
    for (let s = 0; s < rowSamples; s++) {
      const from = s * bytesPerSample;
      for (let b = 0; b < bytesPerSample; b++) row[(bytesPerSample - b - 1) * rowSamples + s] = scratch[from + b]!;
    }
    for (let i = rowBytes - 1; i >= spp; i--) row[i] = row[i]! - row[i - spp]!;
  }
}

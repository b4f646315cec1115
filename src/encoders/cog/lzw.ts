/**
 * TIFF LZW (compression 5) as libtiff's tif_lzw.c writes it: codes packed most significant bit
 * first, Clear (256) first, EOI (257) last, codes from 258, 9 to 12 bits with the "early change"
 * (the width grows once the next code to assign exceeds the current maximum, one code before a
 * plain LZW decoder would), and a Clear when the table fills. libtiff also clears early when the
 * ratio drops; that only changes the size, not the validity, so it is left out.
 */
const CLEAR = 256;
const EOI = 257;
const FIRST = 258;
const BITS_MIN = 9;
const BITS_MAX = 12;
const CODE_MAX = (1 << BITS_MAX) - 1;

/** (prefix code << 8 | byte) → code, valid where stamp matches the current generation. */
const table = new Int32Array(1 << 20);
const stamps = new Uint32Array(1 << 20);
let generation = 0;

export function lzwEncode(input: Uint8Array): Uint8Array {
  // Worst case: 12 bits per input byte plus Clear codes; a generous bound avoids reallocation.
  let out = new Uint8Array(Math.ceil(input.length * 1.6) + 16);
  let op = 0;
  let nextData = 0;
  let nextBits = 0;
  let nbits = BITS_MIN;
  let maxcode = (1 << BITS_MIN) - 1;
  let freeEnt = FIRST;

  const put = (code: number) => {
    nextData = ((nextData << nbits) | code) >>> 0;
    nextBits += nbits;
    while (nextBits >= 8) {
      if (op >= out.length) {
        const grown = new Uint8Array(out.length * 2);
        grown.set(out);
        out = grown;
      }
      out[op++] = (nextData >>> (nextBits - 8)) & 0xff;
      nextBits -= 8;
    }
    nextData &= (1 << nextBits) - 1;
  };
  const reset = () => {
    generation = (generation + 1) >>> 0;
    if (generation === 0) {
      stamps.fill(0);
      generation = 1;
    }
    freeEnt = FIRST;
  };

  reset();
  if (input.length > 0) {
    put(CLEAR);
    let ent = input[0]!;
    for (let i = 1; i < input.length; i++) {
      const c = input[i]!;
      const key = (ent << 8) | c;
      if (stamps[key] === generation) {
        ent = table[key]!;
        continue;
      }
      put(ent);
      ent = c;
      table[key] = freeEnt++;
      stamps[key] = generation;
      if (freeEnt === CODE_MAX - 1) {
        put(CLEAR);
        reset();
        nbits = BITS_MIN;
        maxcode = (1 << BITS_MIN) - 1;
      } else if (freeEnt > maxcode) {
        nbits++;
        maxcode = (1 << nbits) - 1;
      }
    }
    // libtiff's LZWPostEncode: the last string, then account for the entry the decoder adds for it.
    put(ent);
    freeEnt++;
    if (freeEnt === CODE_MAX - 1) {
      put(CLEAR);
      nbits = BITS_MIN;
    } else if (freeEnt > maxcode) {
      nbits++;
    }
  }
  put(EOI);
  if (nextBits > 0) {
    if (op >= out.length) {
      const grown = new Uint8Array(out.length + 1);
      grown.set(out);
      out = grown;
    }
    out[op++] = (nextData << (8 - nextBits)) & 0xff;
  }
  return out.slice(0, op);
}

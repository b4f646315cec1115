import type { PointRecord, SourcePosition } from '../core/record.js';
import { parseTimeUs } from './time.js';

/**
 * A byte scanner for the common shape of a point record: one flat JSON object with the
 * contract's keys, strings of printable ASCII without escapes, plain numbers and nulls. It reads
 * the payload's bytes straight into a PointRecord, with no intermediate object and no string for
 * the low-cardinality fields (they come from a table keyed by their bytes).
 *
 * It never decides that a record is bad: anything else (escapes, non-ASCII, `attrs` or unknown
 * keys, features, duplicate keys, a missing or out-of-range field) returns undefined, and
 * `parseRecord` takes the JSON.parse path, which gives the same record or the dead letter's reason.
 */
export function scanPoint(b: Uint8Array, position: SourcePosition): PointRecord | undefined {
  const end = b.length;
  let i = skipSpace(b, hasBom(b) ? 3 : 0, end);
  if (b[i] !== OPEN) return undefined;
  i = skipSpace(b, i + 1, end);
  let seen = 0;
  let id: string | null = null;
  let dataset = '';
  let variable = '';
  let timeUs = 0;
  let lon = 0;
  let lat = 0;
  let value = 0;
  let unit: string | null = null;
  let quality: string | null = null;
  let station: string | null = null;
  let elevation: number | null = null;
  for (let n = 0; ; n++) {
    if (b[i] !== QUOTE) return undefined;
    // The key the last record had here, when it is the one here (most producers keep an order):
    // then its bytes are compared once, with no scan for its end and no lookup.
    const predicted = n < KEYS.length ? keyOrder[n]! : -1;
    const expected = predicted >= 0 ? KEY_BYTES[predicted]! : undefined;
    let key: number;
    let keyEnd: number;
    if (expected !== undefined && b[i + 1 + expected.length] === QUOTE && sameBytes(b, i + 1, i + 1 + expected.length, expected)) {
      key = predicted;
      keyEnd = i + 1 + expected.length;
    } else {
      keyEnd = stringEnd(b, i + 1, end);
      if (keyEnd < 0) return undefined;
      key = keyOf(b, i + 1, keyEnd);
      if (key >= 0 && n < KEYS.length) keyOrder[n] = key;
    }
    if (key < 0 || (seen & (1 << key)) !== 0) return undefined;
    seen |= 1 << key;
    i = skipSpace(b, keyEnd + 1, end);
    if (b[i] !== COLON) return undefined;
    i = skipSpace(b, i + 1, end);
    const c = b[i];
    if (c === QUOTE) {
      const start = i + 1;
      let valueEnd: number;
      switch (key) {
        case ID:
          valueEnd = stringEnd(b, start, end);
          if (valueEnd < 0) return undefined;
          id = ascii(b, start, valueEnd);
          break;
        case DATASET: case VARIABLE: case UNIT: case QUALITY: case STATION: {
          valueEnd = hashedStringEnd(b, start, end);
          if (valueEnd < 0) return undefined;
          if (valueEnd === start && (key === DATASET || key === VARIABLE)) return undefined;
          const label = interned(b, start, valueEnd, hashed);
          if (key === DATASET) dataset = label;
          else if (key === VARIABLE) variable = label;
          else if (key === UNIT) unit = label;
          else if (key === QUALITY) quality = label;
          else station = label;
          break;
        }
        case TIME: {
          // The common shapes are read where they stand: every byte of them is checked, so none is a quote or an escape.
          let us: number | undefined;
          if (b[start + 24] === QUOTE && (us = utcTimeUs(b, start, start + 24)) !== undefined) valueEnd = start + 24;
          else if (b[start + 20] === QUOTE && (us = utcTimeUs(b, start, start + 20)) !== undefined) valueEnd = start + 20;
          else {
            valueEnd = stringEnd(b, start, end);
            if (valueEnd < 0) return undefined;
            us = utcTimeUs(b, start, valueEnd) ?? parseTimeUs(ascii(b, start, valueEnd));
          }
          if (us === undefined) return undefined;
          timeUs = us;
          break;
        }
        case KIND:
          valueEnd = stringEnd(b, start, end);
          if (valueEnd < 0 || !sameBytes(b, start, valueEnd, POINT)) return undefined;
          break;
        default: return undefined; // a number field given a string
      }
      i = valueEnd + 1;
    } else if (c === LOWER_N) {
      if (b[i + 1] !== 0x75 || b[i + 2] !== 0x6c || b[i + 3] !== 0x6c) return undefined;
      i += 4;
      // Optional fields only; a null required field, or a null kind, is for the JSON path to explain.
      if (key !== ID && key !== UNIT && key !== QUALITY && key !== STATION && key !== ELEVATION) return undefined;
    } else {
      const n = scanNumber(b, i, end);
      if (n === undefined) return undefined;
      i = numberEnd;
      switch (key) {
        case LON: lon = n; break;
        case LAT: lat = n; break;
        case VALUE: value = n; break;
        case ELEVATION: elevation = n; break;
        case TIME: {
          const us = parseTimeUs(n);
          if (us === undefined) return undefined;
          timeUs = us;
          break;
        }
        default: return undefined; // ids and qualities given as numbers: the JSON path formats them
      }
    }
    i = skipSpace(b, i, end);
    if (b[i] === COMMA) {
      i = skipSpace(b, i + 1, end);
      continue;
    }
    if (b[i] !== CLOSE) return undefined;
    break;
  }
  if (skipSpace(b, i + 1, end) !== end) return undefined;
  if ((seen & REQUIRED) !== REQUIRED) return undefined;
  if (lon < -180 || lon > 180 || lat < -90 || lat > 90) return undefined;
  return {
    kind: 'point', position, size: b.length, id, dataset, variable, timeUs, lon, lat, value, unit, quality, station, elevation, attrs: null,
  };
}

const OPEN = 0x7b, CLOSE = 0x7d, QUOTE = 0x22, COLON = 0x3a, COMMA = 0x2c, BACKSLASH = 0x5c, LOWER_N = 0x6e;
const POINT = bytesOf('point');

const KEYS = ['id', 'dataset', 'variable', 'time', 'lon', 'lat', 'value', 'unit', 'quality', 'station', 'elevation', 'kind'] as const;
const [ID, DATASET, VARIABLE, TIME, LON, LAT, VALUE, UNIT, QUALITY, STATION, ELEVATION, KIND] = KEYS.map((_, k) => k) as number[] as [
  number, number, number, number, number, number, number, number, number, number, number, number,
];
const REQUIRED = (1 << DATASET) | (1 << VARIABLE) | (1 << TIME) | (1 << LON) | (1 << LAT) | (1 << VALUE);
const KEY_BYTES = KEYS.map(bytesOf);
/** The keys of the last record scanned, in its order (-1: none yet): the prediction for the next one. */
const keyOrder = new Int8Array(KEYS.length).fill(-1);

function bytesOf(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function hasBom(b: Uint8Array): boolean {
  return b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;
}

function skipSpace(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    i++;
  }
  return i;
}

/** The index of the closing quote of a string of printable ASCII without escapes, or -1. */
function stringEnd(b: Uint8Array, i: number, end: number): number {
  for (; i < end; i++) {
    const c = b[i]!;
    if (c === QUOTE) return i;
    if (c === BACKSLASH || c < 0x20 || c >= 0x7f) return -1;
  }
  return -1;
}

let hashed = 0;

/** `stringEnd`, hashing the string's bytes on the way (FNV-1a, in `hashed`) for `interned`. */
function hashedStringEnd(b: Uint8Array, i: number, end: number): number {
  let h = 0x811c9dc5;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c === QUOTE) {
      hashed = h;
      return i;
    }
    if (c === BACKSLASH || c < 0x20 || c >= 0x7f) return -1;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return -1;
}

function keyOf(b: Uint8Array, start: number, end: number): number {
  // By length, then one byte: at most one full comparison per key.
  let k: number;
  switch (end - start) {
    case 2: k = ID; break;
    case 3: k = b[start + 1] === 0x6f ? LON : LAT;
      break;
    case 4: k = b[start] === 0x74 ? TIME : b[start] === 0x75 ? UNIT : KIND;
      break;
    case 5: k = VALUE; break;
    case 7: k = b[start] === 0x64 ? DATASET : b[start] === 0x71 ? QUALITY : STATION;
      break;
    case 8: k = VARIABLE; break;
    case 9: k = ELEVATION; break;
    default: return -1;
  }
  return sameBytes(b, start, end, KEY_BYTES[k]!) ? k : -1;
}

function sameBytes(b: Uint8Array, start: number, end: number, expected: Uint8Array): boolean {
  if (end - start !== expected.length) return false;
  for (let j = 0; j < expected.length; j++) if (b[start + j] !== expected[j]) return false;
  return true;
}

/**
 * Printable ASCII bytes as a string (one byte per char). Buffer's native latin1 slice takes any
 * Uint8Array: one flat string and nothing else allocated (a view plus toString made a Buffer per
 * call; appending chars made a string per char), about twice as fast on 10-byte ids.
 */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice;
function ascii(b: Uint8Array, start: number, end: number): string {
  return latin1Slice.call(b, start, end);
}

/**
 * One shared string per low-cardinality value (dataset, variable, unit, quality, station), found
 * by its bytes and their hash `h` (hashedStringEnd's): no string is made for a value seen before,
 * and Map lookups by it reuse its hash. Open addressing, bounded: when the table is full, values are made without being kept.
 */
const TABLE_SIZE = 8192;
const tableBytes: (Uint8Array | undefined)[] = new Array(TABLE_SIZE);
const tableStrings: string[] = new Array(TABLE_SIZE);

function interned(b: Uint8Array, start: number, end: number, h: number): string {
  for (let probe = 0; probe < 8; probe++) {
    const slot = (h + probe) & (TABLE_SIZE - 1);
    const known = tableBytes[slot];
    if (known === undefined) {
      const s = ascii(b, start, end);
      tableBytes[slot] = b.slice(start, end);
      tableStrings[slot] = s;
      return s;
    }
    if (sameBytes(b, start, end, known)) return tableStrings[slot]!;
  }
  return ascii(b, start, end);
}

const POW10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];
let numberEnd = 0;

/**
 * A JSON number at `i` (its end in `numberEnd`), or undefined when it is not one. With at most 15
 * significant digits and a power of ten ≤ 22 the value is one correctly rounded multiplication or
 * division of two exact doubles (Clinger's fast path), so it equals JSON.parse's; longer numbers
 * go through Number().
 */
function scanNumber(b: Uint8Array, i: number, end: number): number | undefined {
  const start = i;
  let negative = false;
  if (b[i] === 0x2d) {
    negative = true;
    i++;
  }
  let mantissa = 0;
  let digits = 0;
  let scale = 0;
  const first = b[i];
  if (first === 0x30) {
    i++;
  } else if (first !== undefined && first >= 0x31 && first <= 0x39) {
    while (i < end && b[i]! >= 0x30 && b[i]! <= 0x39) {
      mantissa = mantissa * 10 + (b[i]! - 0x30);
      digits++;
      i++;
    }
  } else return undefined;
  if (b[i] === 0x2e) {
    i++;
    const fractionStart = i;
    while (i < end && b[i]! >= 0x30 && b[i]! <= 0x39) {
      mantissa = mantissa * 10 + (b[i]! - 0x30);
      if (mantissa !== 0) digits++;
      scale--;
      i++;
    }
    if (i === fractionStart) return undefined;
  }
  let exponent = 0;
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    let expNegative = false;
    if (b[i] === 0x2b || b[i] === 0x2d) {
      expNegative = b[i] === 0x2d;
      i++;
    }
    const expStart = i;
    while (i < end && b[i]! >= 0x30 && b[i]! <= 0x39) {
      exponent = exponent * 10 + (b[i]! - 0x30);
      if (exponent > 1000) exponent = 1000;
      i++;
    }
    if (i === expStart) return undefined;
    if (expNegative) exponent = -exponent;
  }
  numberEnd = i;
  const power = scale + exponent;
  let result: number;
  if (digits <= 15 && power >= -22 && power <= 22) {
    result = power < 0 ? mantissa / POW10[-power]! : mantissa * POW10[power]!;
    if (negative) result = -result;
  } else {
    result = Number(ascii(b, start, i));
  }
  return Number.isFinite(result) ? result : undefined;
}

/** The decimal digit at b[i], NaN for any other byte. */
function digit(b: Uint8Array, i: number): number {
  const c = b[i]! - 0x30;
  return c >= 0 && c <= 9 ? c : NaN;
}

const dayStarts = new Map<number, number>();

/**
 * `YYYY-MM-DDThh:mm:ss[.fff]Z`, the common shape, from its bytes (µs since the epoch), or
 * undefined for any other shape (parseTimeUs reads those). Day starts are memoized by date.
 */
function utcTimeUs(b: Uint8Array, start: number, end: number): number | undefined {
  const n = end - start;
  if ((n !== 20 && n !== 24) || b[end - 1] !== 0x5a || b[start + 10] !== 0x54 || b[start + 4] !== 0x2d || b[start + 7] !== 0x2d) return undefined;
  if (b[start + 13] !== 0x3a || b[start + 16] !== 0x3a || (n === 24 && b[start + 19] !== 0x2e)) return undefined;
  // `digit` is a function of its own, not a closure over b and start: that closure was allocated per time.
  const year = digit(b, start + 0) * 1000 + digit(b, start + 1) * 100 + digit(b, start + 2) * 10 + digit(b, start + 3);
  const month = digit(b, start + 5) * 10 + digit(b, start + 6);
  const day = digit(b, start + 8) * 10 + digit(b, start + 9);
  const hour = digit(b, start + 11) * 10 + digit(b, start + 12);
  const minute = digit(b, start + 14) * 10 + digit(b, start + 15);
  const second = digit(b, start + 17) * 10 + digit(b, start + 18);
  const ms = n === 24 ? digit(b, start + 20) * 100 + digit(b, start + 21) * 10 + digit(b, start + 22) : 0;
  // NaN (a non-digit) fails every comparison below.
  if (!(hour <= 23 && minute <= 59 && second <= 59 && ms >= 0 && month >= 1 && month <= 12 && day >= 1 && year >= 0)) return undefined;
  const date = year * 10000 + month * 100 + day;
  let dayMs = dayStarts.get(date);
  if (dayMs === undefined) {
    dayMs = Date.UTC(year, month - 1, day);
    // Date.UTC rolls 2024-02-30 over to March: such a date is not one.
    const check = new Date(dayMs);
    if (check.getUTCDate() !== day || check.getUTCMonth() !== month - 1 || year < 100) return undefined;
    if (dayStarts.size >= 50_000) dayStarts.clear();
    dayStarts.set(date, dayMs);
  }
  const us = (dayMs + ((hour * 60 + minute) * 60 + second) * 1000 + ms) * 1000;
  // Outside ±2^53 µs the product may be rounded: parseTimeUs refuses such times.
  return Number.isSafeInteger(us) ? us : undefined;
}

import type {
  DeadLetter,
  DeadLetterReason,
  ObservationRecord,
  PointRecord,
  SourcePosition,
  VectorRecord,
} from '../core/record.js';
import { scanPoint } from './scan.js';
import { parseTimeUs } from './time.js';
import { checkGeometry, lonLatProblem } from './geometry.js';

export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;
/** How deep `attrs` and a feature's other properties may nest (the kept object is level 1). */
export const MAX_KEPT_DEPTH = 1000;

export type ParseResult = { ok: true; record: ObservationRecord } | { ok: false; deadLetter: DeadLetter };

class Invalid {
  constructor(
    readonly reason: DeadLetterReason,
    readonly message: string,
  ) {}
}

const pointFields = new Set([
  'id', 'dataset', 'variable', 'time', 'lon', 'lat', 'value', 'unit', 'quality', 'station', 'elevation', 'attrs', 'kind',
]);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses and validates one payload (an NDJSON line or a Kafka message value, as bytes) against
 * the record contract (src/records/schemas). Never throws: a bad payload becomes a dead letter
 * with a stable reason code, a message, its source position and its bytes as they came.
 * Point records of the common shape are read by the byte scanner; the rest by JSON.parse.
 */
export function parseRecord(payload: Uint8Array, position: SourcePosition, maxRecordBytes = DEFAULT_MAX_RECORD_BYTES): ParseResult {
  const size = payload.length;
  const fail = (reason: DeadLetterReason, message: string): ParseResult => ({
    ok: false,
    deadLetter: { reason, message, position, payload },
  });
  if (size > maxRecordBytes) return fail('too_large', `record is ${size} bytes, over max_record_bytes ${maxRecordBytes}`);
  const scanned = scanPoint(payload, position);
  if (scanned !== undefined) return { ok: true, record: scanned };
  return parseJsonRecord(payload, position);
}

/** The general path: UTF-8 → JSON.parse → validation. Gives what the scanner gives for what it reads. */
export function parseJsonRecord(payload: Uint8Array, position: SourcePosition): ParseResult {
  const size = payload.length;
  const fail = (reason: DeadLetterReason, message: string): ParseResult => ({
    ok: false,
    deadLetter: { reason, message, position, payload },
  });
  let text: string;
  try {
    // A leading byte order mark is dropped (ignoreBOM: false), as JSON readers do.
    text = utf8.decode(payload);
  } catch {
    return fail('invalid_utf8', `not valid UTF-8 at byte ${firstInvalidUtf8(payload)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return fail('malformed_json', `not valid JSON: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return fail('not_an_object', 'a record must be a JSON object');
  }
  try {
    hasEscapes = text.includes('\\u');
    const object = json as Record<string, unknown>;
    const record = object.type === 'Feature' ? vectorRecord(object, position, size) : pointRecord(object, position, size);
    return { ok: true, record };
  } catch (error) {
    if (error instanceof Invalid) return fail(error.reason, error.message);
    throw error;
  }
}

/** The offset of the first byte that is not part of a well-formed UTF-8 sequence (for the message). */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    // The lead byte gives the length and the range of the second byte (no overlongs, no surrogates).
    let length: number, low = 0x80, high = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) length = 2;
    else if (c >= 0xe0 && c <= 0xef) {
      length = 3;
      if (c === 0xe0) low = 0xa0;
      if (c === 0xed) high = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      length = 4;
      if (c === 0xf0) low = 0x90;
      if (c === 0xf4) high = 0x8f;
    } else return i;
    for (let k = 1; k < length; k++) {
      const next = b[i + k];
      if (next === undefined || next < (k === 1 ? low : 0x80) || next > (k === 1 ? high : 0xbf)) return i;
    }
    i += length;
  }
  return b.length;
}

function pointRecord(o: Record<string, unknown>, position: SourcePosition, size: number): PointRecord {
  if (o.kind !== undefined && o.kind !== 'point') throw new Invalid('wrong_type', 'kind: expected "point" or a GeoJSON Feature');
  const lon = requiredNumber(o, 'lon');
  const lat = requiredNumber(o, 'lat');
  checkLonLat(lon, lat, '');
  let attrs: Record<string, unknown> | null = null;
  if (o.attrs !== undefined && o.attrs !== null) {
    if (typeof o.attrs !== 'object' || Array.isArray(o.attrs)) throw new Invalid('wrong_type', 'attrs: expected an object');
    // A spread defines properties: a `__proto__` key stays data.
    attrs = { ...(o.attrs as Record<string, unknown>) };
  }
  // Fields outside the contract are kept in attrs, never dropped.
  for (const key of Object.keys(o)) {
    if (!pointFields.has(key)) keep((attrs ??= {}), key, o[key]);
  }
  return {
    kind: 'point',
    position,
    size,
    id: optionalLabel(o.id, 'id'),
    dataset: intern(datasetName(o, 'dataset')),
    variable: intern(requiredString(o, 'variable')),
    timeUs: requiredTime(o.time, 'time'),
    lon,
    lat,
    value: requiredNumber(o, 'value'),
    unit: internOrNull(optionalString(o.unit, 'unit')),
    quality: internOrNull(optionalLabel(o.quality, 'quality')),
    station: internOrNull(optionalString(o.station, 'station')),
    elevation: optionalNumber(o.elevation, 'elevation'),
    attrs: attrs === null ? null : keptJson(attrs, 'attrs'),
  };
}

function vectorRecord(o: Record<string, unknown>, position: SourcePosition, size: number): VectorRecord {
  const props = o.properties;
  if (typeof props !== 'object' || props === null || Array.isArray(props)) {
    throw new Invalid(props === undefined || props === null ? 'missing_field' : 'wrong_type', 'properties: expected an object');
  }
  const p = props as Record<string, unknown>;
  const checked = checkGeometry(o.geometry);
  if (!checked.ok) throw new Invalid(checked.reason, checked.message);
  const { geometry, bbox } = checked;
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) if (k !== 'dataset' && k !== 'time' && k !== 'variable' && k !== 'value') keep(rest, k, v);
  return {
    kind: 'vector',
    position,
    size,
    id: optionalLabel(o.id, 'id'),
    dataset: intern(datasetName(p, 'dataset', 'properties.')),
    variable: optionalString(p.variable, 'properties.variable'),
    timeUs: requiredTime(p.time, 'properties.time'),
    value: optionalNumber(p.value, 'properties.value'),
    geometry,
    bbox,
    properties: Object.keys(rest).length === 0 ? null : keptJson(rest, 'properties'),
  };
}

/**
 * `object[key] = value`, except that a `__proto__` key becomes a property (assigning it would set
 * the object's prototype, and JSON.stringify would then lose the field). Plain objects otherwise:
 * null-prototype ones are dictionaries to V8, slower to fill and to stringify.
 */
function keep(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  else object[key] = value;
}

/**
 * JSON text of a kept object (attrs, a feature's other properties). Checked first, so that what
 * JSON.stringify would do wrong is a dead letter instead: a number JSON.parse made infinite
 * (1e400) would become null, and nesting past MAX_KEPT_DEPTH would overflow its stack (a throw
 * that would stop the pipeline).
 */
function keptJson(object: Record<string, unknown>, name: string): string {
  const check = (value: unknown, depth: number): void => {
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new Invalid('non_finite_value', `${name}: a number beyond the range of a 64-bit float would be kept as null`);
      return;
    }
    if (typeof value !== 'object' || value === null) return;
    if (depth > MAX_KEPT_DEPTH) throw new Invalid('too_large', `${name}: nested more than ${MAX_KEPT_DEPTH} levels deep`);
    if (Array.isArray(value)) for (const item of value) check(item, depth + 1);
    else for (const key in value) check((value as Record<string, unknown>)[key], depth + 1);
  };
  check(object, 1);
  return JSON.stringify(object);
}

function checkLonLat(lon: number, lat: number, prefix: string): void {
  const problem = lonLatProblem(lon, lat, prefix);
  if (problem !== undefined) throw new Invalid(problem.reason, problem.message);
}

/**
 * One shared copy of each low-cardinality value (dataset, variable, unit, quality, station):
 * JSON.parse makes a new string per record, and hundreds of thousands of records are in flight.
 * Shared strings also keep their hash, which every later Map lookup by them reuses. Bounded: a
 * stream of distinct values clears it rather than growing it.
 */
const interned = new Map<string, string>();
function intern(value: string): string {
  const known = interned.get(value);
  if (known !== undefined) return known;
  if (interned.size >= 50_000) interned.clear();
  interned.set(value, value);
  return value;
}
function internOrNull(value: string | null): string | null {
  return value === null ? null : intern(value);
}

/** A lone surrogate, which only a `\\u` escape can make (the bytes were UTF-8): UTF-8 (a Parquet string) cannot hold it. */
const LONE_SURROGATE = /\p{Surrogate}/u;
/** Whether the payload being validated has a `\\u` escape at all; set per payload (parsing is synchronous). */
let hasEscapes = false;

/** A string for a column: Unicode text, or the record is refused (the writer would turn it into U+FFFD). */
function unicodeText(value: string, key: string): string {
  if (hasEscapes && LONE_SURROGATE.test(value)) throw new Invalid('wrong_type', `${key}: not Unicode text (an escaped lone surrogate)`);
  return value;
}

function requiredString(o: Record<string, unknown>, key: string, prefix = ''): string {
  const value = o[key];
  if (value === undefined || value === null) throw new Invalid('missing_field', `${prefix}${key}: required`);
  if (typeof value !== 'string' || value.length === 0) throw new Invalid('wrong_type', `${prefix}${key}: expected a non-empty string`);
  return unicodeText(value, `${prefix}${key}`);
}

function requiredNumber(o: Record<string, unknown>, key: string): number {
  const value = o[key];
  if (value === undefined || value === null) throw new Invalid('missing_field', `${key}: required`);
  if (typeof value !== 'number') throw new Invalid('wrong_type', `${key}: expected a number, got ${typeof value}`);
  if (!Number.isFinite(value)) throw new Invalid('non_finite_value', `${key}: must be finite`);
  return value;
}

function requiredTime(value: unknown, key: string): number {
  if (value === undefined || value === null) throw new Invalid('missing_field', `${key}: required`);
  const us = parseTimeUs(value);
  if (us === undefined) {
    throw new Invalid('bad_time', `${key}: expected RFC 3339 (2024-03-01T12:00:00Z) or epoch milliseconds, from 1684-07-28 to 2255-06-05 (±2^53 µs)`);
  }
  return us;
}

/** The dataset is a catalog column too: PostgreSQL text cannot hold U+0000 (the upsert would fail on every retry). */
function datasetName(o: Record<string, unknown>, key: string, prefix = ''): string {
  const value = requiredString(o, key, prefix);
  if (value.includes('\u0000')) throw new Invalid('wrong_type', `${prefix}${key}: U+0000 cannot be part of a dataset name`);
  return value;
}

function optionalString(value: unknown, key: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new Invalid('wrong_type', `${key}: expected a string`);
  return unicodeText(value, key);
}

/** An id or a quality: a string, or a number kept as its shortest text. */
function optionalLabel(value: unknown, key: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'number' && Number.isFinite(value)) {
    // 12345678901234567890 reaches us as 12345678901234567168: the digits the producer sent are gone.
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
      throw new Invalid('wrong_type', `${key}: an integer beyond ±2^53 loses digits as a JSON number; send it as a string`);
    }
    return String(value);
  }
  if (typeof value !== 'string') throw new Invalid('wrong_type', `${key}: expected a string or a number`);
  return unicodeText(value, key);
}

function optionalNumber(value: unknown, key: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number') throw new Invalid('wrong_type', `${key}: expected a number`);
  if (!Number.isFinite(value)) throw new Invalid('non_finite_value', `${key}: must be finite`);
  return value;
}

/**
 * The fuzz oracle: what the record contract (README "The record contract", the JSON Schemas in
 * src/records/schemas/) says a payload is, computed without src/records. Layers come in the
 * order a reader must take them (too large → not UTF-8 → not JSON → not an object); within the
 * record, every rule it breaks is collected, and the parser may report any one of them (the
 * contract gives no order). Where the contract allows two readings of one fault, both reasons
 * are listed (`alt`).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { DeadLetterReason } from '../../src/core/record.js';
import { canonical, decodeUtf8, depthOf, hasNonFinite, members, parseJson, type Json } from './json.js';

export type Reason = DeadLetterReason;

/** README: attrs and a feature's other properties nest at most 1,000 levels deep (the kept object is level 1). */
export const MAX_KEPT_DEPTH = 1000;

export interface ExpectedPoint {
  kind: 'point';
  id: string | null;
  dataset: string;
  variable: string;
  timeUs: number;
  lon: number;
  lat: number;
  value: number;
  unit: string | null;
  quality: string | null;
  station: string | null;
  elevation: number | null;
  /** canonical() of the attrs object, or null. */
  attrs: string | null;
  /** Whether attrs hold a `__proto__` key at their top (coverage of the pollution cases). */
  protoKey: boolean;
}

export interface ExpectedVector {
  kind: 'vector';
  id: string | null;
  dataset: string;
  variable: string | null;
  timeUs: number;
  value: number | null;
  /** As the feature gives it (support.ts storedGeometry: what WKB keeps of it). */
  geometry: { type: string; coordinates: unknown };
  properties: string | null;
  protoKey: boolean;
}

export type ExpectedRecord = ExpectedPoint | ExpectedVector;

export type Outcome = { ok: true; record: ExpectedRecord } | { ok: false; reasons: Reason[]; why: string[] };

// What the published schemas say directly is read from them (the rest of the rules are the README's).
interface SchemaNode {
  required?: string[];
  properties?: Record<string, SchemaNode>;
  pattern?: string;
  enum?: string[];
  oneOf?: SchemaNode[];
}
const schema = (name: string) => JSON.parse(readFileSync(new URL(`../../../src/records/schemas/${name}`, import.meta.url), 'utf8')) as SchemaNode;
const at = (node: SchemaNode, ...path: string[]): SchemaNode =>
  path.reduce((n, key) => n.properties?.[key] ?? assert.fail(`the schema has no ${path.join('.')}`), node);
const pointSchema = schema('point.schema.json');
const vectorSchema = schema('vector.schema.json');
/** The contract's fields; the others go to attrs. */
const POINT_FIELDS = new Set(Object.keys(pointSchema.properties!));
const VECTOR_TAKEN = new Set(Object.keys(at(vectorSchema, 'properties').properties!));
const GEOMETRY_TYPES = new Set(at(vectorSchema, 'geometry', 'type').enum);
const TIME_PATTERN = new RegExp(at(pointSchema, 'time').oneOf![0]!.pattern!);
const DATASET_PATTERN = new RegExp(at(pointSchema, 'dataset').pattern!);
assert.equal(at(vectorSchema, 'properties', 'dataset').pattern, at(pointSchema, 'dataset').pattern, 'one dataset pattern in both schemas');

class Faults {
  readonly reasons = new Set<Reason>();
  readonly why: string[] = [];
  add(why: string, ...reasons: Reason[]): undefined {
    for (const r of reasons) this.reasons.add(r);
    this.why.push(why);
    return undefined;
  }
}

const absent = (node: Json | undefined): node is undefined | { t: 'null' } => node === undefined || node.t === 'null';

/** Unicode text: every surrogate is half of a pair (a UTF-8 column cannot hold a lone one). */
function isUnicode(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

/** The payload's fate under the contract, with max_record_bytes counted in bytes. */
export function expectedOutcome(payload: Uint8Array, maxRecordBytes: number): Outcome {
  if (payload.length > maxRecordBytes) return { ok: false, reasons: ['too_large'], why: [`${payload.length} bytes`] };
  let text = decodeUtf8(payload);
  if (text === undefined) return { ok: false, reasons: ['invalid_utf8'], why: ['not UTF-8'] };
  // "A UTF-8 byte order mark is ignored": one, at the start of the payload.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const json = parseJson(text);
  if (json === undefined) return { ok: false, reasons: ['malformed_json'], why: ['not JSON'] };
  if (json.t !== 'object') return { ok: false, reasons: ['not_an_object'], why: [json.t] };
  const faults = new Faults();
  const m = members(json);
  const type = m.get('type');
  const record = type?.t === 'string' && type.value === 'Feature' ? vector(m, faults) : point(m, faults);
  if (faults.reasons.size > 0 || record === undefined) return { ok: false, reasons: [...faults.reasons].sort(), why: faults.why };
  return { ok: true, record };
}

function point(m: Map<string, Json>, f: Faults): ExpectedPoint | undefined {
  const kind = m.get('kind');
  if (kind !== undefined && !(kind.t === 'string' && kind.value === 'point')) f.add('kind is not "point"', 'wrong_type');
  const lon = requiredNumber(m.get('lon'), 'lon', f, 'lon_out_of_range');
  const lat = requiredNumber(m.get('lat'), 'lat', f, 'lat_out_of_range');
  if (lon !== undefined && (lon < -180 || lon > 180)) f.add(`lon ${lon}`, 'lon_out_of_range');
  if (lat !== undefined && (lat < -90 || lat > 90)) f.add(`lat ${lat}`, 'lat_out_of_range');
  const attrsNode = m.get('attrs');
  let kept: Map<string, Json> | undefined;
  if (!absent(attrsNode)) {
    if (attrsNode.t !== 'object') f.add('attrs is not an object', 'wrong_type');
    else kept = members(attrsNode);
  }
  // Fields outside the contract join attrs; on a clash with an attrs key the top-level field wins
  // (what the parser does; the contract does not say, see the fuzz report).
  for (const [key, value] of m) if (!POINT_FIELDS.has(key)) (kept ??= new Map()).set(key, value);
  const attrs = kept === undefined ? null : keptJson(kept, 'attrs', f);
  const record: ExpectedPoint = {
    kind: 'point',
    id: label(m.get('id'), 'id', f),
    dataset: datasetName(m.get('dataset'), 'dataset', f)!,
    variable: requiredText(m.get('variable'), 'variable', f)!,
    timeUs: requiredTime(m.get('time'), 'time', f)!,
    lon: lon!,
    lat: lat!,
    value: requiredNumber(m.get('value'), 'value', f)!,
    unit: optionalText(m.get('unit'), 'unit', f),
    quality: label(m.get('quality'), 'quality', f),
    station: optionalText(m.get('station'), 'station', f),
    elevation: optionalNumber(m.get('elevation'), 'elevation', f),
    attrs,
    protoKey: kept?.has('__proto__') ?? false,
  };
  return f.reasons.size > 0 ? undefined : record;
}

function vector(m: Map<string, Json>, f: Faults): ExpectedVector | undefined {
  const geometry = checkGeometry(m.get('geometry'), f);
  const id = label(m.get('id'), 'id', f);
  const props = m.get('properties');
  if (absent(props)) return f.add('properties missing', 'missing_field');
  if (props.t !== 'object') return f.add('properties is not an object', 'wrong_type');
  const p = members(props);
  const rest = new Map([...p].filter(([k]) => !VECTOR_TAKEN.has(k)));
  const record: ExpectedVector = {
    kind: 'vector',
    id,
    dataset: datasetName(p.get('dataset'), 'properties.dataset', f)!,
    variable: optionalText(p.get('variable'), 'properties.variable', f),
    timeUs: requiredTime(p.get('time'), 'properties.time', f)!,
    value: optionalNumber(p.get('value'), 'properties.value', f),
    geometry: geometry!,
    properties: rest.size === 0 ? null : keptJson(rest, 'properties', f),
    protoKey: rest.has('__proto__'),
  };
  return f.reasons.size > 0 ? undefined : record;
}

function keptJson(kept: Map<string, Json>, name: string, f: Faults): string | null {
  const object: Json = { t: 'object', entries: [...kept] };
  const depth = depthOf(object);
  const nonFinite = hasNonFinite(object);
  if (depth > MAX_KEPT_DEPTH) f.add(`${name} nest ${depth} deep`, 'too_large');
  if (nonFinite) f.add(`${name} hold a number beyond a double`, 'non_finite_value');
  return depth > MAX_KEPT_DEPTH || nonFinite ? null : canonical(object);
}

function requiredText(node: Json | undefined, key: string, f: Faults): string | undefined {
  if (absent(node)) return f.add(`${key} missing`, 'missing_field');
  if (node.t !== 'string' || node.value.length === 0) return f.add(`${key} is not a non-empty string`, 'wrong_type');
  if (!isUnicode(node.value)) return f.add(`${key} has a lone surrogate`, 'wrong_type');
  return node.value;
}

/** The schemas' dataset pattern: no U+0000 (catalogs keep it as text, and PostgreSQL text cannot). */
function datasetName(node: Json | undefined, key: string, f: Faults): string | undefined {
  const name = requiredText(node, key, f);
  if (name !== undefined && !DATASET_PATTERN.test(name)) return f.add(`${key} does not match the schemas' pattern`, 'wrong_type');
  return name;
}

function optionalText(node: Json | undefined, key: string, f: Faults): string | null {
  if (absent(node)) return null;
  if (node.t !== 'string') return f.add(`${key} is not a string`, 'wrong_type') ?? null;
  if (!isUnicode(node.value)) return f.add(`${key} has a lone surrogate`, 'wrong_type') ?? null;
  return node.value;
}

/** id and quality: a string, or a number kept as its shortest text (ECMAScript Number::toString). */
function label(node: Json | undefined, key: string, f: Faults): string | null {
  if (absent(node)) return null;
  if (node.t === 'string') {
    if (!isUnicode(node.value)) return f.add(`${key} has a lone surrogate`, 'wrong_type') ?? null;
    return node.value;
  }
  if (node.t === 'number') {
    if (!Number.isFinite(node.value)) return f.add(`${key} ${node.text} is beyond a double`, 'wrong_type', 'non_finite_value') ?? null;
    // A number that is an integer past 2^53 has lost the producer's digits.
    if (Number.isInteger(node.value) && !Number.isSafeInteger(node.value)) return f.add(`${key} ${node.text} is past 2^53`, 'wrong_type') ?? null;
    return String(node.value);
  }
  return f.add(`${key} is a ${node.t}`, 'wrong_type') ?? null;
}

function requiredNumber(node: Json | undefined, key: string, f: Faults, alt?: Reason): number | undefined {
  if (absent(node)) return f.add(`${key} missing`, 'missing_field');
  if (node.t !== 'number') return f.add(`${key} is a ${node.t}`, 'wrong_type');
  if (!Number.isFinite(node.value)) return f.add(`${key} ${node.text} is beyond a double`, 'non_finite_value', ...(alt ? [alt] : []));
  return node.value;
}

function optionalNumber(node: Json | undefined, key: string, f: Faults): number | null {
  if (absent(node)) return null;
  if (node.t !== 'number') return f.add(`${key} is a ${node.t}`, 'wrong_type') ?? null;
  if (!Number.isFinite(node.value)) return f.add(`${key} ${node.text} is beyond a double`, 'non_finite_value') ?? null;
  return node.value;
}

function requiredTime(node: Json | undefined, key: string, f: Faults): number | undefined {
  if (absent(node)) return f.add(`${key} missing`, 'missing_field');
  if (node.t === 'string') return rfc3339Us(node.value) ?? f.add(`${key} ${JSON.stringify(node.value)} is not RFC 3339`, 'bad_time');
  if (node.t === 'number') return epochMsUs(node.text) ?? f.add(`${key} ${node.text} is not epoch milliseconds we keep`, 'bad_time');
  return f.add(`${key} is a ${node.t}`, 'bad_time', 'wrong_type');
}

// The schemas' pattern, anchored; JS `$` without the m flag is the end of the text.
const RFC3339 = /^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))$/;

const isLeap = (y: number) => y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
/** Days from 0000-01-01 to y-01-01, proleptic Gregorian (year 0 is a leap year). */
const daysBeforeYear = (y: number) => 365 * y + Math.ceil(y / 4) - Math.ceil(y / 100) + Math.ceil(y / 400);
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * µs since the epoch of an RFC 3339 date-time (proleptic Gregorian, digits past the microsecond
 * dropped, a leap second :60 read as :59), or undefined; also undefined beyond ±(2^53 − 1) µs
 * (README: like epoch milliseconds, times are kept to the µs within that range).
 */
export function rfc3339Us(s: string): number | undefined {
  const m = RFC3339.exec(s);
  if (m === null || !TIME_PATTERN.test(s)) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12) return undefined;
  const monthDays = month === 2 && isLeap(year) ? 29 : MONTH_DAYS[month - 1]!;
  if (day < 1 || day > monthDays || hour > 23 || minute > 59 || second > 60) return undefined;
  let offsetMinutes = 0;
  if (m[8] !== undefined) {
    const [oh, om] = [Number(m[9]), Number(m[10])];
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (m[8] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  let dayOfYear = day - 1;
  for (let k = 1; k < month; k++) dayOfYear += k === 2 && isLeap(year) ? 29 : MONTH_DAYS[k - 1]!;
  const days = daysBeforeYear(year) - daysBeforeYear(1970) + dayOfYear;
  const seconds = BigInt(days) * 86_400n + BigInt(hour * 3600 + minute * 60 + Math.min(second, 59) - offsetMinutes * 60);
  const fraction = BigInt(((m[7] ?? '') + '000000').slice(0, 6));
  return safeUs(seconds * 1_000_000n + fraction);
}

/** µs of epoch milliseconds written as JSON number text: rounded half up to the µs; within ±(2^53 − 1). */
export function epochMsUs(text: string): number | undefined {
  const m = /^(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/.exec(text)!;
  const digits = BigInt(m[2]! + (m[3] ?? ''));
  const scale = Number(m[4] ?? 0) - (m[3] ?? '').length + 3; // µs = digits · 10^scale
  if (digits === 0n) return 0;
  if (scale > 20) return undefined; // ≥ 10^20 µs
  if (m[2]!.length + (m[3] ?? '').length + scale < -1) return 0; // below 0.1 µs (and no 10^huge BigInt)
  let us: bigint;
  if (scale >= 0) us = digits * 10n ** BigInt(scale);
  else {
    const unit = 10n ** BigInt(-scale);
    us = digits / unit;
    const rest = digits % unit;
    // Half up toward +∞ (so for a negative time, a half rounds toward zero).
    if (m[1] === '-' ? rest * 2n > unit : rest * 2n >= unit) us += 1n;
  }
  return safeUs(m[1] === '-' ? -us : us);
}

const MAX_US = BigInt(Number.MAX_SAFE_INTEGER);
const safeUs = (us: bigint): number | undefined => (us > MAX_US || us < -MAX_US ? undefined : Number(us));

/** The geometry as stored, or undefined with its faults recorded. */
function checkGeometry(node: Json | undefined, f: Faults): ExpectedVector['geometry'] | undefined {
  if (absent(node)) return f.add('geometry missing', 'missing_field');
  if (node.t !== 'object') return f.add('geometry is not an object', 'bad_geometry');
  const g = members(node);
  const type = g.get('type');
  if (type?.t !== 'string' || !GEOMETRY_TYPES.has(type.value)) return f.add('geometry.type unknown', 'bad_geometry');
  const before = f.reasons.size;
  const position = (p: Json | undefined): number[] | undefined => {
    if (p?.t !== 'array' || p.items.length < 2 || p.items.length > 4) return f.add('a position is not 2–4 numbers', 'bad_geometry');
    if (!p.items.every((n) => n.t === 'number')) return f.add('a position holds a non-number', 'bad_geometry');
    const xs = p.items.map((n) => (n as { value: number }).value);
    if (!xs.every(Number.isFinite)) return f.add('a position holds a number beyond a double', 'bad_geometry', 'non_finite_value');
    if (xs[0]! < -180 || xs[0]! > 180) f.add(`position lon ${xs[0]}`, 'lon_out_of_range');
    if (xs[1]! < -90 || xs[1]! > 90) f.add(`position lat ${xs[1]}`, 'lat_out_of_range');
    return xs;
  };
  const list = <T>(n: Json | undefined, min: number, what: string, item: (x: Json) => T | undefined): T[] | undefined => {
    if (n?.t !== 'array') return f.add(`${what} is not an array`, 'bad_geometry');
    if (n.items.length < min) return f.add(`${what} has ${n.items.length} items, fewer than ${min}`, 'bad_geometry');
    const out = n.items.map(item);
    return out.every((x) => x !== undefined) ? (out as T[]) : undefined;
  };
  const line = (n: Json) => list(n, 2, 'a line', position);
  const ring = (n: Json) => {
    const r = list(n, 4, 'a ring', position);
    if (r !== undefined) {
      const [a, b] = [r[0]!, r[r.length - 1]!];
      if (a.length !== b.length || a.some((x, i) => x !== b[i])) return f.add('a ring is not closed', 'bad_geometry');
    }
    return r;
  };
  const polygon = (n: Json) => list(n, 1, 'a polygon', ring);
  const c = g.get('coordinates');
  const coordinates = {
    Point: () => position(c),
    MultiPoint: () => list(c, 1, 'a MultiPoint', position),
    LineString: () => line(c!),
    MultiLineString: () => list(c, 1, 'a MultiLineString', line),
    Polygon: () => polygon(c!),
    MultiPolygon: () => list(c, 1, 'a MultiPolygon', polygon),
  }[type.value as 'Point']();
  if (f.reasons.size > before || coordinates === undefined) return undefined;
  return { type: type.value, coordinates };
}

export interface ClassifyRules {
  rules: { match: Record<string, unknown>; memory_type: string }[];
  default: string;
}

/** A glob as the README has them: `*` any run of characters, `?` one; anything else itself. */
function globMatch(pattern: string, value: string): boolean {
  // Classic two-pointer wildcard matching with backtracking to the last `*`.
  let p = 0, v = 0, star = -1, mark = 0;
  while (v < value.length) {
    if (p < pattern.length && (pattern[p] === '?' || (pattern[p] !== '*' && pattern[p] === value[v]))) {
      p++;
      v++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = v;
    } else if (star >= 0) {
      p = star + 1;
      v = ++mark;
    } else return false;
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** The memory type the classify rules give a valid record (first rule whose every key matches), or `dead_letter`. */
export function expectedMemoryType(record: ExpectedRecord, classify: ClassifyRules): string {
  for (const rule of classify.rules) {
    const ok = Object.entries(rule.match).every(([key, want]) => {
      if (key !== 'variable' && key !== 'dataset' && key !== 'kind') throw new Error(`the oracle does not model classify key ${key}`);
      const value = key === 'kind' ? record.kind : key === 'dataset' ? record.dataset : record.variable;
      const patterns = Array.isArray(want) ? (want as string[]) : [want as string];
      return value !== null && patterns.some((p) => globMatch(p, value));
    });
    if (ok) return rule.memory_type;
  }
  return classify.default;
}

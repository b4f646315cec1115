/**
 * Hostile payloads for the fuzz suite, as fast-check arbitraries: valid point records and GeoJSON
 * features in many spellings, the same with faults in one or more fields, byte-level damage
 * (truncation, invalid UTF-8, NUL, BOM, CR), JSON that is not a record, deep nesting, and sizes
 * around max_record_bytes. A case carries only its bytes and a tag for the report: what it should
 * become is the oracle's business (oracle.ts), never the generator's.
 */
import { seededRandom } from '../../src/records/sample.js';
import fc from 'fast-check';

export interface FuzzCase {
  bytes: Uint8Array;
  /** Which generator made it (coverage counts, failure messages). */
  tag: string;
}

const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

/** How fast-check prints a case in a failure: its tag, size and first bytes (a 64 KiB array would bury the message). */
export function describeCase(c: FuzzCase): string {
  const head = Buffer.from(c.bytes.subarray(0, 240)).toString('latin1').replace(/[^\x20-\x7e]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `[${c.tag}] ${c.bytes.length} bytes: ${head}${c.bytes.length > 240 ? '…' : ''}`;
}

/** A case that fast-check prints with describeCase. */
function fuzzCase(c: FuzzCase): FuzzCase {
  return Object.defineProperty({ ...c }, fc.toStringMethod, { value: () => describeCase(c), enumerable: false });
}

/** A small PRNG for spelling choices (whitespace, escapes) that need not shrink. */
function prng(seed: number) {
  const next = seededRandom(seed);
  return { next, pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]! };
}
type Rng = ReturnType<typeof prng>;

const SPACES = ['', '', '', '', '', ' ', '  ', '\t', '\r\n', '\n', ' \r\n\t '];

/** A JSON string literal for `value`: JSON.stringify, or with some characters \u-escaped (and `/` as `\/`). */
function stringText(value: string, r: Rng): string {
  if (r.next() < 0.6) return JSON.stringify(value);
  let out = '"';
  // Escapes stay whole, and a surrogate pair is escaped as a pair or not at all (half of one raw would be U+FFFD in UTF-8).
  for (const ch of JSON.stringify(value).slice(1, -1).match(/\\u[0-9a-fA-F]{4}|\\.|[\ud800-\udbff][\udc00-\udfff]|[\s\S]/g) ?? []) {
    const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    if (ch[0] === '\\' || r.next() >= 0.3) out += ch;
    else out += ch === '/' ? '\\/' : [...ch.split('')].map(escape).join('');
  }
  return `${out}"`;
}

type Member = [key: string, value: string];

/** An object's text from members (key as a JS string, value as JSON text), spelled by `r`. */
function objectText(members: readonly Member[], r: Rng, plainKeys = false): string {
  const s = () => r.pick(SPACES);
  if (members.length === 0) return `{${s()}}`;
  const key = (k: string) => (plainKeys ? JSON.stringify(k) : stringText(k, r));
  return `{${s()}${members.map(([k, v]) => `${key(k)}${s()}:${s()}${v}`).join(`${s()},${s()}`)}${s()}}`;
}

const seed = fc.integer();
const weighted = <T>(...arbs: [number, fc.Arbitrary<T>][]) => fc.oneof(...arbs.map(([weight, arbitrary]) => ({ weight, arbitrary })));
const str = (...values: string[]) => fc.constantFrom(...values.map((v) => JSON.stringify(v)));
const raw = (...texts: string[]) => fc.constantFrom(...texts);

/** Number text as producers write it: integers, decimals, exponents, long digit runs. */
function numberText(lo: number, hi: number): fc.Arbitrary<string> {
  return fc.tuple(fc.double({ min: lo, max: hi, noNaN: true }), fc.nat(8), fc.nat(6)).map(([v, style, digits]) => {
    switch (style) {
      case 0: return String(Math.round(v));
      case 1: return v.toFixed(digits);
      case 2: return v.toExponential(digits);
      case 3: return v.toExponential(digits).toUpperCase().replace('E+', digits % 2 === 0 ? 'E' : 'E+');
      case 4: return v.toPrecision(15);
      case 5: return `${v.toFixed(2)}000000000000000`;
      default: return String(v);
    }
  });
}

// --- Field values: valid spellings -------------------------------------------------------------

const DATASETS = ['noaa-isd', 'era5-land', 'Zürich-ds', '__proto__', 'constructor', '../../etc', '🌍 earth', 'a/b\\c', 'x\u0000y', 'firms-modis'];
const VARIABLES = ['temperature', 'temperature', 'precipitation', 'wind_speed', 'relative_humidity', 't2m', 'Temperature', '__proto__', 'température'];
const dataset = weighted([6, str('noaa-isd', 'era5-land')], [3, str(...DATASETS)]);
const variable = weighted([6, str('temperature', 'precipitation', 'wind_speed')], [3, str(...VARIABLES)]);

/** Mostly March and April 2024 (few objects per run); sometimes the edges of what RFC 3339 and a double hold. */
const time = weighted(
  [8, fc.tuple(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 86_399 }), fc.integer({ min: 0, max: 999 }), fc.boolean(), fc.constantFrom(3, 4))
    .map(([d, s, ms, withMs, month]) => {
      const iso = new Date(Date.UTC(2024, month - 1, d) + s * 1000 + ms).toISOString();
      return JSON.stringify(withMs ? iso : `${iso.slice(0, 19)}Z`);
    })],
  [3, fc.integer({ min: 1_709_251_200_000, max: 1_714_435_199_999 }).map(String)],
  [2, fc.tuple(fc.integer({ min: 1_709_251_200, max: 1_714_435_199 }), fc.constantFrom('.5', '.125', '.001', '.999', '.0', '')).map(([s, f]) => `${s}000${f}`)],
  [3, str(
    '2024-03-01t00:00:00z', '2024-03-01 12:00:00+02:00', '2024-03-31T23:30:00-01:00', '2024-03-10T10:00:00.1Z', '2024-03-10T10:00:00.123456Z',
    '2024-03-10T10:00:00.123456789Z', '2024-02-29T12:00:00Z', '2024-03-01T00:00:00+00:00', '2016-12-31T23:59:60Z', '2024-03-01T12:30:60.5Z',
    '0000-02-29T00:00:00Z', '0099-12-31T23:59:59Z', '0000-01-01T00:00:00.001Z', '1600-01-01T00:00:00Z', '1969-12-31T23:59:59.999999Z',
    '9999-12-31T23:59:59Z', '2255-06-05T23:47:34.740991Z', '2255-06-05T23:47:34.740992Z', '1684-07-28T00:12:25.259009Z',
    '1684-07-28T00:12:25.259008Z', '2255-06-06T01:47:34.740991+02:00',
  )],
  [1, raw('0', '-0', '-86400000', '1.7092512e12', '1709251200000e0', '17092512000000E-1', '1e3')],
);

const lon = weighted([8, numberText(-180, 180)], [1, raw('180', '-180', '180.0', '-0', '0', '1e-320', '0.1e1', '179.99999999999999999', '-180.00000000000001')]);
const lat = weighted([8, numberText(-90, 90)], [1, raw('90', '-90', '90.0', '-0', '1E1', '89.999999999999999999', '5e-324')]);
const value = weighted(
  [8, numberText(-1e6, 1e6)],
  [1, raw('1.7976931348623157e308', '-1.7976931348623157e308', '5e-324', '12345678901234567890', '-12345678901234567890', '1e308', '0', '-0', '1e-400', '0.1', '123456789012345678901234567890.5')],
);
const label = weighted(
  [3, fc.nat(1_000_000).map((n) => JSON.stringify(`obs-${n}`))],
  [1, str('', 'ïd-ünïcode', '🌍-1', '__proto__', 'a"b\\c', 'tab\there', 'x\u2028y', '\ud83d\ude00', 'constructor')],
  [1, raw('17', '-0', '1.25', '1e3', '9007199254740991', '-9007199254740991', '0.1', '1.5e-7')],
);
const unit = str('K', 'mm', 'm s-1', '°C', '', '__proto__', 'µg/m³');
const quality = weighted([2, str('good', 'suspect', 'toString')], [1, raw('1', '0', '-2', '1.5', '1e3', '9007199254740991')]);
const station = str('ST0001', 'ST0002', 'Zürich Fluntern', 'toString', '', '\u2028', 'hasOwnProperty', 'a'.repeat(300));
const elevation = weighted([3, numberText(-500, 9000)], [1, raw('-0', '1e-400', '8848.86')]);

/** Keys that are special to JavaScript objects, and some that are only odd. */
const KEYS = ['sensor', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', 'ü', 'a"b', '1', '0', '10', 'polluted', '\u0000', '__defineGetter__'];

/** A small JSON value (as text) for attrs and properties: scalars, arrays, objects with odd keys, duplicates. */
const jsonValue: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    str('x', '', 'ü', '🌍', '\ud800\udc00', 'line\nbreak', 'q"uote', '\ud800'),
    raw('0', '-0', '1.5', '-2e-3', '12345678901234567890', '1e-400', 'true', 'false', 'null', '9007199254740993'),
    fc.array(tie('value'), { maxLength: 3 }).map((items) => `[${items.join(',')}]`),
    fc.tuple(fc.array(fc.tuple(fc.constantFrom(...KEYS), tie('value')), { maxLength: 4 }), seed)
      .map(([members, s]) => objectText(members, prng(s))),
  ),
})).value;

/** An attrs object, its `__proto__` and `constructor` keys included. */
const attrsObject = fc.tuple(fc.array(fc.tuple(fc.constantFrom(...KEYS), jsonValue), { maxLength: 5 }), seed).map(([m, s]) => objectText(m, prng(s)));

/** Fields outside the contract, which attrs keep. */
const extra: fc.Arbitrary<Member> = weighted(
  [2, fc.constant<Member>(['__proto__', '{"polluted":"yes"}'])],
  [1, fc.constant<Member>(['constructor', '{"prototype":{"polluted":true}}'])],
  [1, fc.tuple(fc.constantFrom('prototype', 'toString', 'hasOwnProperty', 'valueOf', 'type', 'extra', 'sensor_model', '__proto__'), jsonValue)],
);

// --- Field values: faults ----------------------------------------------------------------------

/** JSON text that is not a JSON value: the record around it is malformed. */
const notJson = raw('NaN', 'Infinity', '-Infinity', 'nan', '+1', '.5', '01', '1.', '1e', '0x10', "'x'", 'undefined', 'True', 'nul', '"unterminated', '"bad \\x escape"', '"\\u12"', '-');
const wrongKind = raw('"12"', 'true', 'false', '[]', '[1,2]', '{}', '{"a":1}', '""');
const hugeNumber = raw('1e400', '-1e400', '1e309', '2e308');

const badTime = weighted(
  [3, str(
    '2024-02-30T00:00:00Z', '2023-02-29T00:00:00Z', '2100-02-29T00:00:00Z', '2024-13-01T00:00:00Z', '2024-00-10T00:00:00Z', '2024-03-00T00:00:00Z',
    '2024-03-01T24:00:00Z', '2024-03-01T00:60:00Z', '2024-03-01T00:00:61Z', '2024-03-01', '2024-03-01T00:00:00', '2024-03-01T00:00:00+24:00',
    '2024-03-01T00:00:00+05:60', '2024-03-01T00:00:00.Z', '2024-03-01T00:00:00.1234567890Z', 'yesterday', '', ' 2024-03-01T00:00:00Z',
    '2024-03-01T00:00:00Z\n', '２０２４-03-01T00:00:00Z', '+2024-03-01T00:00:00Z', '9999-12-31T23:59:59.000001Z', '1500-01-01T00:00:00.000001Z',
    '2024-03-01T00:00:00+0200', '2024-3-1T0:0:0Z', '12024-03-01T00:00:00Z', '1709251200000', '2024-03-01T00:00:00ZZ', '2024-03-01T00:00:00.000z ',
  )],
  [2, raw('1e400', '12345678901234567890', '-1e20', '9007199254741', '8.64e15', '1e13', '-9007199254741')],
  [1, raw('true', 'false', '[]', '{}', '[1709251200000]')],
);

/** What can go wrong with a field: absent, null, a bad value (the field's own list), bad JSON, or a duplicate key. */
type Fault = { kind: 'drop' } | { kind: 'set'; text: string } | { kind: 'duplicateBefore'; text: string } | { kind: 'duplicateAfter'; text: string };
const fault = (bad: fc.Arbitrary<string>): fc.Arbitrary<Fault> =>
  weighted(
    [2, fc.constant<Fault>({ kind: 'drop' })],
    [1, fc.constant<Fault>({ kind: 'set', text: 'null' })],
    [6, bad.map((text): Fault => ({ kind: 'set', text }))],
    [1, notJson.map((text): Fault => ({ kind: 'set', text }))],
    // JSON.parse keeps the last duplicate: a bad first copy is harmless, a bad last one is not.
    [1, bad.map((text): Fault => ({ kind: 'duplicateBefore', text }))],
    [1, bad.map((text): Fault => ({ kind: 'duplicateAfter', text }))],
  );

const pointFaults: Record<string, fc.Arbitrary<string>> = {
  dataset: weighted([3, wrongKind], [1, raw('""', '"\\ud800"', '"a\\udc00b"', '1')]),
  variable: weighted([3, wrongKind], [1, raw('""', '"\\udbff"', '5')]),
  time: badTime,
  lon: weighted([3, raw('180.0000001', '-180.5', '1e3', '-200', '360', '181')], [2, wrongKind], [2, hugeNumber]),
  lat: weighted([3, raw('90.00001', '-90.5', '1e2', '-1000', '91')], [2, wrongKind], [2, hugeNumber]),
  value: weighted([3, wrongKind], [3, hugeNumber], [1, raw('"NaN"', '"280.5"')]),
  id: weighted([3, raw('true', '[]', '{}', '12345678901234567890', '1e21', '-9007199254740993')], [2, hugeNumber], [1, raw('"\\ud800"', '"x\\udfff"')]),
  unit: weighted([3, raw('1', 'true', '[]', '{"u":1}')], [1, raw('"\\ud800"')]),
  quality: weighted([2, raw('true', '[]', '{}', '1e21')], [1, hugeNumber], [1, raw('"\\udc00"')]),
  station: weighted([2, raw('1', 'false', '[]')], [1, raw('"\\ud83d"')]),
  elevation: weighted([2, raw('"12"', 'true', '[]')], [2, hugeNumber]),
  attrs: weighted([3, raw('[]', '"x"', '1', 'true', '[{"a":1}]')], [2, raw('{"x":1e400}', '{"a":[1,-1e400]}', '{"__proto__":{"n":1e999}}')]),
  kind: raw('"vector"', 'null', '1', '"Point"', '""', '["point"]'),
};

// --- Records -----------------------------------------------------------------------------------

interface Built {
  members: Member[];
  tag: string;
}

/** Members in any order: JSON objects have none, and neither reader may depend on one. */
function shuffled(members: Member[], seed: number): Member[] {
  const r = prng(seed);
  for (let i = members.length - 1; i > 0; i--) {
    const j = Math.floor(r.next() * (i + 1));
    [members[i], members[j]] = [members[j]!, members[i]!];
  }
  return members;
}

const pointMembers: fc.Arbitrary<Built> = fc
  .record({
    dataset, variable, time, lon, lat, value,
    id: fc.option(label, { freq: 2 }),
    unit: fc.option(weighted([4, unit], [1, raw('null')]), { freq: 2 }),
    quality: fc.option(weighted([4, quality], [1, raw('null')]), { freq: 3 }),
    station: fc.option(weighted([4, station], [1, raw('null')]), { freq: 2 }),
    elevation: fc.option(weighted([4, elevation], [1, raw('null')]), { freq: 3 }),
    attrs: fc.option(weighted([6, attrsObject], [1, raw('null', '{}')]), { freq: 3 }),
    kind: fc.option(raw('"point"'), { freq: 5 }),
    extras: fc.array(extra, { maxLength: 3 }),
    order: seed,
  })
  .map(({ extras, order, ...fields }) => {
    const members: Member[] = Object.entries(fields).flatMap(([k, v]) => (v === null ? [] : [[k, v] as Member]));
    members.push(...extras);
    return { members: shuffled(members, order), tag: `point${extras.length > 0 ? '+extras' : ''}${fields.attrs ? '+attrs' : ''}` };
  });

/** Positions near one place, all in range; with Z on every position, on some, or on none. */
const geometry: fc.Arbitrary<{ text: string; tag: string }> = fc
  .record({
    type: fc.constantFrom('Point', 'MultiPoint', 'LineString', 'MultiLineString', 'Polygon', 'MultiPolygon'),
    lon: fc.double({ min: -179, max: 179, noNaN: true }),
    lat: fc.double({ min: -89, max: 89, noNaN: true }),
    size: fc.double({ min: 1e-6, max: 0.9, noNaN: true }),
    z: fc.constantFrom('none', 'all', 'some', 'zm'),
    count: fc.integer({ min: 1, max: 4 }),
  })
  .map(({ type, lon: x, lat: y, size: d, z, count }) => {
    let k = 0;
    const p = (px: number, py: number) => {
      k++;
      if (z === 'all' || (z === 'some' && k % 2 === 0)) return [px, py, k * 10];
      return z === 'zm' ? [px, py, k, -k] : [px, py];
    };
    const ring = (i: number) => {
      const o = (i * d) / 5;
      const first = p(x + o, y + o);
      return [first, p(x + d, y + o), p(x + d, y + d), p(x + o, y + d), [...first]];
    };
    const line = (i: number) => Array.from({ length: 2 + i }, (_, j) => p(x + (j * d) / 3, y + (i * d) / 7));
    const coordinates = {
      Point: () => p(x, y),
      MultiPoint: () => Array.from({ length: count }, (_, i) => p(x + (i * d) / 4, y)),
      LineString: () => line(count - 1),
      MultiLineString: () => Array.from({ length: count }, (_, i) => line(i)),
      Polygon: () => Array.from({ length: Math.min(count, 2) }, (_, i) => ring(i)),
      MultiPolygon: () => Array.from({ length: count }, (_, i) => [ring(i)]),
    }[type]();
    return { text: JSON.stringify({ type, coordinates }), tag: type };
  });

const badGeometry = weighted(
  [4, raw(
    '{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}', // not closed
    '{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}', // closed, 3 positions
    '{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0,5]]]}', // closed in 2D only
    '{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,1],[0,0]]],[[[5,5],[6,5],[6,6],[5,6]]]]}',
    '{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]],[[0.2,0.2],[0.4,0.2],[0.4,0.4]]]}',
    '{"type":"LineString","coordinates":[[1,2]]}',
    '{"type":"MultiLineString","coordinates":[[[1,2],[3,4]],[[5,6]]]}',
  )],
  [3, raw(
    '{"type":"Point","coordinates":[]}', '{"type":"Point","coordinates":[[1,2]]}', '{"type":"Point","coordinates":[1]}',
    '{"type":"Point","coordinates":[1,2,3,4,5]}', '{"type":"Point","coordinates":[1,"2"]}', '{"type":"Point","coordinates":[1,null]}',
    '{"type":"Point","coordinates":[1e400,0]}', '{"type":"Point","coordinates":{"lon":1,"lat":2}}', '{"type":"Point"}',
    '{"type":"Polygon","coordinates":[[1,2],[3,4]]}', '{"type":"MultiPolygon","coordinates":[[[]]]}', '{"type":"MultiPolygon","coordinates":[]}',
    '{"type":"MultiPoint","coordinates":[]}', '{"type":"LineString","coordinates":[]}', '{"type":"LineString","coordinates":"0,0 1,1"}',
    '{"type":"MultiPoint","coordinates":[[1,2],[3]]}', '{"type":"LineString","coordinates":[[1,2],[3,4]],"coordinates":[[1,2]]}',
  )],
  [2, raw(
    '{"type":"Point","coordinates":[181,0]}', '{"type":"Point","coordinates":[0,-91]}', '{"type":"Point","coordinates":[-180.0001,90.0001]}',
    '{"type":"LineString","coordinates":[[0,0],[0,95]]}', '{"type":"MultiPoint","coordinates":[[0,0],[400,0]]}',
  )],
  [3, raw(
    '{"type":"GeometryCollection","geometries":[]}', '{"type":"Circle","coordinates":[0,0]}', '{"type":"point","coordinates":[0,0]}',
    '{"type":"__proto__","coordinates":[0,0]}', '{"type":"constructor","coordinates":[0,0]}', '{"type":"toString","coordinates":[[[[0]]]]}',
    '{"type":"hasOwnProperty","coordinates":[0,0]}', '{"type":"Feature","coordinates":[0,0]}', '{"coordinates":[0,0]}', '{"type":1,"coordinates":[0,0]}',
    `{"type":"constructor","coordinates":${'['.repeat(5000)}${']'.repeat(5000)}}`,
  )],
  [2, raw('null', '[]', '"Point"', '1', 'true', '[1,2]')],
);

const featureProperties = fc
  .record({
    dataset: weighted([4, str('firms-viirs', 'firms')], [2, str('roads', '__proto__', 'Zürich-ds')]),
    time,
    variable: fc.option(weighted([3, str('fire', 'burned_area')], [1, str('temperature')], [1, raw('null')]), { freq: 2 }),
    value: fc.option(weighted([3, numberText(0, 500)], [1, raw('null')]), { freq: 2 }),
    extras: fc.array(weighted([2, extra], [2, fc.tuple(fc.constantFrom(...KEYS), jsonValue)]), { maxLength: 3 }),
  })
  .map(({ extras, ...fields }): Member[] => [...Object.entries(fields).flatMap(([k, v]) => (v === null ? [] : [[k, v] as Member])), ...extras]);

const propertyFaults: Record<string, fc.Arbitrary<string>> = {
  dataset: weighted([3, wrongKind], [1, raw('""', '"\\ud800"')]),
  time: badTime,
  variable: raw('5', 'true', '[]', '"\\udbff"'),
  value: weighted([2, wrongKind], [2, hugeNumber]),
  deep: raw(`${'['.repeat(1000)}${']'.repeat(1000)}`, `${'{"a":'.repeat(1200)}1${'}'.repeat(1200)}`),
};

function applyFaults(members: Member[], faults: [string, Fault][]): Member[] {
  let out = [...members];
  for (const [field, f] of faults) {
    const at = out.findIndex(([k]) => k === field);
    if (f.kind === 'drop') out = out.filter(([k]) => k !== field);
    else if (f.kind === 'set') {
      if (at >= 0) out[at] = [field, f.text];
      else out.push([field, f.text]);
    } else if (f.kind === 'duplicateBefore') out.unshift([field, f.text]);
    else out.push([field, f.text]);
  }
  return out;
}

const faultsOf = (table: Record<string, fc.Arbitrary<string>>) =>
  fc.uniqueArray(
    fc.constantFrom(...Object.keys(table)).chain((field) => fault(table[field]!).map((f): [string, Fault] => [field, f])),
    { minLength: 1, maxLength: 3, selector: ([field]) => field },
  );

/**
 * The common shape, which src/records/scan.ts reads without JSON.parse: only the contract's flat
 * fields, plain keys, printable ASCII strings without escapes, plain numbers, nulls. Its faults and
 * damage exercise the scanner's every way out to the JSON path.
 */
const commonPointMembers: fc.Arbitrary<Built> = fc
  .record({
    dataset: str('noaa-isd', 'era5-land', 'firms-modis', '__proto__', '../../etc', 'd'),
    variable: str('temperature', 'temperature', 'precipitation', 'wind_speed', 'relative_humidity', 't2m', 'constructor'),
    time: weighted([4, time], [1, str('2024-03-10T10:00:00.123Z', '2024-03-10T10:00:00Z', '2024-03-10 10:00:00Z', '2024-02-30T00:00:00Z', '0099-03-10T10:00:00.000Z')]),
    lon, lat, value,
    id: fc.option(weighted([4, fc.nat(1_000_000).map((n) => JSON.stringify(`obs-${n}`))], [1, str('', '__proto__', 'a/b')], [1, raw('null')]), { freq: 2 }),
    unit: fc.option(weighted([4, str('K', 'mm', 'm s-1', '', '__proto__')], [1, raw('null')]), { freq: 2 }),
    quality: fc.option(weighted([4, str('good', 'suspect', '')], [1, raw('null')]), { freq: 3 }),
    station: fc.option(weighted([4, str('ST0001', 'ST0002', 'toString', 'a'.repeat(300))], [1, raw('null')]), { freq: 2 }),
    elevation: fc.option(weighted([4, elevation], [1, raw('null')]), { freq: 3 }),
    kind: fc.option(raw('"point"'), { freq: 5 }),
    order: seed,
  })
  .map(({ order, ...fields }) => {
    const members: Member[] = Object.entries(fields).flatMap(([k, v]) => (v === null ? [] : [[k, v] as Member]));
    return { members: shuffled(members, order), tag: 'common' };
  });

const validPoint = weighted(
  [3, fc.tuple(pointMembers, seed).map(([b, s]): FuzzCase => ({ bytes: utf8(objectText(b.members, prng(s))), tag: `valid:${b.tag}` }))],
  [2, fc.tuple(commonPointMembers, seed).map(([b, s]): FuzzCase => ({ bytes: utf8(objectText(b.members, prng(s), true)), tag: 'valid:common' }))],
);

const faultyPoint = weighted(
  [3, fc.tuple(pointMembers, faultsOf(pointFaults), seed).map(([b, faults, s]): FuzzCase => ({
    bytes: utf8(objectText(applyFaults(b.members, faults), prng(s))),
    tag: `faulty-point:${faults.map(([f, x]) => `${f}/${x.kind}`).join(',')}`,
  }))],
  [2, fc.tuple(commonPointMembers, faultsOf(pointFaults), seed).map(([b, faults, s]): FuzzCase => ({
    bytes: utf8(objectText(applyFaults(b.members, faults), prng(s), true)),
    tag: `faulty-common:${faults.map(([f, x]) => `${f}/${x.kind}`).join(',')}`,
  }))],
);

const featureMembers = fc.record({ id: fc.option(label, { freq: 2 }), geometry, properties: featureProperties, order: seed, extraTop: fc.option(extra, { freq: 4 }) });

function featureText(f: { id: string | null; geometry: string; properties: string; extraTop: Member | null }, r: Rng): string {
  const members: Member[] = [['type', '"Feature"'], ['geometry', f.geometry], ['properties', f.properties]];
  if (f.id !== null) members.push(['id', f.id]);
  if (f.extraTop !== null) members.push(f.extraTop); // foreign members of a Feature: not part of the record
  if (r.next() < 0.5) members.reverse();
  return objectText(members, r);
}

const validFeature = featureMembers.map((f): FuzzCase => {
  const r = prng(f.order);
  return { bytes: utf8(featureText({ ...f, geometry: f.geometry.text, properties: objectText(f.properties, r) }, r)), tag: `valid:feature:${f.geometry.tag}` };
});

const faultyFeature = weighted(
  [3, fc.tuple(featureMembers, badGeometry).map(([f, g]): FuzzCase => {
    const r = prng(f.order);
    return { bytes: utf8(featureText({ ...f, geometry: g, properties: objectText(f.properties, r) }, r)), tag: 'faulty-feature:geometry' };
  })],
  [3, fc.tuple(featureMembers, faultsOf(propertyFaults)).map(([f, faults]): FuzzCase => {
    const r = prng(f.order);
    const props = applyFaults(f.properties, faults.map(([k, x]): [string, Fault] => [k === 'deep' ? 'nested' : k, x]));
    return { bytes: utf8(featureText({ ...f, geometry: f.geometry.text, properties: objectText(props, r) }, r)), tag: `faulty-feature:${faults.map(([k]) => k).join(',')}` };
  })],
  [1, fc.tuple(featureMembers, raw('null', '[]', '"x"', '1', '[{"dataset":"firms","time":0}]')).map(([f, p]): FuzzCase => {
    const r = prng(f.order);
    return { bytes: utf8(featureText({ ...f, geometry: f.geometry.text, properties: p }, r)), tag: 'faulty-feature:properties' };
  })],
  [1, fc.tuple(featureMembers, raw('"\\ud800"', 'true', '{}', '12345678901234567890')).map(([f, id]): FuzzCase => {
    const r = prng(f.order);
    return { bytes: utf8(featureText({ ...f, id, geometry: f.geometry.text, properties: objectText(f.properties, r) }, r)), tag: 'faulty-feature:id' };
  })],
);

const anyRecord = weighted([3, validPoint], [2, faultyPoint], [2, validFeature], [1, faultyFeature]);

// --- Byte-level damage ------------------------------------------------------------------------

const INVALID_UTF8: number[][] = [
  [0xc0, 0x80], [0xc1, 0xbf], [0xc0, 0xa2], [0xe0, 0x80, 0x80], [0xe0, 0x9f, 0xbf], [0xf0, 0x80, 0x80, 0x80], [0xf0, 0x8f, 0xbf, 0xbf], // overlongs
  [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80], // surrogates (one in CESU-8 pairs)
  [0xe2, 0x82], [0xf0, 0x9f, 0x8c], [0xc3], [0xf4], // truncated sequences
  [0x80], [0xbf], [0xff], [0xfe], [0xf5, 0x80, 0x80, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc3, 0x28],
];
const BOM = [0xef, 0xbb, 0xbf];

const splice = (b: Uint8Array, at: number, remove: number, insert: number[]) =>
  new Uint8Array([...b.subarray(0, at), ...insert, ...b.subarray(at + remove)]);

const damaged: fc.Arbitrary<FuzzCase> = fc
  .tuple(anyRecord, fc.nat(), fc.nat(), fc.constantFrom('truncate', 'utf8', 'nul', 'bom', 'bom-start', 'bom-twice', 'cr', 'ws', 'byte', 'control', 'utf16', 'overlong-quote'))
  .map(([c, n1, n2, how]): FuzzCase => {
    const b = c.bytes;
    const at = b.length === 0 ? 0 : n1 % (b.length + 1);
    const tag = `damaged:${how}`;
    switch (how) {
      case 'truncate': return { bytes: b.subarray(0, Math.max(1, at === b.length ? b.length - 1 : at)), tag };
      case 'utf8': return { bytes: splice(b, at, 0, INVALID_UTF8[n2 % INVALID_UTF8.length]!), tag };
      case 'nul': return { bytes: splice(b, at, 0, [0x00]), tag };
      case 'bom': return { bytes: splice(b, at, 0, BOM), tag };
      case 'bom-start': return { bytes: splice(b, 0, 0, BOM), tag };
      case 'bom-twice': return { bytes: splice(b, 0, 0, [...BOM, ...BOM]), tag };
      case 'cr': return { bytes: splice(b, b.length, 0, n2 % 2 === 0 ? [0x0d] : [0x0d, 0x0d]), tag };
      case 'ws': return { bytes: splice(splice(b, b.length, 0, [0x20, 0x09]), 0, 0, [0x0d, 0x20]), tag };
      case 'byte': return { bytes: b.length === 0 ? b : splice(b, at % b.length, 1, [n2 % 256]), tag };
      case 'control': return { bytes: splice(b, at, 0, [[0x0b], [0x0c], [0x1f], [0x7f], [0x1b, 0x5b, 0x30, 0x6d], [0xc2, 0x85], [0xe2, 0x80, 0xa8]][n2 % 7]!), tag };
      case 'utf16': return { bytes: new Uint8Array([0xff, 0xfe, ...Buffer.from(Buffer.from(b).toString('latin1'), 'utf16le')]), tag };
      default: {
        // The first quote as the overlong C0 A2: what a naive decoder reads as '"'.
        const quote = b.indexOf(0x22);
        return { bytes: quote < 0 ? b : splice(b, quote, 1, [0xc0, 0xa2]), tag };
      }
    }
  });

// --- JSON that is not a record, nesting, sizes ------------------------------------------------

const notARecord: fc.Arbitrary<FuzzCase> = weighted(
  [3, raw('[]', '[{"dataset":"noaa-isd","variable":"temperature","time":0,"lon":0,"lat":0,"value":0}]', '"string"', '42', '-0', 'null', 'true', '1e400', '{}', '{"type":"Feature"}', '{"type":"FeatureCollection","features":[]}')
    .map((t): FuzzCase => ({ bytes: utf8(t), tag: 'not-a-record' }))],
  [3, raw(
    '{"a":NaN}', '{"value":Infinity}', '{"a":1,}', "{'a':1}", '/*c*/{}', '{a:1}', '{"a" 1}', '{"a":1}{"b":2}', '{"a":1}x', '\u000c{}', '{"a":[1,2}',
    '{"a":"\u0001"}', '{"a":"tab\there"}', '{"a":"\\u00zz"}', '{', '}', '"', '{"a":1', '{"\\ud800":1}', '{"a":01}', '{"a":-}', '{"a":1.e3}', '{"a":tru}', '\u00a0{}',
    '{"a":"\\/\\b\\f\\n\\r\\t\\"\\\\"}', '{"":""}', '{"__proto__":{"__proto__":{"polluted":1}}}', '{"constructor":{"prototype":{"polluted":1}}}',
  ).map((t): FuzzCase => ({ bytes: utf8(t), tag: 'malformed-or-incomplete' }))],
  [1, raw('', ' ', '\t', '\r', ' \t\r ').map((t): FuzzCase => ({ bytes: utf8(t), tag: 'blank' }))],
  [2, fc.uint8Array({ maxLength: 48 }).map((bytes): FuzzCase => ({ bytes, tag: 'random-bytes' }))],
  [1, fc.string({ unit: 'grapheme', maxLength: 24 }).map((s): FuzzCase => ({ bytes: utf8(s), tag: 'random-text' }))],
);

/** Depths on both sides of the kept-JSON limit, and far past it (V8's JSON.stringify stack gives out near 4,000). */
const DEPTHS = [1, 50, 998, 999, 1000, 1001, 4200, 30_000];
const nestedText = (kind: 'array' | 'object', depth: number) =>
  kind === 'array' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

const deep: fc.Arbitrary<FuzzCase> = fc
  .tuple(pointMembers, fc.constantFrom(...DEPTHS), fc.constantFrom<'array' | 'object'>('array', 'object'), fc.constantFrom('attrs', 'extra', 'value', 'top', 'truncated', 'properties'), seed, geometry)
  .map(([b, depth, kind, where, s, g]): FuzzCase => {
    const r = prng(s);
    const nested = nestedText(kind, depth);
    const tag = `deep:${where}:${depth}`;
    switch (where) {
      case 'attrs': return { bytes: utf8(objectText(applyFaults(b.members, [['attrs', { kind: 'set', text: `{"n":${nested}}` }]]), r)), tag };
      case 'extra': return { bytes: utf8(objectText([...b.members, ['nested', nested]], r)), tag };
      case 'value': return { bytes: utf8(objectText(applyFaults(b.members, [['value', { kind: 'set', text: nested }]]), r)), tag };
      case 'top': return { bytes: utf8(nested), tag };
      case 'truncated': return { bytes: utf8(objectText([...b.members, ['nested', nested]], r).slice(0, -depth)), tag };
      default: return { bytes: utf8(`{"type":"Feature","geometry":${g.text},"properties":{"dataset":"firms","time":0,"n":${nested}}}`), tag };
    }
  });

/** Records of max_record_bytes − 2 … + 2 (and far over), padded with 1- to 4-byte characters. */
const sized = (maxRecordBytes: number): fc.Arbitrary<FuzzCase> =>
  fc.tuple(pointMembers, fc.constantFrom(-2, -1, 0, 1, 2, -700, 3000), fc.constantFrom('x', 'é', '€', '🌍'), fc.constantFrom('station', 'attrs', 'id', 'feature'), seed)
    .map(([b, delta, fill, where, s]): FuzzCase => {
      const target = maxRecordBytes + delta;
      const build = (pad: string) => {
        const r = prng(s);
        if (where === 'feature') return `{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"properties":{"dataset":"firms","time":0,"note":"${pad}"}}`;
        const text = where === 'attrs' ? `{"blob":"${pad}"}` : `"${pad}"`;
        return objectText(applyFaults(b.members, [[where, { kind: 'set', text }]]), r);
      };
      const base = Buffer.byteLength(build(''));
      const room = Math.max(0, target - base);
      const width = Buffer.byteLength(fill);
      const pad = fill.repeat(Math.floor(room / width)) + 'x'.repeat(room % width);
      return { bytes: utf8(build(pad)), tag: `sized:${delta > 0 ? 'over' : 'within'}:${where}` };
    });

/** Every kind of case, in proportions that keep each reason well represented. */
export function fuzzCases(maxRecordBytes: number): fc.Arbitrary<FuzzCase> {
  return weighted<FuzzCase>(
    [22, validPoint],
    [10, validFeature],
    [20, faultyPoint],
    [12, faultyFeature],
    [18, damaged],
    [9, notARecord],
    [4, deep],
    [2, sized(maxRecordBytes)],
  ).map(fuzzCase);
}

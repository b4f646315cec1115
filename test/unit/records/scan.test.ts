import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseJsonRecord, parseRecord } from '../../../src/records/parse.js';
import { seededRandom } from '../../../src/records/sample.js';
import { scanPoint } from '../../../src/records/scan.js';

const at = { source: 'in.ndjson', partition: 0, offset: 3 };

/** A small deterministic generator (mulberry32), so a failure names its seed. */
function random(seed: number) {
  const next = seededRandom(seed);
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}

type Rng = ReturnType<typeof random>;

/** Number text as a producer might write it: integers, decimals, exponents, long digit runs, -0. */
function numberText(r: Rng, lo: number, hi: number): string {
  const v = lo + r.next() * (hi - lo);
  switch (r.int(9)) {
    case 0: return String(Math.round(v));
    case 1: return v.toFixed(r.int(8));
    case 2: return v.toExponential(r.int(6));
    case 3: return v.toExponential(r.int(6)).toUpperCase().replace('E+', r.pick(['E', 'E+']));
    case 4: return String(v); // up to 17 significant digits: the slow path
    case 5: return r.pick(['-0', '0', '0.0', '-0.0e0', '1e-7', '12.5e-3', '0.000001', '123456789012345', '1234567890123456789']);
    case 6: return v.toPrecision(15);
    case 7: return `${v.toFixed(2)}000000000000000`;
    default: return v.toFixed(4);
  }
}

const timeTexts = [
  '"2024-03-01T00:00:06.048Z"', '"2024-03-01T00:00:06Z"', '"2024-03-01T00:00:06.123456Z"', '"2024-03-01 01:02:03+02:00"',
  '"2024-02-30T00:00:00Z"', '"2024-02-29T23:59:60Z"', '"0099-01-01T00:00:00Z"', '"2024-13-01T00:00:00.000Z"', '"2024-03-01T24:00:00Z"',
  '"2024-03-01t00:00:00Z"', '"2024-03-01T00:00:00.5Z"', '"yesterday"', '1709251206048', '1709251206048.5', '""',
];
const space = (r: Rng) => r.pick(['', '', '', ' ', '  ', '\t', '\r\n ']);

const KEY_ORDER = ['id', 'dataset', 'variable', 'time', 'lon', 'long', 'lat', 'value', 'valu', 'unit', 'quality', 'station', 'elevation', 'kind', 'attrs', 'sensor'];

/** A random point payload: mostly the common shape, sometimes something the scanner must leave to JSON.parse. */
function payload(r: Rng, ordered = false): string {
  const fields: [string, string][] = [
    ['dataset', JSON.stringify(r.pick(['noaa-isd', 'era5-land', 'd']))],
    ['variable', JSON.stringify(r.pick(['temperature', 'wind', 't2m']))],
    ['time', r.pick(timeTexts)],
    ['lon', numberText(r, -200, 200)],
    ['lat', numberText(r, -100, 100)],
    ['value', numberText(r, -1e6, 1e6)],
  ];
  const optional: [string, () => string][] = [
    ['id', () => r.pick([JSON.stringify(`obs-${r.int(1e6)}`), 'null', '17', '""'])],
    ['unit', () => r.pick(['"K"', 'null', '""', '"m s-1"'])],
    ['quality', () => r.pick(['"good"', 'null', '3', '"suspect"'])],
    ['station', () => r.pick(['"ST0001"', 'null', '"Zürich"', '"a\\"b"', '"tab\\there"'])],
    ['elevation', () => r.pick([numberText(r, -500, 9000), 'null', '"high"'])],
    ['kind', () => r.pick(['"point"', '"point"', 'null', '"raster"'])],
    ['attrs', () => r.pick(['{"a":1}', 'null', '[]'])],
    ['sensor', () => '"X9"'],
  ];
  for (const [key, value] of optional) if (r.next() < 0.4) fields.push([key, value()]);
  // Keys that begin like, or are as long as, the contract's.
  if (r.next() < 0.03) fields.push(['long', '1']);
  if (r.next() < 0.03) fields.push(['valu', '2']);
  // Mutations: drop a required field, duplicate a key, give a wrong type.
  if (r.next() < 0.08) fields.splice(r.int(6), 1);
  if (r.next() < 0.05) fields.push(fields[r.int(fields.length)]!);
  if (r.next() < 0.05) fields[r.int(fields.length)]![1] = r.pick(['true', 'false', '[]', '{}', '"1"', '01', '1.', '.5', '-', '1e', 'nul']);
  if (!ordered) {
    for (let i = fields.length - 1; i > 0; i--) {
      const j = r.int(i + 1);
      [fields[i], fields[j]] = [fields[j]!, fields[i]!];
    }
  } else {
    // One producer's order, as most streams are (what the scanner predicts keys by), now and then two swapped.
    const rank = (key: string) => KEY_ORDER.indexOf(key);
    fields.sort((x, y) => rank(x[0]) - rank(y[0]));
    if (r.next() < 0.1) {
      const [i, j] = [r.int(fields.length), r.int(fields.length)];
      [fields[i], fields[j]] = [fields[j]!, fields[i]!];
    }
  }
  let text = `${space(r)}{${space(r)}${fields.map(([k, v]) => `"${k}"${space(r)}:${space(r)}${v}`).join(`${space(r)},${space(r)}`)}${space(r)}}${space(r)}`;
  if (r.next() < 0.03) text = `\ufeff${text}`;
  if (r.next() < 0.03) text += r.pick(['x', '}', ',', '\u0000']);
  if (r.next() < 0.02) text = text.slice(0, r.int(text.length));
  return text;
}

describe('the point scanner', () => {
  it('gives exactly what JSON.parse and the validation give, for what it reads (property, 20,000 payloads)', () => {
    let scanned = 0;
    for (let seed = 1; seed <= 20_000; seed++) {
      const text = payload(random(seed));
      const bytes = Buffer.from(text);
      const viaScanner = parseRecord(bytes, at);
      const viaJson = parseJsonRecord(bytes, at);
      assert.deepEqual(viaScanner, viaJson, `seed ${seed}: ${text}`);
      if (scanPoint(bytes, at) !== undefined) scanned++;
    }
    // Payloads of the common shape with valid values (about 1 in 15 here) must take the fast path.
    assert.ok(scanned > 1_000, `scanned ${scanned} of 20,000`);
  });

  it('gives the same for payloads whose keys come in one order, as the scanner predicts them (property, 20,000 payloads)', () => {
    let scanned = 0;
    for (let seed = 1; seed <= 20_000; seed++) {
      const text = payload(random(seed), true);
      const bytes = Buffer.from(text);
      assert.deepEqual(parseRecord(bytes, at), parseJsonRecord(bytes, at), `seed ${seed}: ${text}`);
      if (scanPoint(bytes, at) !== undefined) scanned++;
    }
    assert.ok(scanned > 1_000, `scanned ${scanned} of 20,000`);
  });

  it('reads the common shape without JSON.parse, numbers exact to the bit', () => {
    const line = '{"id":"obs-1","dataset":"era5-land","variable":"temperature","time":"2024-03-01T00:00:06.048Z","lon":163.5573,"lat":-65.5729,"value":278.29,"unit":"K","quality":"good","station":"ST0001","elevation":703}';
    const record = scanPoint(Buffer.from(line), at);
    assert.ok(record);
    assert.deepEqual(record, (parseJsonRecord(Buffer.from(line), at) as { record: unknown }).record);
    assert.equal(record.lon, 163.5573);
    assert.equal(record.timeUs, Date.parse('2024-03-01T00:00:06.048Z') * 1000);
    assert.equal(record.size, line.length);
    for (const text of ['0.1', '-0', '5e-324', '1.7976931348623157e308', '9007199254740993', '0.30000000000000004', '123.456e-7']) {
      const r = scanPoint(Buffer.from(`{"dataset":"d","variable":"v","time":0,"lon":0,"lat":0,"value":${text}}`), at);
      assert.ok(r, text);
      assert.ok(Object.is(r.value, JSON.parse(text)), text);
    }
  });

  it('leaves the rest to the JSON path: escapes, non-ASCII, attrs, features, invalid UTF-8', () => {
    const base = { dataset: 'd', variable: 'v', time: 0, lon: 0, lat: 0, value: 1 };
    for (const odd of [{ ...base, station: 'a"b' }, { ...base, station: 'Zürich' }, { ...base, attrs: { a: 1 } }, { ...base, extra: 1 }]) {
      assert.equal(scanPoint(Buffer.from(JSON.stringify(odd)), at), undefined, JSON.stringify(odd));
      assert.ok(parseRecord(Buffer.from(JSON.stringify(odd)), at).ok);
    }
    const invalid = Buffer.concat([Buffer.from('{"dataset":"'), Buffer.from([0xc3, 0x28]), Buffer.from('","variable":"v","time":0,"lon":0,"lat":0,"value":1}')]);
    const r = parseRecord(invalid, at);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.deadLetter.reason, 'invalid_utf8');
      assert.match(r.deadLetter.message, /not valid UTF-8 at byte 12/);
      assert.equal(Buffer.compare(Buffer.from(r.deadLetter.payload), invalid), 0, 'the dead letter keeps the bytes as they came');
    }
  });
});

/**
 * Regressions for what the fuzz suite (test/fuzz) found in the record parser: each case here
 * crashed, lost data or got the wrong reason before its fix.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PointRecord, VectorRecord } from '../../../src/core/record.js';
import { MAX_KEPT_DEPTH, parseRecord, type ParseResult } from '../../../src/records/parse.js';
import { parseTimeUs } from '../../../src/records/time.js';

const at = { source: 'in.ndjson', partition: 0, offset: 1 };
const parse = (text: string): ParseResult => parseRecord(Buffer.from(text), at, 1024 * 1024);
const point = (extra = '', time = '"2024-03-01T00:00:00Z"') =>
  `{"dataset":"d","variable":"temperature","time":${time},"lon":1,"lat":2,"value":3${extra}}`;
const feature = (geometry: string, properties = '') =>
  `{"type":"Feature","geometry":${geometry},"properties":{"dataset":"firms","time":0${properties}}}`;
const reason = (r: ParseResult) => (r.ok ? 'ok' : r.deadLetter.reason);
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('hostile records (found by the fuzz suite)', () => {
  it('keeps a __proto__ key as data: at the top level, in attrs, in properties; Object.prototype untouched', () => {
    const top = parse(point(',"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":1}}'));
    assert.ok(top.ok);
    const attrs = (top.record as PointRecord).attrs!;
    assert.ok(attrs.includes('"__proto__":{"polluted":"yes"}'), attrs);
    assert.ok(attrs.includes('"constructor":{"prototype":{"polluted":1}}'), attrs);
    const inAttrs = parse(point(',"attrs":{"__proto__":{"polluted":2}}'));
    assert.equal(inAttrs.ok && (inAttrs.record as PointRecord).attrs, '{"__proto__":{"polluted":2}}');
    const props = parse(feature('{"type":"Point","coordinates":[1,2]}', ',"__proto__":{"polluted":3}'));
    assert.equal(props.ok && (props.record as VectorRecord).properties, '{"__proto__":{"polluted":3}}');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(Object.keys(Object.prototype), []);
  });

  it('refuses kept JSON nested past MAX_KEPT_DEPTH as too_large instead of throwing from JSON.stringify', () => {
    // attrs is level 1, so a value nested MAX_KEPT_DEPTH − 1 deep is the deepest kept.
    assert.equal(reason(parse(point(`,"attrs":{"n":${nested(MAX_KEPT_DEPTH - 1)}}`))), 'ok');
    assert.equal(reason(parse(point(`,"attrs":{"n":${nested(MAX_KEPT_DEPTH)}}`))), 'too_large');
    assert.equal(reason(parse(point(`,"extra":${nested(30_000)}`))), 'too_large');
    assert.equal(reason(parse(feature('{"type":"Point","coordinates":[1,2]}', `,"n":${nested(30_000)}`))), 'too_large');
  });

  it('refuses numbers JSON.parse makes infinite inside attrs and properties (JSON.stringify would write null)', () => {
    assert.equal(reason(parse(point(',"attrs":{"a":[1,-1e400]}'))), 'non_finite_value');
    assert.equal(reason(parse(point(',"extra":1e400'))), 'non_finite_value');
    assert.equal(reason(parse(feature('{"type":"Point","coordinates":[1,2]}', ',"x":1e999'))), 'non_finite_value');
  });

  it('looks geometry types up as own keys only: "constructor" is no type (and deep coordinates do not overflow)', () => {
    for (const type of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      assert.equal(reason(parse(feature(`{"type":"${type}","coordinates":${nested(20_000)}}`))), 'bad_geometry', type);
    }
  });

  it('refuses lines of one position and rings that are short or not closed (RFC 7946 3.1.4, 3.1.6)', () => {
    assert.equal(reason(parse(feature('{"type":"LineString","coordinates":[[1,2]]}'))), 'bad_geometry');
    assert.equal(reason(parse(feature('{"type":"MultiLineString","coordinates":[[[1,2],[3,4]],[[5,6]]]}'))), 'bad_geometry');
    assert.equal(reason(parse(feature('{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}'))), 'bad_geometry');
    assert.equal(reason(parse(feature('{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}'))), 'bad_geometry');
    assert.equal(reason(parse(feature('{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0,5]]]}'))), 'bad_geometry');
    assert.equal(reason(parse(feature('{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[5,5],[6,5],[6,6],[5,6]]]]}'))), 'bad_geometry');
    assert.equal(reason(parse(feature('{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}'))), 'ok');
    assert.equal(reason(parse(feature('{"type":"LineString","coordinates":[[1,2],[3,4]]}'))), 'ok');
  });

  it('reads years 0000–0099 as themselves (Date.UTC would make 0099 1999), and keeps times within ±2^53 µs', () => {
    assert.equal(parseTimeUs('0099-12-31T23:59:59Z'), undefined, 'before 1684: outside the µs range, not 1999');
    assert.equal(reason(parse(point('', '"0099-12-31T23:59:59Z"'))), 'bad_time');
    assert.equal(parseTimeUs('2000-02-29T00:00:00Z'), Date.UTC(2000, 1, 29) * 1000);
    assert.equal(parseTimeUs('2100-02-29T00:00:00Z'), undefined);
    assert.equal(parseTimeUs('2255-06-05T23:47:34.740991Z'), Number.MAX_SAFE_INTEGER);
    assert.equal(parseTimeUs('2255-06-05T23:47:34.740992Z'), undefined);
    assert.equal(parseTimeUs('1684-07-28T00:12:25.259009Z'), -Number.MAX_SAFE_INTEGER);
    assert.equal(parseTimeUs('1684-07-28T00:12:25.259008Z'), undefined);
    // 9999's microseconds would be rounded (and the catalog cannot read such a time back).
    assert.equal(reason(parse(point('', '"9999-12-31T23:59:59.999Z"'))), 'bad_time');
    assert.equal(reason(parse(point('', '"1600-01-01T00:00:00Z"'))), 'bad_time');
  });

  it('refuses escaped lone surrogates in column strings (UTF-8 cannot hold them: they would become U+FFFD)', () => {
    assert.equal(reason(parse(point(',"id":"\\ud800"'))), 'wrong_type');
    assert.equal(reason(parse(point(',"station":"a\\udc00"'))), 'wrong_type');
    assert.equal(reason(parse(point().replace('"d"', '"\\udbff"'))), 'wrong_type');
    const pair = parse(point(',"station":"\\ud83c\\udf0d"'));
    assert.equal(pair.ok && (pair.record as PointRecord).station, '🌍');
    // In attrs a lone surrogate is kept: JSON text escapes it.
    const kept = parse(point(',"attrs":{"s":"\\ud800"}'));
    assert.equal(kept.ok && (kept.record as PointRecord).attrs, '{"s":"\\ud800"}');
  });

  it('refuses integer ids and qualities past 2^53, whose digits JSON numbers lose', () => {
    assert.equal(reason(parse(point(',"id":12345678901234567890'))), 'wrong_type');
    assert.equal(reason(parse(point(',"quality":1e21'))), 'wrong_type');
    const max = parse(point(',"id":9007199254740991'));
    assert.equal(max.ok && (max.record as PointRecord).id, '9007199254740991');
  });

  it('refuses U+0000 in a dataset name (a PostgreSQL catalog upsert failed on it, forever)', () => {
    assert.equal(reason(parse(point().replace('"d"', '"x\\u0000y"'))), 'wrong_type');
    assert.equal(reason(parse(feature('{"type":"Point","coordinates":[1,2]}').replace('"firms"', '"f\\u0000"'))), 'wrong_type');
    const station = parse(point(',"station":"x\\u0000y"'));
    assert.equal(station.ok && (station.record as PointRecord).station, 'x\u0000y', 'other strings may hold it');
  });
});

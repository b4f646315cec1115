import assert from 'node:assert/strict';
import { posix } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { PointRecord } from '../../../src/core/record.js';
import { StorageError } from '../../../src/core/errors.js';
import { compileTemplate, objectKey, sanitizeSegment } from '../../../src/stages/object-key.js';

const record = (over: Partial<PointRecord>): PointRecord => ({
  kind: 'point', position: { source: 'f', partition: 0, offset: 1 }, size: 1, id: null, dataset: 'era5', variable: 'temperature',
  timeUs: Date.parse('2024-03-05T07:00:00Z') * 1000, lon: 0, lat: 0, value: 1, unit: null, quality: null, station: 'ST1',
  elevation: null, attrs: null, ...over,
});

describe('object keys', () => {
  it('expands named layouts and {token} templates', () => {
    assert.equal(compileTemplate('year/month/dataset').expand(record({}), 'T'), '2024/03/era5');
    assert.equal(compileTemplate('sensor/year/month').expand(record({}), 'T'), 'ST1/2024/03');
    assert.equal(compileTemplate('hierarchical').expand(record({}), 'T'), 'era5/temperature/2024/03/05');
    assert.equal(compileTemplate('{dataset}/year={year}/month={month}').expand(record({}), 'T'), 'era5/year=2024/month=03');
  });

  it('a template reused across records (memoized) expands exactly as a fresh one', () => {
    const layouts = ['year/month/dataset', 'sensor/year/month', 'hierarchical', 'year/month/day', '{memory_type}/{kind}/{hour}', '{variable}-{station}'];
    const reused = layouts.map((l) => compileTemplate(l));
    const start = Date.parse('2023-12-30T00:00:00Z') * 1000;
    fc.assert(
      fc.property(
        fc.record({
          // Times around month, year and day boundaries, in hours and odd microseconds.
          timeUs: fc.integer({ min: 0, max: 24 * 40 * 3_600_000 }).map((ms) => start + ms * 1000 + 17),
          dataset: fc.constantFrom('era5', 'noaa-isd'),
          variable: fc.constantFrom('temperature', 'wind_speed'),
          station: fc.constantFrom('ST1', 'ST2', null),
        }),
        fc.constantFrom('T', 'P'),
        (over, memoryType) => {
          const r = record(over);
          layouts.forEach((layout, i) => assert.equal(reused[i]!.expand(r, memoryType), compileTemplate(layout).expand(r, memoryType), layout));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('rejects unknown tokens and unsafe literal text', () => {
    assert.throws(() => compileTemplate('{planet}/year'), /unknown token \{planet\}/);
    assert.throws(() => compileTemplate('galaxy/year'), /neither a token/);
    assert.throws(() => compileTemplate('../{year}'), /neither a token/);
    assert.throws(() => compileTemplate('a b{year}'), /literal text/);
    assert.throws(() => compileTemplate('..{year}'), /literal text/);
  });

  it('is deterministic from memory type, partition and provenance', () => {
    const prov = [{ source: 'a.ndjson', partition: 0, firstOffset: 1, lastOffset: 9, count: 5 }];
    assert.equal(objectKey('T', '2024/03/era5', prov, '.parquet'), objectKey('T', '2024/03/era5', prov, '.parquet'));
    assert.notEqual(objectKey('T', '2024/03/era5', prov, '.parquet'), objectKey('T', '2024/03/era5', [{ ...prov[0]!, count: 4 }], '.parquet'));
  });

  it('property: no field value can leave the tier prefix, add segments, or carry control characters', () => {
    const template = compileTemplate('{dataset}/{sensor}/{variable}/year={year}');
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 50 }), fc.string({ maxLength: 30 }), (dataset, station, memoryType) => {
        const path = template.expand(record({ dataset: dataset || 'x', station, variable: '../../etc' }), memoryType);
        const key = objectKey(memoryType || 'M', path, [], '.parquet');
        const segments = key.split('/');
        assert.equal(segments.length, 6);
        for (const s of segments) {
          assert.ok(s.length > 0 && s !== '.' && s !== '..');
          assert.ok(s.length <= 130);
          assert.match(s, /^[A-Za-z0-9._=%~-]+$/);
        }
        assert.ok(posix.join('/tier', key).startsWith('/tier/'));
      }),
      { numRuns: 500 },
    );
  });

  it('property: a migration destination key (from a catalog row, whatever it holds) stays inside the destination tier, or is refused', () => {
    // Hostile catalog values: traversal, encoded traversal, NUL, separators, very long.
    const hostile = fc.oneof(
      fc.constantFrom('..', '.', '../..', '%2e%2e', '%2E%2E/..', 'a/../../b', '/abs', 'a//b', 'a\u0000b', '..\\..', '~', '', 'x'.repeat(5000)),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.array(fc.constantFrom('..', '.', 'ok', '%2e', '', 'a\u0000'), { maxLength: 6 }).map((parts) => parts.join('/')),
    );
    const tiers = ['/tier', '/data/hot'];
    fc.assert(
      fc.property(hostile, hostile, fc.string({ unit: 'binary', maxLength: 80 }), fc.constantFrom('.parquet', '.zarr', '.tif', '.geojson'), (memoryType, partitionPath, source, ext) => {
        let key: string;
        try {
          key = objectKey(memoryType || 'M', partitionPath, [{ source, partition: 0, firstOffset: 1, lastOffset: 2, count: 2 }], ext);
        } catch (error) {
          assert.ok(error instanceof StorageError, String(error));
          assert.match(error.message, /unsafe segment/);
          return;
        }
        for (const s of key.split('/')) {
          assert.ok(s.length > 0 && !/^\.+$/.test(s), `segment ${JSON.stringify(s)} of ${JSON.stringify(key)}`);
          assert.match(s, /^[A-Za-z0-9._=%~-]+$/);
        }
        for (const tier of tiers) assert.ok(posix.join(tier, key).startsWith(`${tier}/`), key);
        // A path the expansion made is accepted as it is: the keys of existing objects do not change.
        assert.equal(objectKey(memoryType || 'M', partitionPath, [], ext).split('/').slice(1, -1).join('/'), partitionPath);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: sanitizing is injective on short values', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), (a, b) => {
        if (a !== b && a.length > 0 && b.length > 0) assert.notEqual(sanitizeSegment(a), sanitizeSegment(b));
      }),
      { numRuns: 500 },
    );
  });
});

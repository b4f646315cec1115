import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PointRecord, VectorRecord } from '../../../src/core/record.js';
import { parseRecord } from '../../../src/records/parse.js';
import { badRecords } from '../../../src/records/sample.js';
import { formatTimeUs, parseTimeUs } from '../../../src/records/time.js';

const at = { source: 'in.ndjson', partition: 0, offset: 7 };
const bytes = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

describe('record contract', () => {
  it('parses a point with every optional field and keeps unknown fields in attrs', () => {
    const r = parseRecord(
      bytes({ id: 12, dataset: 'isd', variable: 't', time: '2024-03-01T12:00:00.123456Z', lon: -70.5, lat: 41.25, value: 280.1,
        unit: 'K', quality: 1, station: 'S1', elevation: 12, attrs: { a: 1 }, sensor_model: 'X9' }),
      at,
    );
    assert.ok(r.ok);
    const p = r.record as PointRecord;
    assert.equal(p.id, '12');
    assert.equal(p.quality, '1');
    assert.equal(p.timeUs, Date.parse('2024-03-01T12:00:00Z') * 1000 + 123456);
    assert.deepEqual(JSON.parse(p.attrs!), { a: 1, sensor_model: 'X9' });
    assert.deepEqual(p.position, at);
  });

  it('parses a GeoJSON feature with its bbox and remaining properties', () => {
    const r = parseRecord(
      bytes({ type: 'Feature', id: 'f1', geometry: { type: 'LineString', coordinates: [[0, 1], [2, -3]] },
        properties: { dataset: 'roads', time: 1709294400000, kind: 'primary' } }),
      at,
    );
    assert.ok(r.ok);
    const v = r.record as VectorRecord;
    assert.deepEqual(v.bbox, [0, -3, 2, 1]);
    assert.equal(v.properties, '{"kind":"primary"}');
    assert.equal(v.timeUs, 1709294400000 * 1000);
  });

  it('sends every kind of bad record to the dead letter with its reason, payload and position', () => {
    for (const { reason, line } of badRecords(Date.parse('2024-03-01T00:00:00Z'))) {
      if (reason === 'unclassified') continue; // decided by the classify rules, not the contract
      const r = parseRecord(bytes(line), at, 64 * 1024);
      assert.equal(r.ok, false, reason);
      if (!r.ok) {
        assert.equal(r.deadLetter.reason, reason, `${reason}: ${r.deadLetter.message}`);
        assert.deepEqual(r.deadLetter.payload, bytes(line));
        assert.deepEqual(r.deadLetter.position, at);
        assert.ok(r.deadLetter.message.length > 0);
      }
    }
  });

  it('measures max_record_bytes in UTF-8 bytes', () => {
    const line = JSON.stringify({ dataset: 'd', variable: 'v', time: 0, lon: 0, lat: 0, value: 0, attrs: { s: 'é'.repeat(400) } });
    assert.equal(parseRecord(bytes(line), at, 500).ok, false);
    assert.equal(parseRecord(bytes(line), at, 1000).ok, true);
  });

  it('parses RFC 3339 with offsets and rejects impossible dates', () => {
    assert.equal(parseTimeUs('2024-03-01T12:00:00+02:00'), Date.parse('2024-03-01T10:00:00Z') * 1000);
    assert.equal(parseTimeUs('2024-02-30T00:00:00Z'), undefined);
    assert.equal(parseTimeUs('2024-03-01'), undefined);
    assert.equal(parseTimeUs(Number.NaN), undefined);
    assert.equal(formatTimeUs(parseTimeUs('2024-03-01T00:00:00.000042Z')!), '2024-03-01T00:00:00.000042Z');
  });
});

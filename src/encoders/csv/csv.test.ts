/**
 * CSV time series against DuckDB's read_csv (its sniffer picks the types: VARCHAR, TIMESTAMP
 * WITH TIME ZONE, DOUBLE) including strings with commas, quotes and newlines, empty strings and
 * nulls; our decode round-trips random batches exactly, with the same bytes every time.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Batch } from '../../core/batch.js';
import type { ObservationRecord, PointRecord } from '../../core/record.js';
import { randomBatch } from '../../../test/support/random-batches.js';
import { referencePython } from '../../../test/support/python.js';
import { packBatch, storageOrder } from '../arrow/batch-table.js';
import { CsvEncoder, parseCsv } from './csv.js';

const dir = mkdtempSync(join(tmpdir(), 'csv-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function content(r: ObservationRecord): unknown {
  const { position: _p, size: _s, key: _k, ...rest } = r as ObservationRecord & { key?: unknown };
  return rest;
}
const inStorageOrder = (batch: Batch) => [...storageOrder(packBatch(batch))].map((i) => batch.records[i]!);

const hostile: PointRecord[] = [
  ['a,b', 'say "hi"', 'line\nbreak', '', null],
  ['', '\r\nboth', 'tab\there', '"', ','],
  [null, 'plain', 'ünïcödé 東京', null, '{"k":"v, \\"q\\""}'],
].map(([id, unit, quality, station, attrs], i) => ({
  kind: 'point', position: { source: 's', partition: 0, offset: i + 1 }, size: 10, id, dataset: `ds,${i}`, variable: 'temperature',
  timeUs: 1_709_294_400_000_001 + i * 1_000_000, value: i === 1 ? -0 : 1.5e-7 * (i + 1), unit, quality, station, elevation: i === 0 ? null : 1200,
  lon: -179.5 + i, lat: 89.25 - i, attrs,
}) as PointRecord);
const hostileBatch: Batch = { memoryType: 'M', tier: 'hot', dataset: 'ds', kind: 'point', partitionPath: 'p', records: hostile, bytes: 30, flushReason: 'end' };

describe('CSV encoder', () => {
  for (const compression of ['none', 'gzip'] as const) {
    it(`${compression}: decode round-trips random batches and hostile strings, same bytes every time`, async () => {
      const encoder = new CsvEncoder({ compression });
      for (const batch of [hostileBatch, ...Array.from({ length: 10 }, (_, s) => randomBatch(s + 1, 'point', 5 + s * 11))]) {
        const first = await encoder.encode(batch);
        assert.deepEqual((await encoder.encode({ ...batch, records: [...batch.records].reverse() })).bytes, first.bytes);
        const decoded = encoder.decode(first.bytes, { source: 'x', partition: 0 });
        assert.deepStrictEqual(decoded.records.map(content), inStorageOrder(batch).map(content));
      }
    });
  }

  it('writes RFC 4180: header, CRLF, quoted commas, quotes and newlines, empty string "" and null empty', async () => {
    const text = Buffer.from((await new CsvEncoder({}).encode(hostileBatch)).bytes).toString('utf8');
    const lines = text.split('\r\n');
    assert.equal(lines[0], 'id,dataset,variable,time,value,unit,quality,station,elevation,lon,lat,attrs');
    assert.equal(lines.at(-1), '', 'ends with CRLF');
    assert.ok(text.includes('"a,b","ds,0",temperature,2024-03-01T12:00:00.000001Z,1.5e-7,"say ""hi""","line\nbreak","",,-179.5,89.25,'));
    assert.deepEqual(parseCsv('a,,""\r\n'), [['a', null, '']]);
  });

  it('refuses vector batches', async () => {
    await assert.rejects(new CsvEncoder({}).encode(randomBatch(2, 'vector', 3)), /csv stores point records \(time series\) only/);
  });

  for (const compression of ['none', 'gzip'] as const) {
    it(`${compression}: DuckDB read_csv reads the types and every value`, async () => {
      const encoder = new CsvEncoder({ compression });
      const batch = { ...randomBatch(7, 'point', 300), records: [...randomBatch(7, 'point', 300).records, ...hostile] };
      const path = join(dir, `points${encoder.extension}`);
      writeFileSync(path, (await encoder.encode(batch)).bytes);
      const script = `
import duckdb, json, sys
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
rel = con.sql("SELECT * FROM read_csv(?, header=true, allow_quoted_nulls=false)", params=[sys.argv[1]])
types = dict(zip(rel.columns, [str(t) for t in rel.types]))
rows = con.execute("SELECT id, dataset, unit, quality, station, attrs, epoch_us(time), value, elevation, lon, lat FROM read_csv(?, header=true, allow_quoted_nulls=false)", [sys.argv[1]]).fetchall()
print(json.dumps({'types': types, 'rows': rows}))
`;
      const out = JSON.parse(execFileSync(referencePython(), ['-c', script, path], { encoding: 'utf8', maxBuffer: 1 << 26 })) as { types: Record<string, string>; rows: unknown[][] };
      assert.deepEqual(out.types, {
        id: 'VARCHAR', dataset: 'VARCHAR', variable: 'VARCHAR', time: 'TIMESTAMP WITH TIME ZONE', value: 'DOUBLE', unit: 'VARCHAR', quality: 'VARCHAR',
        station: 'VARCHAR', elevation: 'DOUBLE', lon: 'DOUBLE', lat: 'DOUBLE', attrs: 'VARCHAR',
      });
      const expected = inStorageOrder(batch) as PointRecord[];
      assert.equal(out.rows.length, expected.length);
      out.rows.forEach((row, i) => {
        const r = expected[i]!;
        assert.deepEqual(row, [r.id, r.dataset, r.unit, r.quality, r.station, r.attrs, r.timeUs, r.value, r.elevation, r.lon, r.lat], `row ${i}`);
      });
    });
  }
});

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { codecLevel } from '../../../src/compression/levels.js';
import type { CompressionConfig } from '../../../src/config/common.js';
import type { Batch } from '../../../src/core/batch.js';
import type { ObservationRecord } from '../../../src/core/record.js';
import { GeoParquetEncoder } from '../../../src/encoders/parquet/geoparquet.js';
import { ThriftReader, type ThriftStruct } from '../../../src/encoders/parquet/thrift.js';
import { parseRecord } from '../../../src/records/parse.js';
import { tempDir } from '../../support/fixtures.js';
import { checkParquet } from '../../support/python.js';

/** 20k point records from 40 stations, 4 variables, values on a 0.01 grid: compressible, not trivially. */
function pointBatch(n = 20_000): Batch {
  const variables = ['temperature', 'precipitation', 'wind_speed', 'relative_humidity'];
  const records: ObservationRecord[] = [];
  for (let i = 0; i < n; i++) {
    const station = i % 40;
    const line = JSON.stringify({
      id: `obs-${i}`,
      dataset: 'noaa-isd',
      variable: variables[Math.floor(i / 40) % 4],
      time: new Date(Date.UTC(2024, 2, 1) + i * 15_000).toISOString(),
      lon: -170 + station * 8.5,
      lat: -60 + station * 3.1,
      value: Math.round(((i * 7919) % 10_007) + Math.sin(i) * 100) / 100,
      unit: 'K',
      quality: i % 31 === 0 ? 'suspect' : 'good',
      station: `ST${String(station).padStart(4, '0')}`,
      elevation: station * 37,
    });
    const parsed = parseRecord(Buffer.from(line), { source: 'levels.ndjson', partition: 0, offset: i });
    assert.ok(parsed.ok);
    records.push(parsed.record);
  }
  const bytes = records.reduce((s, r) => s + r.size, 0);
  return { memoryType: 'ObservationMemory', tier: 'cold', dataset: 'noaa-isd', kind: 'point', partitionPath: 'p', records, bytes, flushReason: 'rows' };
}

/** Every page an offset index names starts where it says, with a header that adds up to its size. */
function assertOffsetIndexes(file: Uint8Array): void {
  const footerLength = new DataView(file.buffer, file.byteOffset + file.length - 8, 4).getUint32(0, true);
  const meta = new ThriftReader(file, file.length - 8 - footerLength).struct();
  let pages = 0;
  for (const rowGroup of meta.list(4) as ThriftStruct[]) {
    for (const column of rowGroup.list(1) as ThriftStruct[]) {
      const index = new ThriftReader(file, column.i64(4)).struct();
      const locations = index.list(1) as ThriftStruct[];
      assert.equal(locations[0]!.i64(1), column.struct(3).i64(9), 'first page is the data page offset');
      for (const location of locations) {
        const reader = new ThriftReader(file, location.i64(1));
        const header = reader.struct();
        assert.equal(reader.pos - location.i64(1) + header.i32(3), location.i32(2));
        pages++;
      }
    }
  }
  assert.ok(pages > 0);
}


describe('GeoParquet compression levels', () => {
  const batch = pointBatch();
  const encode = (compression: CompressionConfig) => new GeoParquetEncoder({ compression, rowGroupSize: 8192 }).encode(batch);

  for (const algorithm of ['zstd', 'gzip', 'brotli'] as const) {
    it(`${algorithm}: maximum writes fewer bytes than low, at the levels the table gives`, async () => {
      const low = { algorithm, level: 'low' } as const;
      const maximum = { algorithm, level: 'maximum' } as const;
      for (const config of [low, maximum]) {
        const encoder = new GeoParquetEncoder({ compression: config, rowGroupSize: 8192 });
        assert.equal(encoder.codec.level, codecLevel(config));
        assert.equal(typeof encoder.codec.level, 'number');
      }
      const [a, b] = [await encode(low), await encode(maximum)];
      assert.equal(a.rows, batch.records.length);
      assert.ok(b.bytes.length < a.bytes.length, `${algorithm} maximum ${b.bytes.length} B, low ${a.bytes.length} B`);
      assertOffsetIndexes(b.bytes);
    });
  }

  it('writes the same bytes for the same batch', async () => {
    for (const compression of [{ algorithm: 'zstd', level: 'medium' }, { algorithm: 'gzip', level: 'high' }, { algorithm: 'lz4', level: 'low' }] as const) {
      const [a, b] = [await encode(compression), await encode(compression)];
      assert.deepEqual(Buffer.from(a.bytes), Buffer.from(b.bytes), compression.algorithm);
    }
  });

  it('records no level for codecs without levels', () => {
    for (const algorithm of ['lz4', 'snappy', 'none'] as const) {
      assert.equal(new GeoParquetEncoder({ compression: { algorithm, level: 'maximum' }, rowGroupSize: 8192 }).codec.level, null);
    }
  });

  it('is read back by pyarrow and DuckDB at zstd maximum', async () => {
    const path = join(tempDir('levels'), 'maximum.parquet');
    writeFileSync(path, (await encode({ algorithm: 'zstd', level: 'maximum' })).bytes);
    const check = checkParquet([path]);
    const [file] = check.files;
    assert.equal(check.duckdb_count, batch.records.length);
    assert.deepEqual(file!.problems, []);
    assert.deepEqual(file!.codecs, ['ZSTD']);
    assert.equal(file!.row_groups, 3);
    assert.equal(file!.schema.time, 'timestamp[us, tz=UTC]');
    assert.deepEqual(file!.geo.columns?.geometry?.geometry_types, ['Point']);
    assert.deepEqual([...file!.ids].sort(), batch.records.map((r) => r.id).sort());
  });
});

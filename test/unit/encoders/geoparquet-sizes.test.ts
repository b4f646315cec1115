import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { CompressionConfig } from '../../../src/config/common.js';
import type { Batch } from '../../../src/core/batch.js';
import type { ObservationRecord } from '../../../src/core/record.js';
import { packBatch, storageOrder } from '../../../src/encoders/arrow/batch-table.js';
import { GeoParquetEncoder } from '../../../src/encoders/parquet/geoparquet.js';
import { parseRecord } from '../../../src/records/parse.js';
import { writeSample } from '../../../src/records/sample.js';
import { tempDir } from '../../support/fixtures.js';
import { checkParquet, referencePython, type ParquetCheck } from '../../support/python.js';

/**
 * How big the GeoParquet objects are and how their columns are stored, read by pyarrow and
 * DuckDB: sorted `time` delta-encoded, ids prefix-encoded, and points within 1.2× of what DuckDB
 * writes for the same NDJSON at zstd.
 */

const low: CompressionConfig = { algorithm: 'zstd', level: 'low' };
const encode = (batch: Batch, compression: CompressionConfig = low) => new GeoParquetEncoder({ compression, rowGroupSize: 65_536 }).encode(batch);

function readBatch(path: string, kind: Batch['kind']): Batch {
  const records: ObservationRecord[] = [];
  readFileSync(path, 'utf8').split('\n').forEach((line, offset) => {
    if (line === '') return;
    const parsed = parseRecord(Buffer.from(line), { source: path, partition: 0, offset });
    assert.ok(parsed.ok, line);
    if (parsed.record.kind === kind) records.push(parsed.record);
  });
  return { memoryType: 'ObservationMemory', tier: 'hot', dataset: 'sample', kind, partitionPath: 'p', records, bytes: 0, flushReason: 'rows' };
}

/** The fields a GeoParquet object keeps (not the source position or size). */
function stored(record: ObservationRecord): unknown {
  const { position: _position, size: _size, ...rest } = record;
  return rest;
}

describe('GeoParquet sizes and column encodings', () => {
  const dir = tempDir('sizes');
  const pointsPath = join(dir, 'points.ndjson');
  const featuresPath = join(dir, 'features.ndjson');
  let points: Batch;
  let features: Batch;
  before(async () => {
    await writeSample(pointsPath, { points: 60_000, badCopies: 0, seed: 7 });
    await writeSample(featuresPath, { points: 0, features: 20_000, badCopies: 0, seed: 7 });
    points = readBatch(pointsPath, 'point');
    features = readBatch(featuresPath, 'vector');
    assert.equal(points.records.length, 60_000);
    assert.equal(features.records.length, 20_000);
  });

  const check = async (name: string, batch: Batch): Promise<{ check: ParquetCheck; file: ParquetCheck['files'][number] }> => {
    const path = join(dir, `${name}.parquet`);
    writeFileSync(path, (await encode(batch)).bytes);
    const result = checkParquet([path]);
    assert.deepEqual(result.files[0]!.problems, []);
    return { check: result, file: result.files[0]! };
  };

  it('points: time delta-encoded, id prefix-encoded, the rest dictionary-encoded, under 3.5 B a record', async () => {
    const { check: result, file } = await check('points', points);
    const { columns } = file;
    assert.deepEqual(columns.time!.encodings, ['DELTA_BINARY_PACKED', 'RLE']);
    assert.deepEqual(columns.id!.encodings, ['DELTA_BYTE_ARRAY', 'RLE']);
    for (const name of ['value', 'station', 'variable', 'lon', 'lat', 'geometry']) assert.ok(columns[name]!.encodings.includes('RLE_DICTIONARY'), name);
    // Sorted by station, variable, time: the times of a series differ by a constant step.
    assert.ok(columns.time!.compressed_bytes < 0.5 * points.records.length, `time ${columns.time!.compressed_bytes} B`);
    assert.ok(columns.id!.compressed_bytes < 1 * points.records.length, `id ${columns.id!.compressed_bytes} B`);
    assert.ok(file.bytes < 3.5 * points.records.length, `${file.bytes} B for ${points.records.length} points`);
    // DuckDB decodes the delta pages to the values written.
    const times = points.records.map((r) => r.timeUs).sort((a, b) => a - b);
    assert.deepEqual(result.duckdb_read, {
      distinct_ids: points.records.length,
      time_min_us: times[0],
      time_max_us: times.at(-1),
      value_sum: result.duckdb_read!.value_sum,
      geometry_bytes: 21 * points.records.length,
    });
    const sum = points.records.reduce((s, r) => s + r.value!, 0);
    assert.ok(Math.abs(Number(result.duckdb_read!.value_sum) - sum) < 1e-6 * Math.abs(sum));
  });

  it('points: at most 1.2× the bytes DuckDB writes for the same NDJSON (zstd)', async () => {
    const ours = (await encode(points)).bytes.byteLength;
    const duck = join(dir, 'duckdb.parquet');
    const script = 'import duckdb, sys; duckdb.sql(f"COPY (SELECT * FROM read_json_auto(\'{sys.argv[1]}\')) TO \'{sys.argv[2]}\' (FORMAT parquet, COMPRESSION zstd)")';
    execFileSync(referencePython(), ['-c', script, pointsPath, duck]);
    const theirs = statSync(duck).size;
    assert.ok(ours <= 1.2 * theirs, `ours ${ours} B, DuckDB ${theirs} B`);
  });

  it('features: time delta-encoded, id prefix-encoded, value plain, under 45 B a record', async () => {
    const { check: result, file } = await check('features', features);
    const { columns } = file;
    assert.deepEqual(columns.time!.encodings, ['DELTA_BINARY_PACKED', 'RLE']);
    assert.deepEqual(columns.id!.encodings, ['DELTA_BYTE_ARRAY', 'RLE']);
    assert.deepEqual(columns.value!.encodings, ['PLAIN', 'RLE']);
    assert.ok(columns.geometry!.encodings.includes('RLE_DICTIONARY'));
    assert.ok(file.bytes < 45 * features.records.length, `${file.bytes} B for ${features.records.length} features`);
    assert.equal(result.duckdb_read!.distinct_ids, features.records.length);
    assert.deepEqual(file.geo.columns?.geometry?.geometry_types, ['Polygon']);
  });

  it('decodes to the records it was given and re-encodes to the same bytes, with every codec', async () => {
    const codecs: CompressionConfig[] = [low, { algorithm: 'gzip', level: 'low' }, { algorithm: 'brotli', level: 'low' }, { algorithm: 'lz4', level: 'low' }, { algorithm: 'snappy', level: 'low' }, { algorithm: 'none', level: 'low' }];
    for (const batch of [{ ...points, records: points.records.slice(0, 10_000) }, { ...features, records: features.records.slice(0, 5_000) }]) {
      const expected = Array.from(storageOrder(packBatch(batch)), (i) => stored(batch.records[i]!));
      for (const compression of codecs) {
        const encoder = new GeoParquetEncoder({ compression, rowGroupSize: 4096 });
        const first = await encoder.encode(batch);
        const decoded = encoder.decode(first.bytes, { source: 'x', partition: 0 });
        assert.deepEqual(decoded.records.map(stored), expected, `${batch.kind} ${compression.algorithm}`);
        const again = await encoder.encode({ ...batch, records: decoded.records });
        assert.ok(Buffer.from(again.bytes).equals(Buffer.from(first.bytes)), `${batch.kind} ${compression.algorithm}: re-encoded bytes differ`);
      }
    }
  });
});

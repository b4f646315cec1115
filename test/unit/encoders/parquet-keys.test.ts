/**
 * ParquetStorage's keys on the GeoParquet encoder: page_size bounds the data pages (counted from
 * the page headers), row_group_size the row groups, compression: snappy is what pyarrow and
 * DuckDB read, and the GeoParquet metadata stays valid (test/support/check_parquet.py).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { GeoParquetEncoder, parquetOptions } from '../../../src/encoders/parquet/geoparquet.js';
import { ThriftReader, type ThriftStruct } from '../../../src/encoders/parquet/thrift.js';
import { randomBatch } from '../../support/random-batches.js';
import { tempDir } from '../../support/fixtures.js';
import { checkParquet } from '../../support/python.js';

/** The uncompressed sizes of the data pages of each column (all row groups), read from the page headers. */
function dataPages(file: Uint8Array): Map<string, number[]> {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const footerLength = view.getUint32(file.length - 8, true);
  const meta = new ThriftReader(file, file.length - 8 - footerLength).struct();
  const pages = new Map<string, number[]>();
  for (const rowGroup of meta.list(4) as ThriftStruct[]) {
    for (const chunk of rowGroup.list(1) as ThriftStruct[]) {
      const m = chunk.struct(3);
      const name = (m.list(3) as Uint8Array[]).map((p) => Buffer.from(p).toString()).join('.');
      const start = m.has(11) ? Math.min(m.i64(11), m.i64(9)) : m.i64(9);
      const end = start + m.i64(7);
      let pos = start;
      while (pos < end) {
        const reader = new ThriftReader(file, pos);
        const header = reader.struct();
        if (header.i32(1) === 0) pages.set(name, [...(pages.get(name) ?? []), header.i32(2)]);
        pos = reader.pos + header.i32(3);
      }
    }
  }
  return pages;
}

describe('ParquetStorage keys', () => {
  it('page_size bounds the data pages; row_group_size the row groups; snappy reads back in pyarrow and DuckDB', async () => {
    const batch = randomBatch(21, 'point', 20_000);
    const tier = { algorithm: 'zstd' as const, level: 'medium' as const };
    const big = await new GeoParquetEncoder(parquetOptions(tier, 100_000, { compression: 'snappy' })).encode(batch);
    const small = await new GeoParquetEncoder(parquetOptions(tier, 100_000, { compression: 'snappy', page_size: 8192 })).encode(batch);
    const grouped = await new GeoParquetEncoder(parquetOptions(tier, 100_000, { compression: 'snappy', row_group_size: 3000 })).encode(batch);
    // Under arrow-rs's 1 MiB default each column is one data page; at 8 KiB the pages end near the
    // limit (arrow-rs checks it after each write batch of 128 values, and delta encoding flushes
    // whole blocks: within a quarter over).
    for (const column of ['lon', 'lat', 'value', 'time']) {
      assert.equal(dataPages(big.bytes).get(column)!.length, 1, column);
      const sizes = dataPages(small.bytes).get(column)!;
      assert.ok(sizes.length >= 3, `${column}: ${sizes.length} pages`);
      assert.ok(Math.max(...sizes) <= 8192 * 1.25, `${column}: pages of ${sizes.join(', ')} bytes`);
    }
    const dir = tempDir('parquet-keys');
    const files = [big, small, grouped].map((o, i) => {
      const path = join(dir, `${i}.parquet`);
      writeFileSync(path, o.bytes);
      return path;
    });
    const check = checkParquet(files);
    for (const f of check.files) {
      assert.deepEqual(f.problems, [], f.path);
      assert.deepEqual(f.codecs, ['SNAPPY']);
      assert.equal(f.rows, 20_000);
    }
    assert.deepEqual(check.files.map((f) => f.row_groups), [1, 1, 7]);
    assert.equal(check.duckdb_count, 60_000);
  });
});

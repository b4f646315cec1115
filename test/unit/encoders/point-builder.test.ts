/**
 * Points kept as columns from the moment they are routed must give what record batches give:
 * the same packed columns, the same GeoParquet bytes, manifest, provenance and held positions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { batchHeld, batchProvenance, firstPosition, heldPositions, heldSizeAt, provenanceOfBatch, type Batch, type ColumnBatch } from '../../../src/core/batch.js';
import { manifestOf, manifestOfBatch } from '../../../src/core/manifest.js';
import type { PointRecord } from '../../../src/core/record.js';
import { packBatch, packPoints } from '../../../src/encoders/arrow/batch-table.js';
import { PointColumnsBuilder } from '../../../src/encoders/arrow/point-builder.js';
import { GeoParquetEncoder } from '../../../src/encoders/parquet/geoparquet.js';
import { randomBatch } from '../../support/random-batches.js';

/** A random point batch of one source partition (what the batcher makes), as records and as columns. */
function both(seed: number, size: number): { records: Batch; columns: ColumnBatch } {
  const random = randomBatch(seed, 'point', size);
  const records = (random.records as PointRecord[]).map((r) => ({ ...r, position: { source: 'observations', partition: 2, offset: r.position.offset } }));
  // A small first capacity: every column grows several times.
  const builder = new PointColumnsBuilder(2);
  for (const r of records) builder.append(r);
  const { records: _records, ...rest } = random;
  return { records: { ...random, records }, columns: { ...rest, columns: builder } };
}

describe('PointColumnsBuilder', () => {
  it('gives the columns packBatch gives for the same records, whatever nulls, strings and sizes', () => {
    for (let seed = 1; seed <= 80; seed++) {
      const size = [0, 1, 2, 3, 17, 300][seed % 6]!;
      const { records, columns } = both(seed, size);
      assert.deepEqual(packBatch(columns), packPoints(records.records as PointRecord[]), `seed ${seed}, ${size} rows`);
      assert.deepEqual(manifestOfBatch(columns, ['a'], [], true), manifestOf(records.records, ['a'], [], true), `seed ${seed}: manifest`);
      assert.deepEqual(provenanceOfBatch(columns), batchProvenance(records.records), `seed ${seed}: provenance`);
      const held = batchHeld(columns);
      assert.deepEqual(heldPositions(held), records.records.map((r) => r.position), `seed ${seed}: held positions`);
      assert.deepEqual(records.records.map((_, i) => heldSizeAt(held, i)), records.records.map((r) => r.size), `seed ${seed}: held sizes`);
      if (size > 0) assert.deepEqual(firstPosition(columns), records.records[0]!.position);
    }
  });

  it('encodes to the same GeoParquet bytes as the record batch', async () => {
    const encoder = new GeoParquetEncoder({ compression: { algorithm: 'zstd', level: 'low' }, rowGroupSize: 100 });
    for (const seed of [3, 11, 29]) {
      const { records, columns } = both(seed, 700);
      const a = await encoder.encode(records);
      const b = await encoder.encode(columns);
      assert.deepEqual(Buffer.from(b.bytes), Buffer.from(a.bytes), `seed ${seed}`);
    }
    await encoder.close();
  });
});

/**
 * Every registered format round-trips the same random batches (test/support/random-batches.ts):
 * encode → decode gives the records back (geometries to the right-hand rule where the format
 * rewinds them), re-encoding what was decoded gives the same bytes, and the same records in
 * another order give the same bytes. What the mover relies on when it re-encodes across formats.
 * Parquet with partition_cols decodes the partition columns from the object's key.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Batch } from '../../src/core/batch.js';
import type { ObservationRecord, RecordKind } from '../../src/core/record.js';
import { packBatch, storageOrder } from '../../src/encoders/arrow/batch-table.js';
import { encoderFor, formatProblem, objectFormats, type FormatKeys } from '../../src/encoders/registry.js';
import { rewound } from '../../src/records/geometry.js';
import { compileTemplate, objectKey } from '../../src/stages/object-key.js';
import { randomBatch } from '../support/random-batches.js';

const variants: { format: string; keys: FormatKeys }[] = [
  // Zarr keeps stores that grow, not one object per batch: its own suite is src/encoders/zarr/.
  ...objectFormats().map((format) => ({ format, keys: {} })),
  { format: 'geojson', keys: { compression: 'gzip', layout: 'text_sequence' } },
  { format: 'csv', keys: { compression: 'gzip' } },
  { format: 'parquet', keys: { compression: 'snappy', row_group_size: 7, page_size: 256 } },
];

function content(r: ObservationRecord, rewinds: boolean): unknown {
  const { position: _p, size: _s, key: _k, ...rest } = r as ObservationRecord & { key?: unknown };
  return r.kind === 'vector' && rewinds ? { ...rest, geometry: rewound(r.geometry) } : rest;
}

describe('format conformance: every format round-trips the same random batches', () => {
  for (const { format, keys } of variants) {
    for (const kind of ['point', 'vector'] as RecordKind[]) {
      if (formatProblem(kind, format) !== undefined) continue;
      it(`${format} ${JSON.stringify(keys)} ${kind}`, async () => {
        const encoder = await encoderFor(kind, format, { compression: { algorithm: 'zstd', level: 'medium' }, rowGroupSize: 1000, encodeWorkers: 0, keys });
        try {
          for (let seed = 100; seed < 112; seed++) {
            const batch = randomBatch(seed, kind, 1 + (seed % 5) * 13);
            const order = [...storageOrder(packBatch(batch))];
            const first = await encoder.encode(batch);
            assert.equal(first.rows, batch.records.length);
            assert.deepEqual((await encoder.encode({ ...batch, records: [...batch.records].reverse() })).bytes, first.bytes);
            const decoded = encoder.decode(first.bytes, { source: 'x', partition: 0 }).records;
            // Parquet keeps storage order too; compare as sets of content where a format does not promise order.
            const rewinds = format === 'geojson';
            const expected = order.map((i) => content(batch.records[i]!, rewinds));
            assert.deepStrictEqual(decoded.map((r) => content(r, rewinds)), expected);
            assert.deepEqual((await encoder.encode({ ...batch, records: decoded })).bytes, first.bytes);
          }
        } finally {
          await encoder.close();
        }
      });
    }
  }

  it('parquet with partition_cols: the columns leave the file and come back from the key', async () => {
    const cols = ['year', 'dataset', 'variable', 'station'] as const;
    const encoder = await encoderFor('point', 'parquet', { compression: { algorithm: 'zstd', level: 'medium' }, rowGroupSize: 1000, encodeWorkers: 0, keys: { partition_cols: [...cols] } });
    const template = compileTemplate('', cols);
    for (let seed = 1; seed < 9; seed++) {
      const random = randomBatch(seed, 'point', 60);
      // The record contract's datasets are never empty (the random batches' are).
      const all = { ...random, records: random.records.map((r) => (r.dataset === '' ? { ...r, dataset: 'd' } : r)) };
      // A batch is one partition: group as the pipeline's batcher would, by the expanded path.
      const groups = new Map<string, ObservationRecord[]>();
      for (const r of all.records) groups.set(template.expand(r, 'M'), [...(groups.get(template.expand(r, 'M')) ?? []), r]);
      for (const [path, records] of groups) {
        const batch: Batch = { ...all, records, partitionPath: path };
        const encoded = await encoder.encode(batch);
        assert.ok(!encoded.schema.includes('variable') && !encoded.schema.includes('dataset') && !encoded.schema.includes('station'));
        const key = objectKey('M', path, [], encoder.extension);
        const decoded = encoder.decode(encoded.bytes, { source: 'x', partition: 0 }, key).records;
        const order = [...storageOrder(packBatch(batch))];
        // As in Hive and pyarrow, an empty partition value reads back as null.
        const hive = (r: ObservationRecord) => (r.kind === 'point' && r.station === '' ? { ...r, station: null } : r);
        assert.deepStrictEqual(decoded.map((r) => content(r, false)), order.map((i) => content(hive(records[i]!), false)), key);
        assert.throws(() => encoder.decode(encoded.bytes, { source: 'x', partition: 0 }), /is read with its key/);
      }
    }
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { from, lastValueFrom, toArray } from 'rxjs';
import type { CoveredRange } from '../../../src/catalog/catalog.js';
import { batchPositions, heldPositions } from '../../../src/core/batch.js';
import type { PointRecord } from '../../../src/core/record.js';
import { batchRecords } from '../../../src/stages/batch-operator.js';
import { batchIdOfRange, type Routed } from '../../../src/stages/batcher.js';
import { CoverageIndex } from '../../../src/stages/coverage.js';

function routed(offset: number, tier: string): Routed {
  const record: PointRecord = {
    kind: 'point', position: { source: 'obs', partition: 0, offset }, size: 10, id: `obs-${offset}`, dataset: 'd', variable: 'v',
    timeUs: 0, lon: 0, lat: 0, value: offset, unit: null, quality: null, station: null, elevation: null, attrs: null,
  };
  return { record, memoryType: 'M', tier, partitionPath: 'p' };
}

const range = (tier: string, firstOffset: number, lastOffset: number): CoveredRange => ({
  key: `M/p/part-${firstOffset}.parquet`, tier, memoryType: 'M', kind: 'point', dataset: 'd', partitionPath: 'p', source: 'obs', partition: 0, firstOffset, lastOffset,
});

/** Redelivers offsets 0..9 routed to `tier` over a catalog holding one object of offsets 0..4 in `objectTier`. */
async function redeliver(tier: string, objectTier: string) {
  const coverage = new CoverageIndex();
  coverage.load('obs', 0, [range(objectTier, 0, 4)], batchIdOfRange);
  const events = await lastValueFrom(
    from([Array.from({ length: 10 }, (_, i) => routed(i, tier))]).pipe(
      batchRecords({ limits: { maxRows: 100, maxBytes: 1e9, maxAgeMs: null, maxOpenBytes: 1e9 }, coverage }),
      toArray(),
    ),
  );
  return {
    batches: events.flatMap((e) => (e.kind === 'flushed' ? [[e.batch.tier, e.batch.flushReason, batchPositions(e.batch).map((p) => p.offset)]] : [])),
    durable: events.flatMap((e) => (e.kind === 'durable' ? heldPositions(e.records).map((p) => p.offset) : [])),
  };
}

describe('coverage of redelivered records', () => {
  it('rebuilds a catalogued object in the tier it is routed to: same records, same key', async () => {
    assert.deepEqual(await redeliver('hot', 'hot'), { batches: [['hot', 'aligned', [0, 1, 2, 3, 4]], ['hot', 'end', [5, 6, 7, 8, 9]]], durable: [] });
  });

  it('skips the records of an object that has moved to another tier: durable there, never a second copy', async () => {
    assert.deepEqual(await redeliver('hot', 'warm'), { batches: [['hot', 'end', [5, 6, 7, 8, 9]]], durable: [0, 1, 2, 3, 4] });
  });
});

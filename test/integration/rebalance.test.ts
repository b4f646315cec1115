/**
 * A shared source's rebalances through the real pipeline (local tiers, SQLite catalog), with an
 * in-process source that scripts them: the open batch of a revoked partition is dropped unwritten
 * and written once the partition is read again; a write fenced by another worker's claim is
 * dropped, never acknowledged nor committed; the in-flight budget comes back either way.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SqliteCatalog } from '../../src/catalog/sqlite.js';
import type { Committable } from '../../src/core/offset-tracker.js';
import type { RawChunk, Source, SourceHooks } from '../../src/core/source.js';
import { runPipeline } from '../../src/pipeline/run.js';
import { demoConfig, tempDir } from '../support/fixtures.js';

const t = '2024-03-01T00:00:00Z';
const payload = (i: number) =>
  JSON.stringify({ dataset: 'noaa-isd', variable: 'temperature', station: 'ST0001', time: t, lon: 1 + i / 100, lat: 2, value: 280 + i });
const chunk = (partition: number): RawChunk => ({
  payloads: Array.from({ length: 10 }, (_, i) => Buffer.from(payload(i))),
  positions: Array.from({ length: 10 }, (_, offset) => ({ source: 'obs', partition, offset })),
});

/** Partitions 0 and 1 of a consumer group: read both, lose 0 and get it back, then another worker claims 1. */
class RebalancingSource implements Source {
  readonly name = 'rebalancing';
  readonly bounded = false;
  readonly shared = true;
  readonly commits: Committable[] = [];
  private hooks: SourceHooks | undefined;
  private scriptEnded!: () => void;
  readonly ended = new Promise<void>((resolve) => (this.scriptEnded = resolve));

  constructor(private readonly catalogPath: string) {}

  attach(hooks: SourceHooks): void {
    this.hooks = hooks;
  }

  async *chunks(signal: AbortSignal): AsyncGenerator<RawChunk> {
    await this.hooks!.assigned([{ source: 'obs', partition: 0, startOffset: 0 }, { source: 'obs', partition: 1, startOffset: 0 }]);
    yield chunk(0);
    yield chunk(1);
    await this.hooks!.revoked([{ source: 'obs', partition: 0 }]);
    await this.hooks!.assigned([{ source: 'obs', partition: 0, startOffset: 0 }]);
    yield chunk(0);
    const other = new SqliteCatalog(this.catalogPath);
    await other.claimPartitions('another-worker', [{ source: 'obs', partition: 1 }]);
    await other.close();
    this.scriptEnded();
    if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  }

  async commit(offsets: Committable[]): Promise<void> {
    this.commits.push(...offsets);
  }

  async close(): Promise<void> {}
}

describe('rebalances of a shared source', () => {
  it('a revoked open batch is dropped and written after the re-read; a fenced write is dropped, never committed', async () => {
    const dir = tempDir('rebalance');
    // Batches stay open until the drain: neither rows nor age flush them.
    const config = demoConfig(join(dir, 'unused.ndjson'), join(dir, 'out'), (y) => y.replace('max_age: 30s', 'max_age: 1h'));
    assert.equal(config.catalog.type, 'sqlite');
    const source = new RebalancingSource(config.catalog.type === 'sqlite' ? config.catalog.path : '');
    const lines: string[] = [];
    const controller = new AbortController();
    const run = runPipeline(config, { source, signal: controller.signal, log: (line) => lines.push(line) });
    await Promise.race([source.ended, run]);
    controller.abort();
    const summary = await run;

    assert.equal(summary.recordsRead, 30);
    assert.equal(summary.recordsWritten, 10, 'partition 0, once, after its re-read');
    assert.equal(summary.batchesFenced, 1);
    assert.ok(lines.some((l) => /claimed by another worker.*: batch of 10 records dropped; the new owner re-reads them/.test(l)), lines.join('\n'));
    assert.deepEqual(source.commits, [{ source: 'obs', partition: 0, offset: 10 }], 'partition 1 is never committed');
    assert.equal(summary.inFlight, 10, "partition 1's records stay unacknowledged");
    assert.equal(summary.complete, false);
    const catalog = new SqliteCatalog(config.catalog.type === 'sqlite' ? config.catalog.path : '');
    const rows = await catalog.list();
    await catalog.close();
    assert.deepEqual(
      rows.map((r) => r.provenance.map((p) => [p.partition, p.firstOffset, p.lastOffset, p.count])),
      [[[0, 0, 9, 10]]],
    );
  });
});

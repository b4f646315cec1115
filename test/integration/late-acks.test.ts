/**
 * Acknowledgements that no batch write follows must still reach the source's commit: the last
 * records of a partition may be dead letters (flushed late when the dead-letter sink was away,
 * e.g. across a broker restart), and then nothing else would offer their offsets, so the group's
 * committed offsets would freeze with every record durable. Runs the real pipeline on the local
 * tiers with an in-process unbounded source (the `Source` plug point replays use).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Committable } from '../../src/core/offset-tracker.js';
import type { RawChunk, Source, SourceHooks } from '../../src/core/source.js';
import { runPipeline } from '../../src/pipeline/run.js';
import { badRecords } from '../../src/records/sample.js';
import { demoConfig, tempDir } from '../support/fixtures.js';

/** One partition that delivers `payloads` once, then stays open (as a Kafka topic would) until aborted. */
class OpenEndedSource implements Source {
  readonly name = 'open-ended';
  readonly bounded = false;
  readonly shared = false;
  readonly commits: Committable[][] = [];
  private hooks: SourceHooks | undefined;
  private committedListener: ((offset: number) => void) | undefined;

  constructor(private readonly payloads: string[]) {}

  attach(hooks: SourceHooks): void {
    this.hooks = hooks;
  }

  async *chunks(signal: AbortSignal): AsyncGenerator<RawChunk> {
    await this.hooks?.assigned([{ source: 'obs', partition: 0, startOffset: 0 }]);
    yield {
      payloads: this.payloads.map((p) => Buffer.from(p)),
      positions: this.payloads.map((_, offset) => ({ source: 'obs', partition: 0, offset })),
    };
    if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  }

  async commit(offsets: Committable[]): Promise<void> {
    this.commits.push(offsets);
    for (const o of offsets) this.committedListener?.(o.offset);
  }

  /** Resolves when an offset of at least `offset` is committed. */
  committed(offset: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.commits.flat().some((o) => o.offset >= offset)) return resolve();
      this.committedListener = (o) => {
        if (o >= offset) resolve();
      };
    });
  }

  async close(): Promise<void> {}
}

describe('acknowledgements without a write after them', () => {
  it('a trailing run of dead letters is committed while the source is still open', async () => {
    const dir = tempDir('late-acks');
    const t = '2024-03-01T00:00:00Z';
    const good = Array.from({ length: 50 }, (_, i) =>
      JSON.stringify({ dataset: 'noaa-isd', variable: 'temperature', station: 'ST0001', time: t, lon: 1 + i / 100, lat: 2, value: 280 + i }),
    );
    const bad = badRecords(Date.parse(t)).map((b) => b.line);
    const source = new OpenEndedSource([...good, ...bad]);
    const config = demoConfig(join(dir, 'unused.ndjson'), join(dir, 'out'), (y) => y.replace('max_rows: 50000', 'max_rows: 50'));
    const controller = new AbortController();
    const run = runPipeline(config, { source, signal: controller.signal });
    const everything = good.length + bad.length;
    const outcome = await Promise.race([
      source.committed(everything).then(() => 'committed'),
      new Promise<string>((resolve) => setTimeout(() => resolve('timed out'), 10_000).unref()),
      run.then(() => 'run ended'),
    ]);
    controller.abort();
    const summary = await run;
    assert.equal(outcome, 'committed', `offsets offered: ${JSON.stringify(source.commits)}`);
    assert.equal(summary.recordsWritten, good.length);
    assert.equal(summary.deadLettered, bad.length);
    assert.equal(summary.complete, true);
  });

  it('a run whose records wait without acknowledgement says what they wait for', async () => {
    const dir = tempDir('stall-report');
    const t = '2024-03-01T00:00:00Z';
    const good = Array.from({ length: 20 }, (_, i) =>
      JSON.stringify({ dataset: 'noaa-isd', variable: 'temperature', station: 'ST0001', time: t, lon: 1, lat: 2, value: 280 + i }),
    );
    const source = new OpenEndedSource(good);
    // An open batch that neither rows nor age will flush for an hour: the records wait in it.
    const config = demoConfig(join(dir, 'unused.ndjson'), join(dir, 'out'), (y) => y.replace('max_age: 30s', 'max_age: 1h'));
    const lines: string[] = [];
    const controller = new AbortController();
    const run = runPipeline(config, { source, signal: controller.signal, stallReportMs: 500, log: (line) => lines.push(line) });
    const deadline = Date.now() + 10_000;
    while (!lines.some((l) => l.startsWith('pipeline waiting')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    controller.abort();
    const summary = await run;
    const report = lines.find((l) => l.startsWith('pipeline waiting'));
    assert.ok(report, `no report in: ${lines.join('\n')}`);
    assert.match(report, /unacknowledged obs\[0\] 20 from offset 0/);
    assert.match(report, /open batches 20 records; writes in flight 0; dead letters buffered 0, flushing 0/);
    // Draining still writes and acknowledges them.
    assert.equal(summary.recordsWritten, 20);
    assert.equal(summary.complete, true);
  });
});

/**
 * Ingest and migration at the same time on the same partitions (issue #10): a Kafka worker keeps
 * writing while MigrationJobs move its objects hot → warm, then the worker is killed with SIGKILL
 * and restarted, so its uncommitted records are redelivered, some of them into objects that have
 * moved. Exactly-once through the catalog must hold: every valid record once, in whatever tier.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { MemoryCodex } from '../../src/codex/memory-codex.js';
import { catalogRows, killWorkers, startWorker, waitFor } from '../support/kafka.js';
import { assertExactlyOnce, drained, joined, loadTopic, scenario, stop } from '../support/kafka-scenario.js';


describe('Kafka ingest while a MigrationJob moves the same partitions', () => {
  afterEach(killWorkers);

  it('a worker writes, jobs move its objects, the worker is killed and redelivers: 0 lost, 0 visible twice', async () => {
    const s = scenario('ingest-move');
    await loadTopic(s);
    const codex = MemoryCodex.fromFile('pipelines/kafka.yaml', { env: { ...process.env, ...s.env } });
    const moves: { id: string; done: number; state: string }[] = [];
    let moving = true;
    const mover = (async () => {
      for (let round = 0; moving; round++) {
        const status = await codex.executeMigration({ id: `move-${round}`, source_tier: 'hot', destination_tier: 'warm', concurrency: 2 });
        moves.push({ id: status.id, done: status.objects_done, state: status.state });
        await new Promise((r) => setTimeout(r, 300));
      }
    })();

    let worker = startWorker('pipelines/kafka.yaml', s.env);
    await waitFor('some hot objects to be moved', async () => moves.reduce((n, m) => n + m.done, 0) >= 3);
    worker.child.kill('SIGKILL');
    await worker.exited;
    worker = startWorker('pipelines/kafka.yaml', s.env);
    await joined(worker);
    await drained(s, worker);
    moving = false;
    await mover;
    await stop(worker);

    // Every job ended cleanly: a source rewritten under it fails that object, never a duplicate.
    assert.ok(moves.every((m) => m.state === 'completed' || m.state === 'failed'), JSON.stringify(moves));
    assert.ok(moves.reduce((n, m) => n + m.done, 0) >= 3);
    const rows = await catalogRows(s.env.EARTHMEM_CATALOG_SCHEMA);
    assert.ok(rows.some((r) => r.tier === 'warm' && r.memoryType === 'TemperatureMemory'), 'moved objects are in warm');
    await assertExactlyOnce(s);
  });

  it('a worker ages and compacts its own objects while it ingests, is killed and redelivers: 0 lost, 0 visible twice', async () => {
    const s = scenario('ingest-age');
    await loadTopic(s);
    // The Kafka pipeline with an aging stream: every 500 ms, old hot objects move to warm, merged.
    const pipeline = join(s.dir, 'kafka-aging.yaml');
    writeFileSync(
      pipeline,
      `${readFileSync('pipelines/kafka.yaml', 'utf8')}
aging:
  interval: 500ms
  min_residence: 0s
  policies:
    - { name: hot-to-warm, source_tier: hot, destination_tier: warm, selection_criteria: { time_before: 30 days ago }, compact: { target_rows: 200000 } }
`,
    );
    let worker = startWorker(pipeline, s.env);
    await waitFor('some objects to age', async () => (await catalogRows(s.env.EARTHMEM_CATALOG_SCHEMA).catch(() => [])).some((r) => r.tier === 'warm'));
    worker.child.kill('SIGKILL');
    await worker.exited;
    worker = startWorker(pipeline, s.env);
    await joined(worker);
    await drained(s, worker);
    // Let the stream age what the last batches wrote, then drain.
    await waitFor('hot to empty', async () => (await catalogRows(s.env.EARTHMEM_CATALOG_SCHEMA)).filter((r) => r.tier === 'hot' && r.memoryType === 'TemperatureMemory').length === 0);
    await stop(worker);
    assert.match(worker.output(), /aging hot-to-warm \(hot → warm\): moved \d+ of \d+ objects/);
    const rows = await catalogRows(s.env.EARTHMEM_CATALOG_SCHEMA);
    assert.ok(rows.filter((r) => r.tier === 'warm').length > 0);
    await assertExactlyOnce(s);
  });
});

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { catalogRows, killWorkers, startWorker, waitFor, type Worker } from '../support/kafka.js';
import { VALID, assertExactlyOnce, drained, joined, loadTopic, scenario, stop } from '../support/kafka-scenario.js';

describe('Kafka → tiered GeoParquet, end-to-end acknowledgements (real broker, kcat producer, PostgreSQL catalog)', () => {
  const shared = scenario('two');
  afterEach(killWorkers);

  it('two workers in one group: every valid record lands exactly once, every invalid one is dead-lettered', async () => {
    // Both workers join the group before any record is produced: else the first may drain the
    // whole topic before the second is assigned a partition.
    const workers: Worker[] = [];
    await loadTopic(shared, async () => {
      workers.push(startWorker('pipelines/kafka.yaml', shared.env), startWorker('pipelines/kafka.yaml', shared.env));
      await waitFor('both workers to be assigned partitions', async () => workers.every((w) => /kafka group group-two-\d+: assigned/.test(w.output())));
    });
    const [a, b] = workers as [Worker, Worker];
    await drained(shared, a, b);
    await stop(a, b);
    await assertExactlyOnce(shared);
    for (const w of [a, b]) assert.match(w.output(), /written:\s+[1-9]/, `both workers wrote: ${w.output()}`);
    // The run log shows the group's lag per partition every lag_log_interval.
    for (const w of [a, b]) assert.match(w.output(), /kafka lag group-two-\d+: (obs-two-\d+\[\d\]=\d+ ?)+ total=\d+/);
  });

  it('replay of the topic rebuilds byte-identical objects at the same keys', async () => {
    const before = (await catalogRows(shared.env.EARTHMEM_CATALOG_SCHEMA)).map((r) => [r.key, r.sha256, r.rows]);
    const replay = startWorker('pipelines/kafka.yaml', shared.env, ['replay', '--from-beginning']);
    assert.equal(await replay.exited, 0, replay.output());
    assert.match(replay.output(), new RegExp(`written:\\s+${VALID.toLocaleString('en-US')}`));
    const after = (await catalogRows(shared.env.EARTHMEM_CATALOG_SCHEMA)).map((r) => [r.key, r.sha256, r.rows]);
    assert.deepEqual(after, before);
    await assertExactlyOnce(shared);
  });

  it('a worker killed with SIGKILL mid-stream and restarted: 0 lost, 0 visible duplicates', async () => {
    const s = scenario('kill');
    await loadTopic(s);
    const a = startWorker('pipelines/kafka.yaml', s.env);
    const b = startWorker('pipelines/kafka.yaml', s.env);
    await waitFor('some objects to be written', async () => (await catalogRows(s.env.EARTHMEM_CATALOG_SCHEMA).catch(() => [])).length >= 3);
    a.child.kill('SIGKILL');
    await a.exited;
    const a2 = startWorker('pipelines/kafka.yaml', s.env);
    await joined(a2);
    await drained(s, b, a2);
    await stop(b, a2);
    await assertExactlyOnce(s);
  });
});

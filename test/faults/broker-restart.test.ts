/**
 * The broker stopped and restarted mid-stream (`scripts/services restart kafka`): the worker rides
 * it out with 0 lost and 0 visible duplicates. It stops the shared broker, so `scripts/test.mjs`
 * runs the files under test/faults after every other test, one at a time.
 */
import { execFileSync } from 'node:child_process';
import { afterEach, describe, it } from 'node:test';
import { catalogRows, killWorkers, startWorker, waitFor } from '../support/kafka.js';
import { assertExactlyOnce, drained, loadTopic, scenario, stop } from '../support/kafka-scenario.js';

describe('fault: the Kafka broker stopped and restarted mid-stream', () => {
  afterEach(killWorkers);

  it('the worker rides it out: 0 lost, 0 visible duplicates, every bad record dead-lettered', async () => {
    const s = scenario('broker');
    await loadTopic(s);
    const w = startWorker('pipelines/kafka.yaml', s.env);
    await waitFor('some objects to be written', async () => (await catalogRows(s.env.EARTHMEM_CATALOG_SCHEMA).catch(() => [])).length >= 2);
    execFileSync('scripts/services', ['restart', 'kafka'], { stdio: 'ignore' });
    await drained(s, w);
    await stop(w);
    await assertExactlyOnce(s);
  });
});

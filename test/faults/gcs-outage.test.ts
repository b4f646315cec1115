/**
 * GCS (fake-gcs-server) stopped for 60 s in the middle of a Kafka stream whose every tier is on it: the writes
 * retry under the backends' default `retry` policy (10 minutes), the source stays paused by the
 * in-flight budget meanwhile, and the run goes on by itself once the server is back: 0 lost,
 * 0 duplicated, the run log telling the outage once. It stops a shared server, so
 * `scripts/test.mjs` runs it with the other files under test/faults, after every other test,
 * one at a time; the server is started again even when the test fails.
 */
import { after, afterEach, describe, it } from 'node:test';
import { killWorkers } from '../support/kafka.js';
import { describeFigures, rideOutOutage, services } from '../support/outage.js';

describe('fault: GCS (fake-gcs-server) down for 60 s mid-stream', () => {
  afterEach(killWorkers);
  after(() => services('up', 'gcs'));

  it('the worker waits for it and finishes by itself: 0 lost, 0 duplicated, bounded memory', { timeout: 900_000 }, async (t) => {
    const figures = await rideOutOutage({
      name: 'gcs-down',
      service: 'gcs',
      downMs: 60_000,
      target: /^gcs tier /,
      backendOf: (tier, s) => ({
    type: 'gcs',
    bucket: '${GCS_BUCKET_COLD}',
    project: '${GCS_PROJECT}',
    endpoint: '${GCS_ENDPOINT}',
    prefix: `${s.env.EARTHMEM_TOPIC}/${tier}/`,
  }),
    });
    t.diagnostic(describeFigures(figures));
  });
});

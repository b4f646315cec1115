/**
 * S3 (versitygw) stopped for 60 s in the middle of a Kafka stream whose every tier is on it: the writes
 * retry under the backends' default `retry` policy (10 minutes), the source stays paused by the
 * in-flight budget meanwhile, and the run goes on by itself once the server is back: 0 lost,
 * 0 duplicated, the run log telling the outage once. It stops a shared server, so
 * `scripts/test.mjs` runs it with the other files under test/faults, after every other test,
 * one at a time; the server is started again even when the test fails.
 */
import { after, afterEach, describe, it } from 'node:test';
import { killWorkers } from '../support/kafka.js';
import { describeFigures, rideOutOutage, services } from '../support/outage.js';

describe('fault: S3 (versitygw) down for 60 s mid-stream', () => {
  afterEach(killWorkers);
  after(() => services('up', 's3'));

  it('the worker waits for it and finishes by itself: 0 lost, 0 duplicated, bounded memory', { timeout: 900_000 }, async (t) => {
    const figures = await rideOutOutage({
      name: 's3-down',
      service: 's3',
      downMs: 60_000,
      target: /^s3 tier /,
      backendOf: (tier, s) => ({
    type: 's3',
    bucket: '${S3_BUCKET_WARM}',
    region: '${AWS_REGION}',
    endpoint: '${S3_ENDPOINT}',
    credentials: { aws_access_key_id: '${AWS_ACCESS_KEY_ID}', aws_secret_access_key: '${AWS_SECRET_ACCESS_KEY}' },
    prefix: `${s.env.EARTHMEM_TOPIC}/${tier}/`,
  }),
    });
    t.diagnostic(describeFigures(figures));
  });
});

/**
 * The PostgreSQL catalog stopped for 60 s and started again in the middle of a Kafka stream: its
 * pool reconnects, each catalog upsert cut by the restart is retried as a whole transaction (it
 * is idempotent: the same row for the same object), the source stays paused meanwhile, and the
 * run goes on by itself: 0 lost, 0 duplicated. It stops the shared PostgreSQL, so
 * `scripts/test.mjs` runs it with the other files under test/faults, after every other test,
 * one at a time; the server is started again even when the test fails.
 */
import { after, afterEach, describe, it } from 'node:test';
import { killWorkers } from '../support/kafka.js';
import { describeFigures, rideOutOutage, services } from '../support/outage.js';

describe('fault: the PostgreSQL catalog restarted mid-stream', () => {
  afterEach(killWorkers);
  after(() => services('up', 'postgres'));

  it('the worker waits for the catalog and finishes by itself: 0 lost, 0 duplicated, bounded memory', { timeout: 900_000 }, async (t) => {
    const figures = await rideOutOutage({ name: 'catalog-down', service: 'postgres', downMs: 60_000, target: /^catalog postgresql: / });
    t.diagnostic(describeFigures(figures));
  });
});

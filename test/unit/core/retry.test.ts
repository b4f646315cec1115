/**
 * The retry module: time-bounded (max_elapsed), backoff capped by max_backoff, only retriable
 * errors retried, a drain (the signal) ends a wait at once; and RetryNotices, which turns the
 * retries of every operation on one target into one line per outage, reminders, and a recovery.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccessDeniedError, StorageError } from '../../../src/core/errors.js';
import { formatWait, RetryNotices, retryOptions, withRetry } from '../../../src/core/retry.js';
import { parseConfigValue } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/core/errors.js';
import { pipelineSchema } from '../../../src/pipeline/schema.js';

const down = () => new StorageError('s3 put failed (ECONNREFUSED)', { retriable: true, context: { connector: 's3' } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('withRetry', () => {
  it('retries a retriable error until max_elapsed has passed, then rethrows it as is', async () => {
    const error = down();
    const delays: number[] = [];
    const gaveUp: number[] = [];
    const started = Date.now();
    await assert.rejects(
      withRetry(() => Promise.reject(error), {
        initialBackoffMs: 10,
        maxBackoffMs: 40,
        maxElapsedMs: 400,
        onRetry: (_e, _attempt, delayMs) => delays.push(delayMs),
        onGiveUp: (_e, _attempts, elapsedMs) => gaveUp.push(elapsedMs),
      }),
      (thrown: unknown) => thrown === error,
    );
    const took = Date.now() - started;
    assert.ok(took >= 400 && took < 600, `gave up after ${took} ms`);
    assert.ok(delays.length >= 10, `${delays.length} retries in 400 ms`);
    assert.ok(delays.every((d) => d <= 40), `waits stay under max_backoff: ${delays.join(' ')}`);
    assert.ok(delays.slice(-4, -1).every((d) => d >= 20), `waits grow to between half and all of max_backoff: ${delays.join(' ')}`);
    assert.equal(gaveUp.length, 1);
    assert.ok(gaveUp[0]! >= 400);
  });

  it('reports the recovery with the number of failed attempts', async () => {
    let calls = 0;
    const recovered: number[] = [];
    const value = await withRetry(
      async () => {
        if (++calls <= 3) throw down();
        return 'ok';
      },
      { initialBackoffMs: 5, maxBackoffMs: 10, maxElapsedMs: 5_000, onRecovered: (failures) => recovered.push(failures) },
    );
    assert.equal(value, 'ok');
    assert.deepEqual(recovered, [3]);
  });

  it('fails at once on an error that is not retriable, whatever max_elapsed says', async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw new AccessDeniedError('s3 put: access denied (HTTP 403); check the credentials');
        },
        { maxElapsedMs: 60_000 },
      ),
      AccessDeniedError,
    );
    assert.equal(calls, 1);
  });

  it('max_elapsed 0 makes one attempt', async () => {
    let calls = 0;
    await assert.rejects(withRetry(async () => { calls++; throw down(); }, { maxElapsedMs: 0 }), StorageError);
    assert.equal(calls, 1);
  });

  it('a drain (the signal) ends a wait at once and throws the last error', async () => {
    const controller = new AbortController();
    const error = down();
    let calls = 0;
    const started = Date.now();
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(
      withRetry(() => (calls++, Promise.reject(error)), { initialBackoffMs: 5_000, maxBackoffMs: 5_000, maxElapsedMs: 600_000, signal: controller.signal }),
      (thrown: unknown) => thrown === error,
    );
    assert.ok(Date.now() - started < 1_000, `returned ${Date.now() - started} ms after the start, not after the 5 s wait`);
    assert.equal(calls, 1);
  });
});

describe('RetryNotices', () => {
  it('says once what it waits for across concurrent operations, reminds, and says when it recovered', async () => {
    const lines: string[] = [];
    const notices = new RetryNotices((line) => lines.push(line), 100);
    const policy = { initialBackoffMs: 10, maxBackoffMs: 20, maxElapsedMs: 10_000 };
    const upAt = Date.now() + 350;
    const put = () => withRetry(async () => {
      if (Date.now() < upAt) throw down();
      return 'stored';
    }, retryOptions('s3 tier warm', policy, { notices }));
    assert.deepEqual(await Promise.all([put(), put()]), ['stored', 'stored']);
    const first = lines.filter((l) => /: retrying/.test(l));
    const reminders = lines.filter((l) => /still retrying/.test(l));
    const recovered = lines.filter((l) => /recovered after/.test(l));
    assert.equal(first.length, 1, lines.join('\n'));
    assert.match(first[0]!, /^s3 tier warm: s3 put failed \(ECONNREFUSED\) \[connector=s3\]: retrying \(for up to 10 s\); waited 0 s$/);
    assert.ok(reminders.length >= 2 && reminders.length <= 4, lines.join('\n'));
    assert.match(reminders[0]!, /^s3 tier warm: still retrying for 0 s: s3 put failed/);
    assert.equal(recovered.length, 1, lines.join('\n'));
    assert.match(recovered[0]!, /^s3 tier warm: recovered after 0 s$/);
    assert.deepEqual(notices.current(), []);
  });

  it('names what is failing now, and the give-up with the limit reached', async () => {
    const lines: string[] = [];
    const notices = new RetryNotices((line) => lines.push(line));
    const failing = withRetry(() => Promise.reject(down()), retryOptions('catalog postgresql', { initialBackoffMs: 10, maxBackoffMs: 10, maxElapsedMs: 200 }, { notices }));
    await sleep(50);
    assert.deepEqual(notices.current(), ['catalog postgresql for 0 s']);
    await assert.rejects(failing, StorageError);
    assert.match(lines.at(-1)!, /^catalog postgresql: gave up after 0 s and \d+ attempts \(retry\.max_elapsed 200 ms\): s3 put failed/);
    assert.deepEqual(notices.current(), []);
  });

  it('says why it stopped when a drain cuts the retries short', async () => {
    const lines: string[] = [];
    const notices = new RetryNotices((line) => lines.push(line));
    const controller = new AbortController();
    setTimeout(() => controller.abort('draining after SIGTERM'), 50);
    await assert.rejects(
      withRetry(() => Promise.reject(down()), retryOptions('gcs tier hot', { initialBackoffMs: 10, maxBackoffMs: 20, maxElapsedMs: 600_000 }, { notices, signal: controller.signal })),
      StorageError,
    );
    assert.match(lines.at(-1)!, /^gcs tier hot: stopped retrying after 0 s \(draining after SIGTERM\): s3 put failed/);
    assert.deepEqual(notices.current(), []);
  });

  it('formats waits the way the run log shows them', () => {
    assert.deepEqual([0, 999, 62_000, 90_000, 600_000, 3_723_000].map(formatWait), ['0 s', '0 s', '1m02s', '1m30s', '10m00s', '1h02m']);
  });
});

describe('the retry key of the connectors', () => {
  const base = {
    source: { type: 'file', path: 'in.ndjson' },
    storage: { tier_configs: { hot: { primary_backend: { type: 's3', bucket: 'b', region: 'us-east-1' } } } },
    catalog: { type: 'postgresql', connection_string: 'postgresql://h/db' },
    dead_letter: { type: 'local_file', path: 'dl.ndjson' },
  };

  it('defaults on every backend, catalog and dead letter: 100 ms doubling to 10 s, for 10 minutes', () => {
    const config = parseConfigValue(base, 'p.yaml', pipelineSchema, {});
    const expected = { initial_backoff: 100, max_backoff: 10_000, max_elapsed: 600_000 };
    assert.deepEqual(config.storage.tier_configs.hot!.primary_backend.retry, expected);
    assert.deepEqual(config.catalog.retry, expected);
    assert.deepEqual(config.dead_letter.retry, expected);
  });

  it('takes durations, and rejects unknown keys and a max_backoff below initial_backoff', () => {
    const config = parseConfigValue(
      { ...base, catalog: { ...base.catalog, retry: { initial_backoff: '1s', max_backoff: '1m', max_elapsed: '1 hour' } } },
      'p.yaml',
      pipelineSchema,
      {},
    );
    assert.deepEqual(config.catalog.retry, { initial_backoff: 1_000, max_backoff: 60_000, max_elapsed: 3_600_000 });
    const bad = { ...base.storage.tier_configs.hot.primary_backend, retry: { retries: 5, max_backoff: '10ms', initial_backoff: '1s' } };
    assert.throws(
      () => parseConfigValue({ ...base, storage: { tier_configs: { hot: { primary_backend: bad } } } }, 'p.yaml', pipelineSchema, {}),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        const byPath = new Map(error.issues.map((i) => [i.path, i.message]));
        assert.equal(byPath.get('storage.tier_configs.hot.primary_backend.retry.retries'), 'unknown key');
        return true;
      },
    );
    assert.throws(
      () => parseConfigValue({ ...base, dead_letter: { ...base.dead_letter, retry: { initial_backoff: '1s', max_backoff: '10ms' } } }, 'p.yaml', pipelineSchema, {}),
      (error: unknown) => error instanceof ConfigError && error.issues.some((i) => i.path === 'dead_letter.retry.max_backoff' && /at least initial_backoff/.test(i.message)),
    );
  });
});

/**
 * The backend conformance suite: the same tests against every `Backend`. A connector's test file
 * calls `backendConformance({...})` once with a way to open its backend against the real server
 * that `scripts/services` started (plus, where it can, one pointing at a dead port and one with
 * bad credentials).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Backend } from '../../src/core/backend.js';
import { AccessDeniedError, NotFoundError, StorageError, isRetriable } from '../../src/core/errors.js';
import { withRetry } from '../../src/core/retry.js';

export interface BackendSubject {
  name: string;
  /** A backend against the running server, rooted at `prefix` (unique per run) where it has one. */
  open(prefix: string): Promise<Backend>;
  /** The same backend configured against a port where nothing listens. */
  openUnreachable?(prefix: string): Promise<Backend>;
  /** The same backend with wrong credentials (omit only for backends without credentials). */
  openBadCredentials?(prefix: string): Promise<Backend>;
  /** Strings that must never appear in error messages (passwords, keys). */
  secrets?: string[];
  /** Size of the large-object test; default 64 MiB + 3 bytes (several parts). */
  largeBytes?: number;
}

const MiB = 1024 * 1024;

/** Deterministic pseudo-random bytes, produced in 1 MiB chunks so large bodies stream. */
async function* pattern(size: number, seed: number): AsyncGenerator<Uint8Array> {
  const block = createHash('sha256').update(String(seed)).digest();
  const chunk = new Uint8Array(MiB);
  for (let i = 0; i < MiB; i++) chunk[i] = block[i % 32]! ^ (i >>> 8) & 0xff;
  for (let at = 0; at < size; at += MiB) yield chunk.slice(0, Math.min(MiB, size - at));
}

async function patternBytes(size: number, seed: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let at = 0;
  for await (const part of pattern(size, seed)) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

async function listKeys(backend: Backend, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of backend.list(prefix)) keys.push(entry.key);
  return keys.sort();
}

async function expectNotFound(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof NotFoundError, `expected NotFoundError, got ${String(error)}`);
    assert.equal(isRetriable(error), false);
    return true;
  });
}

export function backendConformance(subject: BackendSubject): void {
  describe(`backend conformance: ${subject.name}`, () => {
    const run = `conformance-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    let backend: Backend;
    const k = (key: string) => `${run}/${key}`;

    before(async () => {
      backend = await subject.open(run);
    });
    after(async () => {
      if (!backend) return;
      for (const key of await listKeys(backend, `${run}/`)) await backend.delete(key);
      await backend.close();
    });

    it('round-trips an empty object', async () => {
      const stat = await backend.put(k('empty.bin'), new Uint8Array(0));
      assert.equal(stat.size, 0);
      assert.equal((await backend.get(k('empty.bin'))).byteLength, 0);
      assert.equal((await backend.stat(k('empty.bin'))).size, 0);
    });

    it('round-trips a small object and stats it', async () => {
      const body = text('{"hello":"earth"}\n');
      await backend.put(k('small.json'), body, { contentType: 'application/json' });
      assert.deepEqual(await backend.get(k('small.json')), body);
      const stat = await backend.stat(k('small.json'));
      assert.equal(stat.key, k('small.json'));
      assert.equal(stat.size, body.byteLength);
      assert.equal(typeof backend.uri(k('small.json')), 'string');
    });

    it('keeps keys with spaces, percent-escapes, = and non-ASCII intact', async () => {
      const key = k('dataset=sea%20ice/year=2026/naïve key (1).parquet');
      await backend.put(key, text('x'));
      assert.equal(decode(await backend.get(key)), 'x');
      assert.deepEqual(await listKeys(backend, k('dataset=sea%20ice/')), [key]);
    });

    it('streams a large object up and reads it back whole and by ranges', { timeout: 600_000 }, async () => {
      const size = subject.largeBytes ?? 64 * MiB + 3;
      const expected = await patternBytes(size, 7);
      const stat = await backend.put(k('large.bin'), pattern(size, 7));
      assert.equal(stat.size, size);
      assert.equal((await backend.stat(k('large.bin'))).size, size);
      const whole = await backend.get(k('large.bin'));
      assert.equal(whole.byteLength, size);
      assert.equal(sha(whole), sha(expected));
      for (const [offset, length] of [
        [0, 10],
        [5 * MiB - 5, 10],
        [size - 7, 7],
      ] as const) {
        assert.deepEqual(await backend.getRange(k('large.bin'), offset, length), expected.subarray(offset, offset + length));
      }
    });

    it('reads ranges, shorter at the end of the object', async () => {
      const body = text('0123456789');
      await backend.put(k('range.txt'), body);
      assert.equal(decode(await backend.getRange(k('range.txt'), 2, 3)), '234');
      assert.equal(decode(await backend.getRange(k('range.txt'), 0, 1)), '0');
      assert.equal(decode(await backend.getRange(k('range.txt'), 7, 100)), '789');
    });

    it('lists by prefix, including prefixes that are not folders', async () => {
      for (const key of ['list/a/1', 'list/a/2', 'list/ab/1', 'list/b/1']) await backend.put(k(key), text(key));
      assert.deepEqual(await listKeys(backend, k('list/a/')), [k('list/a/1'), k('list/a/2')]);
      assert.deepEqual(await listKeys(backend, k('list/a')), [k('list/a/1'), k('list/a/2'), k('list/ab/1')]);
      assert.deepEqual(await listKeys(backend, k('list/')), [k('list/a/1'), k('list/a/2'), k('list/ab/1'), k('list/b/1')]);
      assert.deepEqual(await listKeys(backend, k('list/none/')), []);
      for await (const entry of backend.list(k('list/b/'))) assert.equal(entry.size, k('list/b/1').length - run.length - 1);
    });

    it('overwrites a key with the new bytes', async () => {
      await backend.put(k('over.txt'), text('first version, longer'));
      await backend.put(k('over.txt'), text('second'));
      assert.equal(decode(await backend.get(k('over.txt'))), 'second');
      assert.equal((await backend.stat(k('over.txt'))).size, 6);
    });

    it('deletes, and deleting a missing key is not an error', async () => {
      await backend.put(k('gone.txt'), text('bye'));
      await backend.delete(k('gone.txt'));
      await expectNotFound(backend.get(k('gone.txt')));
      await backend.delete(k('gone.txt'));
      await backend.delete(k('never-existed.txt'));
    });

    it('gives a typed not-found error for a missing key', async () => {
      await expectNotFound(backend.get(k('missing.bin')));
      await expectNotFound(backend.stat(k('missing.bin')));
      await expectNotFound(backend.getRange(k('missing.bin'), 0, 4));
    });

    it('takes concurrent writers: distinct keys all land, one key ends with one whole body', async () => {
      const bodies = Array.from({ length: 8 }, (_, i) => text(`writer ${i} `.repeat(1000 + i)));
      await Promise.all(bodies.map((body, i) => backend.put(k(`conc/distinct-${i}`), body)));
      await Promise.all(bodies.map((body) => backend.put(k('conc/same'), body)));
      for (let i = 0; i < bodies.length; i++) assert.deepEqual(await backend.get(k(`conc/distinct-${i}`)), bodies[i]);
      const final = await backend.get(k('conc/same'));
      assert.ok(bodies.some((b) => sha(b) === sha(final)), 'the shared key holds exactly one writer body');
    });

    if (subject.openUnreachable) {
      it('retries with backoff while the server is down, until max_elapsed, then fails with a clear retriable error', { timeout: 120_000 }, async () => {
        const dead = await subject.openUnreachable!(run);
        const delays: number[] = [];
        let gaveUpAfter: number | undefined;
        const started = Date.now();
        try {
          await assert.rejects(
            withRetry(() => dead.put(k('down.txt'), text('x')), {
              maxElapsedMs: 1_000,
              initialBackoffMs: 50,
              maxBackoffMs: 200,
              onRetry: (_e, _attempt, delayMs) => delays.push(delayMs),
              onGiveUp: (_e, _attempts, elapsedMs) => (gaveUpAfter = elapsedMs),
            }),
            (error: unknown) => {
              assert.ok(error instanceof StorageError, `expected StorageError, got ${String(error)}`);
              assert.equal(error.retriable, true, `should be retriable: ${error.message}`);
              assert.match(error.message, new RegExp(subject.name.split(' ')[0]!));
              for (const secret of subject.secrets ?? []) assert.ok(!error.describe().includes(secret), 'no secret in the error');
              return true;
            },
          );
        } finally {
          await dead.close();
        }
        // Time-bounded: as many attempts as fit in max_elapsed, waits growing up to max_backoff.
        assert.ok(delays.length >= 3, `retried ${delays.length} times in 1 s`);
        assert.ok(delays.every((d) => d <= 200), `waits ${delays.join(', ')} ms stay under max_backoff`);
        assert.ok(gaveUpAfter !== undefined && gaveUpAfter >= 1_000, `gave up after ${gaveUpAfter} ms, not before max_elapsed`);
        assert.ok(Date.now() - started >= delays.reduce((a, b) => a + b, 0));
      });
    }

    if (subject.openBadCredentials) {
      it('fails at once, not retriable, on bad credentials', { timeout: 60_000 }, async () => {
        const denied = await subject.openBadCredentials!(run);
        let attempts = 0;
        try {
          await assert.rejects(
            withRetry(
              () => {
                attempts++;
                return denied.put(k('denied.txt'), text('x'));
              },
              { maxElapsedMs: 10_000, initialBackoffMs: 50 },
            ),
            (error: unknown) => {
              assert.ok(error instanceof AccessDeniedError, `expected AccessDeniedError, got ${String(error)}`);
              assert.equal(error.retriable, false);
              for (const secret of subject.secrets ?? []) assert.ok(!error.describe().includes(secret), 'no secret in the error');
              return true;
            },
          );
        } finally {
          await denied.close();
        }
        assert.equal(attempts, 1);
      });
    }
  });
}

export { listKeys, patternBytes, pattern };

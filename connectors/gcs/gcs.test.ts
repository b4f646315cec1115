/**
 * GCSStorage against fake-gcs-server (`scripts/services up gcs`): the backend conformance suite,
 * storage classes, resumable uploads and the checks done before the first request.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, isRetriable } from '../../src/core/errors.js';
import { backendConformance, listKeys, pattern } from '../../test/conformance/backend-suite.js';
import { gcsBackendSchema, type GCSBackendConfig } from './config.js';
import { GCSStorage } from './storage.js';

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with scripts/test.mjs (EARTHMEM_TEST_SERVICES=gcs), which starts fake-gcs-server and exports it`);
  return value;
}
const endpoint = requireEnv('GCS_ENDPOINT');
const project = requireEnv('GCS_PROJECT');
const bucket = requireEnv('GCS_BUCKET_COLD');
const MiB = 1024 * 1024;

/** A config as the pipeline file would give it (schema defaults applied). */
function config(overrides: Record<string, unknown> = {}): GCSBackendConfig {
  return gcsBackendSchema.parse({ type: 'gcs', bucket, project, endpoint, ...overrides });
}
const open = (overrides: Record<string, unknown> = {}) => new GCSStorage(config(overrides));
const run = `gcs-test-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const text = (s: string) => new TextEncoder().encode(s);

backendConformance({
  name: 'gcs',
  open: async (prefix) => open({ prefix: `${run}/${prefix}/` }),
  openUnreachable: async (prefix) => open({ prefix, endpoint: 'http://127.0.0.1:1' }),
  // No openBadCredentials: fake-gcs-server accepts any credentials (see README); credential files are checked below.
});

describe('gcs specifics', () => {
  const backend = open({ prefix: `${run}/specifics` });
  after(async () => {
    for (const key of await listKeys(backend, '')) await backend.delete(key);
    await backend.close();
  });

  it('keys live under the prefix (a missing trailing / is added); uri and location name the bucket', async () => {
    await backend.put('a/b.txt', text('b'));
    assert.equal(backend.uri('a/b.txt'), `gs://${bucket}/${run}/specifics/a/b.txt`);
    assert.ok(backend.location.startsWith(`gs://${bucket}/${run}/specifics/`), backend.location);
    const root = open();
    assert.deepEqual(await listKeys(root, `${run}/specifics/a/`), [`${run}/specifics/a/b.txt`]);
    assert.deepEqual(await listKeys(backend, 'a/'), ['a/b.txt']);
  });

  it('location never shows user info from the endpoint', () => {
    const url = new URL(endpoint);
    url.username = 'someone';
    url.password = 'hunter2';
    const withUser = open({ endpoint: url.toString() });
    assert.ok(!withUser.location.includes('hunter2') && !withUser.location.includes('someone'), withUser.location);
  });

  it('writes the configured storage_class, and the access tier asked for per put', async () => {
    const coldline = open({ prefix: `${run}/specifics`, storage_class: 'COLDLINE' });
    const written = await coldline.put('class/default.bin', text('cold'));
    assert.equal(written.accessTier, 'COLDLINE');
    assert.equal((await coldline.stat('class/default.bin')).accessTier, 'COLDLINE');
    await coldline.put('class/archive.bin', text('archive'), { accessTier: 'archive' });
    await coldline.put('class/cool.bin', text('cool'), { accessTier: 'cool' });
    const classes = new Map<string, string | undefined>();
    for await (const entry of coldline.list('class/')) classes.set(entry.key, entry.accessTier);
    assert.deepEqual(Object.fromEntries(classes), {
      'class/archive.bin': 'ARCHIVE',
      'class/cool.bin': 'NEARLINE',
      'class/default.bin': 'COLDLINE',
    });
    assert.equal((await backend.put('class/standard.bin', text('s'))).accessTier, 'STANDARD');
  });

  it('uploads a 64 MiB stream resumably in chunk_size requests with bounded memory', { timeout: 600_000 }, async () => {
    const size = 64 * MiB + 5;
    const chunkSize = 8 * MiB;
    const chunked = open({ prefix: `${run}/specifics`, chunk_size: chunkSize });
    const uploads: string[] = [];
    const onRequest = (message: unknown) => {
      const request = (message as { request: ClientRequest }).request;
      if (request.path.includes('/upload/')) uploads.push(`${request.method} ${request.path.split('?')[0]}`);
    };
    const baseline = process.memoryUsage().arrayBuffers;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 20);
    subscribe('http.client.request.start', onRequest);
    try {
      const stat = await chunked.put('resumable.bin', pattern(size, 3));
      assert.equal(stat.size, size);
    } finally {
      unsubscribe('http.client.request.start', onRequest);
      clearInterval(sampler);
    }
    const sessions = uploads.filter((u) => u.startsWith('POST'));
    const chunks = uploads.filter((u) => u.startsWith('PUT'));
    assert.equal(sessions.length, 1, `one resumable session: ${uploads.join(', ')}`);
    assert.equal(chunks.length, Math.ceil(size / chunkSize), `one PUT per ${chunkSize} bytes: ${uploads.join(', ')}`);
    const grownMiB = (peak - baseline) / MiB;
    console.log(`# resumable 64 MiB: ${chunks.length} chunk requests, peak arrayBuffers +${grownMiB.toFixed(1)} MiB`);
    assert.ok(grownMiB < 40, `memory grew by ${grownMiB.toFixed(1)} MiB for a 64 MiB stream`);
    assert.equal((await chunked.stat('resumable.bin')).size, size);
    const tail = await chunked.getRange('resumable.bin', size - 5, 100);
    assert.equal(tail.byteLength, 5);
  });

  it('sends small streams and bodies in one request, larger bodies resumably', async () => {
    const small = open({ prefix: `${run}/specifics`, resumable_threshold: MiB, chunk_size: '256KiB' });
    const uploads: string[] = [];
    const onRequest = (message: unknown) => {
      const request = (message as { request: ClientRequest }).request;
      if (request.path.includes('/upload/')) uploads.push(`${request.method} ${new URL(request.path, endpoint).searchParams.get('uploadType')}`);
    };
    subscribe('http.client.request.start', onRequest);
    try {
      await small.put('one-request.bin', pattern(MiB, 1));
      assert.deepEqual(uploads.splice(0), ['POST multipart']);
      await small.put('one-request-bytes.bin', new Uint8Array(1000));
      assert.deepEqual(uploads.splice(0), ['POST multipart']);
      const stat = await small.put('resumable-bytes.bin', new Uint8Array(MiB + 1).fill(7));
      assert.equal(stat.size, MiB + 1);
      assert.deepEqual(uploads.splice(0), ['POST resumable', ...Array(5).fill('PUT resumable')]);
    } finally {
      unsubscribe('http.client.request.start', onRequest);
    }
    assert.deepEqual(await small.getRange('resumable-bytes.bin', MiB - 1, 10), new Uint8Array(2).fill(7));
  });

  it('reads past the end of an object as empty', async () => {
    await backend.put('short.txt', text('abc'));
    assert.equal((await backend.getRange('short.txt', 3, 10)).byteLength, 0);
    assert.equal((await backend.getRange('short.txt', 1, 0)).byteLength, 0);
  });

  it('refuses retainUntil instead of ignoring it (no immutability)', async () => {
    await assert.rejects(backend.put('locked.txt', text('x'), { retainUntil: new Date(Date.now() + 86_400_000) }), (error: unknown) => {
      assert.match(String(error), /retainUntil is not supported/);
      assert.equal(isRetriable(error), false);
      return true;
    });
  });
});

/**
 * A TCP proxy to fake-gcs-server that can stop forwarding (a hung server or a black-holed
 * network): connections stay open, nothing comes back.
 */
async function freezableProxy(target: URL): Promise<{ endpoint: string; freeze(): void; close(): Promise<void> }> {
  let frozen = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(from);
      from.on('data', (data) => frozen || to.write(data));
      from.on('error', () => to.destroy());
      from.on('close', () => (sockets.delete(from), to.destroy()));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    freeze: () => (frozen = true),
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('gcs against a server that stops answering', () => {
  it('get, stat, a small put and a streamed put fail retriable after request_timeout', { timeout: 60_000 }, async () => {
    const proxy = await freezableProxy(new URL(endpoint));
    try {
      const hung = open({ prefix: `${run}/hung`, endpoint: proxy.endpoint, request_timeout: '400ms', resumable_threshold: '1MiB', chunk_size: '256KiB' });
      await hung.put('before.txt', text('written before the hang'));
      proxy.freeze();
      const streamed = async function* () {
        for (let i = 0; i < 4; i++) yield new Uint8Array(MiB);
      };
      for (const [name, operation] of [
        ['get', () => hung.get('before.txt')],
        ['stat', () => hung.stat('before.txt')],
        ['put', () => hung.put('small.txt', text('x'))],
        ['streamed put', () => hung.put('streamed.bin', streamed())],
      ] as const) {
        const started = Date.now();
        await assert.rejects(operation(), (error: unknown) => {
          assert.ok(isRetriable(error), `${name}: expected a retriable error, got ${String(error)}`);
          assert.match(String(error), /gcs \w+ failed \((timeout|ETIMEDOUT)\)/);
          return true;
        });
        const took = Date.now() - started;
        assert.ok(took >= 350 && took < 5_000, `${name} gave up after ${took} ms`);
      }
      await hung.close();
    } finally {
      await proxy.close();
    }
    const direct = open({ prefix: `${run}/hung` });
    assert.equal(new TextDecoder().decode(await direct.get('before.txt')), 'written before the hang');
    await direct.delete('before.txt');
  });
});

describe('gcs checks before the first request', () => {
  const expectConfigError = (pattern: RegExp) => (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.equal(error.retriable, false);
    assert.match(error.message, pattern);
    return true;
  };

  it('a credentials_file that does not exist fails at once, naming the path', () => {
    const path = join(tmpdir(), `earthmem-no-such-key-${run}.json`);
    assert.throws(() => open({ credentials_file: path }), expectConfigError(new RegExp(`credentials_file ${path} cannot be read \\(ENOENT\\)`)));
  });

  it('a credentials_file that is not valid JSON fails at once, naming the path and not its content', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'earthmem-gcs-'));
    const path = join(dir, 'broken-key.json');
    await writeFile(path, '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----SECRETSECRET');
    assert.throws(() => open({ credentials_file: path }), (error: unknown) => {
      expectConfigError(new RegExp(`credentials_file ${path} is not valid JSON`))(error);
      assert.ok(!(error as ConfigError).describe().includes('SECRETSECRET'), 'no key material in the error');
      return true;
    });
    const notAKey = join(dir, 'not-a-key.json');
    await writeFile(notAKey, '{"hello": "world"}');
    assert.throws(() => open({ credentials_file: notAKey }), expectConfigError(/is not a Google credentials file/));
    const incomplete = join(dir, 'incomplete-key.json');
    await writeFile(incomplete, '{"type": "service_account", "client_email": "x@y.iam.gserviceaccount.com"}');
    assert.throws(() => open({ credentials_file: incomplete }), expectConfigError(/without client_email or private_key/));
  });

  it('a missing bucket is a ConfigError, not a not-found key', async () => {
    const missing = open({ bucket: `earth-memory-missing-${randomBytes(4).toString('hex')}` });
    await assert.rejects(missing.put('x.txt', text('x')), expectConfigError(/bucket earth-memory-missing-\w+ does not exist in project earth-memory-test/));
    await assert.rejects(missing.get('x.txt'), expectConfigError(/does not exist/));
  });

  it('checks the bucket location when one is configured', async () => {
    const right = open({ prefix: `${run}/location`, location: 'us-central1' });
    await right.put('ok.txt', text('ok'));
    await right.delete('ok.txt');
    const wrong = open({ location: 'europe-west4' });
    await assert.rejects(wrong.stat('ok.txt'), expectConfigError(/is in US-CENTRAL1, the configuration says location europe-west4/));
  });

  it('the schema applies defaults and rejects unknown keys and bad chunk sizes', () => {
    const parsed = gcsBackendSchema.parse({ type: 'gcs', bucket: 'b' });
    assert.equal(parsed.prefix, '');
    assert.equal(parsed.storage_class, 'STANDARD');
    assert.equal(parsed.resumable_threshold, 8 * MiB);
    assert.equal(parsed.chunk_size, 16 * MiB);
    assert.equal(parsed.request_timeout, 60_000);
    assert.equal(parsed.format, undefined); // unset: the storage's default_*_format per kind
    assert.equal(gcsBackendSchema.safeParse({ type: 'gcs', bucket: 'b', region: 'x' }).success, false);
    assert.equal(gcsBackendSchema.safeParse({ type: 'gcs', bucket: 'b', chunk_size: '1MB' }).success, false);
    assert.equal(gcsBackendSchema.safeParse({ type: 'gcs', bucket: 'b', storage_class: 'GLACIER' }).success, false);
  });
});

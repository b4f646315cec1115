import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LocalFileStorage } from '../../../connectors/local-file/storage.js';
import { ConfigError, ObjectLockedError } from '../../../src/core/errors.js';
import { DecryptionError, EncryptedBackend, parseEncryptionKey } from '../../../src/storage/encrypted-backend.js';
import { RetentionBackend } from '../../../src/storage/retention-backend.js';
import { backendConformance } from '../../conformance/backend-suite.js';

const local = async () => new LocalFileStorage({ base_path: await mkdtemp(join(tmpdir(), 'earthmem-wrap-')), permissions: 'rw-------' });
const key = randomBytes(32);

backendConformance({ name: 'local_file + encryption', open: async () => new EncryptedBackend(await local(), key) });

async function* chunks(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, at + size);
}

describe('EncryptedBackend (client-side AES-256-GCM)', () => {
  it('stores no plaintext, reads back with the key, refuses a wrong key clearly', async () => {
    const inner = await local();
    const secret = new TextEncoder().encode('station 42 measured 17.5 degC at the secret site');
    await new EncryptedBackend(inner, key).put('a.bin', secret);
    const stored = await readFile(inner.pathOf('a.bin'));
    assert.ok(!stored.includes(Buffer.from('secret site')), 'ciphertext only at rest');
    assert.deepEqual(await new EncryptedBackend(inner, key).get('a.bin'), secret);
    await assert.rejects(new EncryptedBackend(inner, randomBytes(32)).get('a.bin'), (e: unknown) => {
      assert.ok(e instanceof DecryptionError);
      assert.equal(e.retriable, false);
      assert.match(e.message, /wrong encryption key/);
      return true;
    });
  });

  it('detects tampering, truncation and unencrypted objects', async () => {
    const inner = await local();
    const enc = new EncryptedBackend(inner, key, 64);
    await enc.put('t.bin', randomBytes(300));
    const stored = await readFile(inner.pathOf('t.bin'));
    stored[40] ^= 1;
    await writeFile(inner.pathOf('t.bin'), stored);
    await assert.rejects(enc.get('t.bin'), DecryptionError);
    await enc.put('cut.bin', randomBytes(300));
    const whole = await readFile(inner.pathOf('cut.bin'));
    await writeFile(inner.pathOf('cut.bin'), whole.subarray(0, 24 + 2 * (64 + 16)));
    await assert.rejects(enc.get('cut.bin'), DecryptionError);
    await inner.put('plain.bin', new TextEncoder().encode('not encrypted'));
    await assert.rejects(enc.get('plain.bin'), /not an earth-memory encrypted object/);
  });

  it('range reads and streamed puts agree with the plaintext for any sizes (property)', async () => {
    const inner = await local();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 700 }),
        fc.integer({ min: 1, max: 97 }),
        fc.integer({ min: 8, max: 128 }),
        fc.nat(800),
        fc.nat(300),
        async (size, chunk, segment, offset, length) => {
          const plain = randomBytes(size);
          const enc = new EncryptedBackend(inner, key, segment);
          const stat = await enc.put('p.bin', chunks(plain, chunk));
          assert.equal(stat.size, size);
          assert.equal((await enc.stat('p.bin')).size, size);
          assert.deepEqual(Buffer.from(await enc.get('p.bin')), plain);
          assert.deepEqual(Buffer.from(await enc.getRange('p.bin', offset, length)), plain.subarray(offset, offset + length));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('parses keys from base64 or hex and explains a bad one', () => {
    assert.equal(parseEncryptionKey(key.toString('base64'), 'K').length, 32);
    assert.equal(parseEncryptionKey(key.toString('hex'), 'K').length, 32);
    assert.throws(() => parseEncryptionKey(undefined, 'EARTHMEM_ENCRYPTION_KEY'), (e: unknown) => e instanceof ConfigError && /EARTHMEM_ENCRYPTION_KEY.*not set/.test(e.message));
    assert.throws(() => parseEncryptionKey('c2hvcnQ=', 'K'), /32 bytes/);
  });
});

describe('RetentionBackend (backup_policy immutable + retention_period)', () => {
  it('refuses overwrite and delete until the retention ends, then allows them', async () => {
    let now = Date.now();
    const inner = await local();
    const locked = new RetentionBackend(inner, 10 * 365 * 86_400_000, () => now);
    await locked.put('x.parquet', new Uint8Array([1, 2, 3]));
    await assert.rejects(locked.put('x.parquet', new Uint8Array([9])), (e: unknown) => e instanceof ObjectLockedError && /immutable until/.test(e.message));
    await assert.rejects(locked.delete('x.parquet'), ObjectLockedError);
    assert.deepEqual(await locked.get('x.parquet'), new Uint8Array([1, 2, 3]));
    now += 10 * 365 * 86_400_000 + 1000;
    await locked.delete('x.parquet');
    await locked.delete('never-there.parquet');
  });
});

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Backend, Body, ObjectStat, PutOptions } from '../core/backend.js';
import { WrappedBackend } from './wrapped-backend.js';
import { collectBody, partsOf } from '../core/body.js';
import { ConfigError, StorageError } from '../core/errors.js';
import { registerSecret } from '../core/redact.js';

/**
 * Client-side encryption (`encryption_enabled`): AES-256-GCM before the bytes leave the process,
 * so no backend, cache or snapshot ever holds plaintext.
 *
 * Object layout: a 24-byte header — magic `EMENC1\0\0`, segment size (u32 BE), random 8-byte
 * nonce prefix, 4 reserved bytes — then the plaintext in segments of `segmentSize` bytes, each
 * sealed on its own with nonce = prefix ‖ segment index (u32 BE) and a 16-byte tag. The segment
 * index and a last-segment flag are the additional data, so segments cannot be reordered,
 * dropped or the object truncated without the tag check failing. Segments make streamed puts
 * constant-memory and let range reads decrypt only the segments they touch.
 */
const MAGIC = Buffer.from('EMENC1\0\0', 'latin1');
const HEADER = 24;
const TAG = 16;
export const DEFAULT_SEGMENT = 1024 * 1024;

export class DecryptionError extends StorageError {
  override readonly code = 'DECRYPTION_FAILED';
}

/** A 32-byte key from base64 or hex text (what an env variable holds). */
export function parseEncryptionKey(text: string | undefined, variable: string): Buffer {
  if (text === undefined || text.length === 0) {
    throw new ConfigError(`encryption_enabled needs a 256-bit key in the environment variable ${variable} (base64 or hex); it is not set`);
  }
  const trimmed = text.trim();
  registerSecret(trimmed);
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (key.length !== 32) {
    throw new ConfigError(`${variable} must hold a 256-bit key: 32 bytes as base64 (44 characters) or hex (64 characters); got ${key.length} bytes`);
  }
  return key;
}

/** Range reads stay cheap: only the touched segments are fetched and opened (capabilities pass through). */
export class EncryptedBackend extends WrappedBackend {
  constructor(
    inner: Backend,
    private readonly key: Buffer,
    private readonly segmentSize = DEFAULT_SEGMENT,
  ) {
    super(inner);
    if (key.length !== 32) throw new ConfigError('AES-256-GCM needs a 32-byte key');
  }

  override async put(key: string, body: Body, options?: PutOptions): Promise<ObjectStat> {
    const prefix = randomBytes(8);
    const header = Buffer.alloc(HEADER);
    MAGIC.copy(header, 0);
    header.writeUInt32BE(this.segmentSize, 8);
    prefix.copy(header, 12);
    const sealed = async function* (this: EncryptedBackend): AsyncGenerator<Uint8Array> {
      yield header;
      let index = 0;
      let previous: Uint8Array | undefined;
      for await (const segment of partsOf(body, this.segmentSize)) {
        if (previous !== undefined) yield this.seal(prefix, index++, previous, false);
        previous = segment;
      }
      yield this.seal(prefix, index, previous ?? new Uint8Array(0), true);
    }.call(this);
    const stat = await this.inner.put(key, body instanceof Uint8Array ? await collectBody(sealed) : sealed, options);
    return { ...stat, size: plaintextSize(stat.size, this.segmentSize) };
  }

  override async get(key: string): Promise<Uint8Array> {
    const whole = await this.inner.get(key);
    const { segmentSize, prefix } = this.header(key, whole);
    const count = segmentCount(whole.byteLength, segmentSize);
    const out = new Uint8Array(plaintextSize(whole.byteLength, segmentSize));
    for (let i = 0; i < count; i++) {
      const start = HEADER + i * (segmentSize + TAG);
      const end = Math.min(start + segmentSize + TAG, whole.byteLength);
      out.set(this.open(key, prefix, i, i === count - 1, whole.subarray(start, end)), i * segmentSize);
    }
    return out;
  }

  override async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    const stat = await this.inner.stat(key);
    const head = await this.inner.getRange(key, 0, HEADER);
    const { segmentSize, prefix } = this.header(key, head);
    const size = plaintextSize(stat.size, segmentSize);
    const end = Math.min(offset + length, size);
    if (offset >= end) return new Uint8Array(0);
    const count = segmentCount(stat.size, segmentSize);
    const first = Math.floor(offset / segmentSize);
    const last = Math.floor((end - 1) / segmentSize);
    const cipherStart = HEADER + first * (segmentSize + TAG);
    const cipherEnd = Math.min(HEADER + (last + 1) * (segmentSize + TAG), stat.size);
    const sealed = await this.inner.getRange(key, cipherStart, cipherEnd - cipherStart);
    const plain = new Uint8Array((last - first + 1) * segmentSize);
    let at = 0;
    for (let i = first; i <= last; i++) {
      const s = (i - first) * (segmentSize + TAG);
      const opened = this.open(key, prefix, i, i === count - 1, sealed.subarray(s, Math.min(s + segmentSize + TAG, sealed.byteLength)));
      plain.set(opened, at);
      at += opened.byteLength;
    }
    const from = offset - first * segmentSize;
    return plain.slice(from, from + (end - offset));
  }

  override async stat(key: string): Promise<ObjectStat> {
    const stat = await this.inner.stat(key);
    const head = await this.inner.getRange(key, 0, HEADER);
    return { ...stat, size: plaintextSize(stat.size, this.header(key, head).segmentSize) };
  }

  override async *list(prefix: string): AsyncIterable<ObjectStat> {
    for await (const entry of this.inner.list(prefix)) {
      // Sizes in a listing are the stored (sealed) sizes when the segment size is the default.
      yield { ...entry, size: plaintextSize(entry.size, this.segmentSize) };
    }
  }

  private seal(prefix: Buffer, index: number, plain: Uint8Array, last: boolean): Uint8Array {
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce(prefix, index));
    cipher.setAAD(aad(index, last));
    const body = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  }

  private open(key: string, prefix: Buffer, index: number, last: boolean, sealed: Uint8Array): Uint8Array {
    if (sealed.byteLength < TAG) throw this.corrupt(key, 'segment shorter than its tag');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, nonce(prefix, index));
      decipher.setAAD(aad(index, last));
      decipher.setAuthTag(sealed.subarray(sealed.byteLength - TAG));
      const out = Buffer.concat([decipher.update(sealed.subarray(0, sealed.byteLength - TAG)), decipher.final()]);
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    } catch (cause) {
      throw new DecryptionError(`cannot decrypt ${key}: wrong encryption key, or the object was changed outside earth-memory`, {
        cause,
        context: { connector: this.type, key, operation: 'decrypt' },
      });
    }
  }

  private header(key: string, bytes: Uint8Array): { segmentSize: number; prefix: Buffer } {
    const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, HEADER));
    if (head.length < HEADER || !head.subarray(0, 8).equals(MAGIC)) throw this.corrupt(key, 'not an earth-memory encrypted object');
    return { segmentSize: head.readUInt32BE(8), prefix: Buffer.from(head.subarray(12, 20)) };
  }

  private corrupt(key: string, why: string): DecryptionError {
    return new DecryptionError(`cannot decrypt ${key}: ${why} (was it written with encryption_enabled?)`, {
      context: { connector: this.type, key, operation: 'decrypt' },
    });
  }
}

function nonce(prefix: Buffer, index: number): Buffer {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0);
  n.writeUInt32BE(index, 8);
  return n;
}

function aad(index: number, last: boolean): Buffer {
  const a = Buffer.alloc(5);
  a.writeUInt32BE(index, 0);
  a[4] = last ? 1 : 0;
  return a;
}

function segmentCount(sealedSize: number, segmentSize: number): number {
  return Math.max(1, Math.ceil((sealedSize - HEADER) / (segmentSize + TAG)));
}

/** Plaintext bytes of a sealed object of `sealedSize` bytes. */
export function plaintextSize(sealedSize: number, segmentSize: number): number {
  if (sealedSize < HEADER + TAG) return 0;
  return sealedSize - HEADER - segmentCount(sealedSize, segmentSize) * TAG;
}

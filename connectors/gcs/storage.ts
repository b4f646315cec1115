import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Storage, type Bucket, type FileMetadata } from '@google-cloud/storage';
import { declareCapabilities, type AccessTier, type Backend, type Body, type ObjectStat, type PutOptions } from '../../src/core/backend.js';
import { ConfigError, StorageError, type ErrorContext } from '../../src/core/errors.js';
import { httpStatusOf, storageFailure, type StorageFailureOptions } from '../../src/core/storage-errors.js';
import type { GCSBackendConfig } from './config.js';

const connector = 'gcs';

/** Our access tiers in GCS storage classes. */
const storageClassOfTier: Record<AccessTier, string> = {
  hot: 'STANDARD',
  cool: 'NEARLINE',
  cold: 'COLDLINE',
  archive: 'ARCHIVE',
};

/** The options GCSStorage uses; defaults come from `gcsBackendSchema`. */
export type GCSStorageOptions = Pick<
  GCSBackendConfig,
  'bucket' | 'prefix' | 'storage_class' | 'resumable_threshold' | 'chunk_size' | 'request_timeout'
> &
  Partial<Pick<GCSBackendConfig, 'project' | 'credentials_file' | 'endpoint' | 'location' | 'uniform_access_control'>>;

/**
 * GCSStorage: objects in a Google Cloud Storage bucket under `prefix`. Small bodies go up in one
 * request; larger ones and streams in a resumable upload of `chunk_size` requests, so memory
 * stays bounded by `resumable_threshold` + `chunk_size` per upload. The SDK's own retries are
 * off: callers retry with src/core/retry.ts on the retriable errors this class throws.
 */
export class GCSStorage implements Backend {
  readonly type = 'gcs';
  // versioning, not implemented: GCS keeps generations only on versioned buckets and we never read them back.
  // immutability, not implemented: object retention needs a bucket with retention enabled; fake-gcs-server stores it but does not enforce it.
  readonly capabilities = declareCapabilities({ rangeReads: true, accessTiers: true, multipart: true });
  readonly location: string;
  private readonly bucketName: string;
  private readonly prefix: string;
  private readonly bucket: Bucket;
  private readonly options: GCSStorageOptions;
  private bucketChecked: Promise<void> | undefined;

  constructor(options: GCSStorageOptions) {
    this.options = options;
    this.bucketName = options.bucket;
    this.prefix = options.prefix === '' || options.prefix.endsWith('/') ? options.prefix : `${options.prefix}/`;
    const credentials = options.credentials_file === undefined ? undefined : loadCredentials(options.credentials_file);
    const endpoint = options.endpoint?.replace(/\/+$/, '');
    const storage = new Storage({
      ...(endpoint === undefined ? {} : { apiEndpoint: endpoint }),
      // A custom endpoint (emulator) gets no credentials unless a key file is given for it.
      useAuthWithCustomEndpoint: credentials !== undefined,
      ...(credentials === undefined ? {} : { credentials }),
      projectId: options.project ?? (credentials?.project_id as string | undefined),
      // One retry policy: ours (src/core/retry.ts), driven by the errors' `retriable` flag.
      retryOptions: { autoRetry: false, maxRetries: 0 },
      timeout: options.request_timeout,
    });
    this.bucket = storage.bucket(this.bucketName);
    this.location = `gs://${this.bucketName}/${this.prefix}${endpoint === undefined ? '' : ` at ${publicEndpoint(endpoint)}`}`;
  }

  uri(key: string): string {
    return `gs://${this.bucketName}/${this.prefix}${key}`;
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<ObjectStat> {
    if (options.retainUntil !== undefined) {
      throw new StorageError('gcs put: retainUntil is not supported by this backend (capabilities.immutability is false)', {
        context: { connector, operation: 'put', key },
      });
    }
    await this.checkBucket();
    const storageClass = options.accessTier === undefined ? this.options.storage_class : storageClassOfTier[options.accessTier];
    const contentType = options.contentType ?? 'application/octet-stream';
    const file = this.bucket.file(this.prefix + key);
    try {
      const { head, rest } = await peek(body, this.options.resumable_threshold);
      const resumable = rest !== undefined;
      const upload = file.createWriteStream({
        resumable,
        ...(resumable ? { chunkSize: this.options.chunk_size } : {}),
        contentType,
        metadata: { contentType, storageClass },
        timeout: this.options.request_timeout,
      });
      // Resumable uploads take no request timeout: time every wait on the upload ourselves.
      const stall = stallTimer(this.options.request_timeout, () =>
        upload.destroy(Object.assign(new Error(`gcs upload made no progress for ${this.options.request_timeout} ms`), { code: 'ETIMEDOUT' })),
      );
      upload.on('progress', stall.touch);
      let size = 0;
      const feed = async function* (): AsyncGenerator<Uint8Array> {
        for await (const chunk of concatIterables(head, rest)) {
          size += chunk.byteLength;
          // Suspended here means the upload is not taking bytes: that wait is timed; reading our source is not.
          stall.start();
          yield chunk;
          stall.stop();
        }
        stall.start(); // until the server confirms the object
      };
      try {
        await pipeline(Readable.from(feed(), { objectMode: false, highWaterMark: 1 }), upload);
      } finally {
        stall.stop();
      }
      return statOf(key, file.metadata, size);
    } catch (cause) {
      // A 404 here means the bucket vanished, not that `key` is missing: keep it a plain failure.
      throw failure(cause, { connector, operation: 'put', key, notFound: false });
    }
  }

  async get(key: string): Promise<Uint8Array> {
    await this.checkBucket();
    try {
      const [contents] = await this.bucket.file(this.prefix + key).download();
      return plainBytes(contents);
    } catch (cause) {
      throw failure(cause, { connector, operation: 'get', key });
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    await this.checkBucket();
    const file = this.bucket.file(this.prefix + key);
    try {
      if (length <= 0) {
        await file.getMetadata(); // still a typed not-found for a missing key
        return new Uint8Array(0);
      }
      const [contents] = await file.download({ start: offset, end: offset + length - 1 });
      return plainBytes(contents);
    } catch (cause) {
      // 416: the range starts at or past the end of the object (the key exists: a missing one is 404).
      if (httpStatusOf(cause) === 416) return new Uint8Array(0);
      throw failure(cause, { connector, operation: 'getRange', key });
    }
  }

  async stat(key: string): Promise<ObjectStat> {
    await this.checkBucket();
    try {
      const [metadata] = await this.bucket.file(this.prefix + key).getMetadata();
      return statOf(key, metadata);
    } catch (cause) {
      throw failure(cause, { connector, operation: 'stat', key });
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectStat> {
    await this.checkBucket();
    let pageToken: string | undefined;
    do {
      let page;
      try {
        page = await this.bucket.getFiles({ prefix: this.prefix + prefix, autoPaginate: false, maxResults: 1000, pageToken });
      } catch (cause) {
        throw failure(cause, { connector, operation: 'list', key: prefix, notFound: false });
      }
      const [files, next] = page;
      for (const file of files) yield statOf(file.name.slice(this.prefix.length), file.metadata);
      pageToken = (next as { pageToken?: string } | null | undefined)?.pageToken;
    } while (pageToken);
  }

  async delete(key: string): Promise<void> {
    await this.checkBucket();
    try {
      await this.bucket.file(this.prefix + key).delete({ ignoreNotFound: true });
    } catch (cause) {
      throw failure(cause, { connector, operation: 'delete', key });
    }
  }

  /** The SDK holds no connections of its own to release (requests share Node's global agent). */
  async close(): Promise<void> {}

  /**
   * Once per instance, before the first operation: the bucket exists (otherwise every object
   * operation would report a misleading 404 for its key) and matches `location` and
   * `uniform_access_control` where those are set. A retriable failure is not remembered.
   */
  private checkBucket(): Promise<void> {
    this.bucketChecked ??= this.readBucket().catch((error: unknown) => {
      if (error instanceof StorageError && error.retriable) this.bucketChecked = undefined;
      throw error;
    });
    return this.bucketChecked;
  }

  private async readBucket(): Promise<void> {
    const { location, uniform_access_control: uniform } = this.options;
    const context: ErrorContext = { connector, operation: 'bucket check', bucket: this.bucketName };
    let metadata;
    try {
      [metadata] = await this.bucket.getMetadata();
    } catch (cause) {
      const status = httpStatusOf(cause);
      if (status === 404) {
        throw new ConfigError(`gcs: bucket ${this.bucketName} does not exist${this.options.project ? ` in project ${this.options.project}` : ''}`, [], {
          cause,
          context,
        });
      }
      // Object-level roles (roles/storage.objectAdmin) cannot read bucket metadata; with nothing to compare, go on.
      if (status === 403 && location === undefined && uniform === undefined) return;
      throw failure(cause, { connector, operation: 'bucket check', context });
    }
    if (location !== undefined && metadata.location?.toLowerCase() !== location.toLowerCase()) {
      throw new ConfigError(`gcs: bucket ${this.bucketName} is in ${metadata.location ?? 'an unreported location'}, the configuration says location ${location}`, [], {
        context,
      });
    }
    const reportedUniform = metadata.iamConfiguration?.uniformBucketLevelAccess?.enabled;
    if (uniform !== undefined && reportedUniform !== undefined && reportedUniform !== uniform) {
      throw new ConfigError(
        `gcs: bucket ${this.bucketName} has uniform bucket-level access ${reportedUniform ? 'on' : 'off'}, the configuration says uniform_access_control: ${uniform}`,
        [],
        { context },
      );
    }
  }
}

/**
 * Reads and checks a service-account (or other Google credentials) JSON file at once, so a wrong
 * path fails when the backend is built, not on the first upload. Errors name the path, never
 * the content (JSON.parse messages quote it, and it holds a private key).
 */
function loadCredentials(path: string): Record<string, unknown> {
  const context: ErrorContext = { connector, operation: 'open', path };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`gcs: credentials_file ${path} cannot be read (${code})`, [], { cause, context });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(`gcs: credentials_file ${path} is not valid JSON (expected a service-account key file)`, [], { context });
  }
  const credentials = parsed as Record<string, unknown> | null;
  if (credentials === null || typeof credentials !== 'object' || typeof credentials.type !== 'string') {
    throw new ConfigError(`gcs: credentials_file ${path} is not a Google credentials file (no "type" field)`, [], { context });
  }
  if (credentials.type === 'service_account' && (typeof credentials.client_email !== 'string' || typeof credentials.private_key !== 'string')) {
    throw new ConfigError(`gcs: credentials_file ${path} is a service-account key without client_email or private_key`, [], { context });
  }
  return credentials;
}

/**
 * Reads a body until more than `threshold` bytes have arrived or it ends. A body that fits comes
 * back whole in `head` (one request); otherwise `rest` continues the stream (resumable upload).
 */
async function peek(body: Body, threshold: number): Promise<{ head: Uint8Array[]; rest?: AsyncIterable<Uint8Array> }> {
  if (body instanceof Uint8Array) {
    return body.byteLength > threshold ? { head: [body], rest: emptyIterator() } : { head: [body] };
  }
  const iterator = body[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let size = 0;
  while (size <= threshold) {
    const next = await iterator.next();
    if (next.done) return { head };
    head.push(next.value);
    size += next.value.byteLength;
  }
  return { head, rest: { [Symbol.asyncIterator]: () => iterator } };
}

async function* emptyIterator(): AsyncGenerator<Uint8Array> {}

async function* concatIterables(head: Uint8Array[], rest: AsyncIterable<Uint8Array> | undefined): AsyncGenerator<Uint8Array> {
  yield* head;
  if (rest) yield* rest;
}

/** Calls `onStall` when `ms` pass between `start` and `stop`; `touch` (progress) restarts a running timer. */
function stallTimer(ms: number, onStall: () => void): { start(): void; stop(): void; touch(): void } {
  let timer: NodeJS.Timeout | undefined;
  const start = () => {
    clearTimeout(timer);
    timer = setTimeout(onStall, ms);
  };
  return {
    start,
    stop: () => {
      clearTimeout(timer);
      timer = undefined;
    },
    touch: () => {
      if (timer !== undefined) start();
    },
  };
}

/**
 * storageFailure, plus the SDK's request timeouts: node-fetch reports them as a FetchError of type
 * `request-timeout` / `body-timeout` without an errno code, and a retry may well succeed.
 */
function failure(cause: unknown, options: StorageFailureOptions): StorageError {
  const type = (cause as { type?: unknown } | null)?.type;
  if (type === 'request-timeout' || type === 'body-timeout') {
    const { operation, key } = options;
    return new StorageError(`gcs ${operation} failed (timeout)`, {
      cause,
      retriable: true,
      context: { ...options.context, connector, operation, ...(key === undefined ? {} : { key }) },
    });
  }
  return storageFailure(cause, options);
}

function statOf(key: string, metadata: FileMetadata, fallbackSize?: number): ObjectStat {
  const size = metadata.size === undefined ? fallbackSize : Number(metadata.size);
  return {
    key,
    size: size ?? 0,
    ...(metadata.updated ? { modified: new Date(metadata.updated) } : {}),
    ...(metadata.storageClass ? { accessTier: metadata.storageClass } : {}),
  };
}

/** A plain Uint8Array view of a Buffer (callers compare bytes, and Buffer is a different class). */
function plainBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** The endpoint without user info or query, for `location`. */
function publicEndpoint(endpoint: string): string {
  const url = new URL(endpoint);
  return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
}

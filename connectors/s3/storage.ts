import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type MultipartUpload,
  type ObjectLockMode,
  type ServerSideEncryption,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { declareCapabilities, type AccessTier, type Backend, type BackendCapabilities, type Body, type ObjectStat, type PutOptions } from '../../src/core/backend.js';
import { partsOf } from '../../src/core/body.js';
import { AccessDeniedError, ArchivedObjectError, ObjectLockedError, StorageError } from '../../src/core/errors.js';
import { redactUrl } from '../../src/core/redact.js';
import { httpStatusOf, storageFailure } from '../../src/core/storage-errors.js';
import type { S3BackendConfig } from './config.js';

const connector = 's3';

/** S3 allows at most this many parts in one multipart upload. */
const maxParts = 10_000;

/** Our access tiers as S3 storage classes: cool and cold stay online (30 / 90 days minimum), archive needs a restore. */
export const storageClassOfTier: Record<AccessTier, StorageClass> = {
  hot: 'STANDARD',
  cool: 'STANDARD_IA',
  cold: 'GLACIER_IR',
  archive: 'GLACIER',
};

const notFoundCodes = new Set(['NoSuchKey', 'NoSuchVersion', 'NotFound']);
const accessDeniedCodes = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AllAccessDisabled',
  'AccountProblem',
  // versitygw without --iam-dir answers an unknown access key with this (HTTP 404)
  'XAdminUserNotFound',
]);
/** S3 error codes that say "try again" even where the HTTP status alone does not (RequestTimeout is a 400). */
const retriableCodes = new Set(['RequestTimeout', 'RequestTimeTooSkewed', 'SlowDown', 'InternalError', 'ServiceUnavailable', 'TimeoutError']);

/** The S3 error code of an SDK error (`NoSuchKey`, `AccessDenied` …). */
function errorCodeOf(error: unknown): string {
  const e = error as { name?: unknown; Code?: unknown } | null;
  if (typeof e?.Code === 'string') return e.Code;
  return typeof e?.name === 'string' ? e.name : '';
}

/**
 * One translation of S3 SDK errors into our typed errors, on top of `storageFailure`: a missing
 * key is NotFoundError, refused credentials AccessDeniedError, a refusal because of object lock
 * ObjectLockedError, a read of an archived object ArchivedObjectError, a missing bucket a fatal
 * StorageError (not "object not found": the configuration is wrong).
 */
export function s3Failure(cause: unknown, operation: string, key?: string, bucket?: string): StorageError {
  if (cause instanceof StorageError) return cause;
  const code = errorCodeOf(cause);
  const context = { connector, operation, ...(key === undefined ? {} : { key }), ...(bucket === undefined ? {} : { bucket }) };
  const message = (cause as Error | null)?.message ?? '';
  if (code === 'AccessDenied' && /object lock/i.test(message)) {
    return new ObjectLockedError(`s3 ${operation}: the object version is under object lock retention`, { cause, context });
  }
  if (code === 'InvalidObjectState') {
    return new ArchivedObjectError(`s3 ${operation}: the object is in an archive storage class; restore it before reading`, { cause, context });
  }
  if (code === 'NoSuchBucket') {
    return new StorageError(`s3 ${operation} failed: bucket ${bucket ?? ''} does not exist`, { cause, retriable: false, context });
  }
  if (retriableCodes.has(code)) {
    return new StorageError(`s3 ${operation} failed (${code})`, { cause, retriable: true, context });
  }
  return storageFailure(cause, {
    connector,
    operation,
    key,
    context: bucket === undefined ? {} : { bucket },
    // other 404 codes (NoSuchUpload …) are not "this key is missing"
    notFound: notFoundCodes.has(code),
    accessDenied: accessDeniedCodes.has(code) || undefined,
  });
}

/** Parameters shared by PutObject and CreateMultipartUpload. */
interface WriteParams {
  Bucket: string;
  Key: string;
  ContentType?: string;
  StorageClass?: StorageClass;
  ServerSideEncryption?: ServerSideEncryption;
  SSEKMSKeyId?: string;
  ObjectLockMode?: ObjectLockMode;
  ObjectLockRetainUntilDate?: Date;
}

/** What the bucket offers, probed by `S3Storage.open`. */
interface BucketFeatures {
  versioning: boolean;
  objectLock: boolean;
}

/**
 * S3Storage: objects in an S3 bucket (AWS or S3-compatible), under `prefix`. Bodies larger than
 * one part go up as a multipart upload, `max_concurrent_parts` parts at a time, so memory stays
 * near part_size × (max_concurrent_parts + 1) whatever the object size.
 *
 * On a versioned bucket `put` adds a version and `delete` adds a delete marker: earlier versions,
 * and versions under object lock (`retainUntil`), stay in the bucket. There is deliberately no
 * way to delete a version through this class.
 */
export class S3Storage implements Backend {
  readonly type = 's3';
  readonly capabilities: BackendCapabilities;
  readonly location: string;
  /** The SDK client (for tests and tools; it uses `maxAttempts: 1`: retries are the engine's). */
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  private readonly config: S3BackendConfig;

  /** Probes the bucket (it must exist and the credentials must reach it) and what it offers. */
  static async open(config: S3BackendConfig): Promise<S3Storage> {
    const storage = new S3Storage(config);
    try {
      await storage.client.send(new HeadBucketCommand({ Bucket: config.bucket }));
      const features = await storage.probeFeatures();
      storage.capabilities.versioning = features.versioning;
      storage.capabilities.immutability = features.objectLock;
      return storage;
    } catch (cause) {
      await storage.close();
      if (httpStatusOf(cause) === 404) {
        throw new StorageError(`s3 open failed: bucket ${config.bucket} does not exist`, {
          cause,
          context: { connector, operation: 'open', bucket: config.bucket },
        });
      }
      throw s3Failure(cause, 'open', undefined, config.bucket);
    }
  }

  /** Does not probe the bucket: versioning and immutability are reported as absent (see `open`). */
  constructor(config: S3BackendConfig) {
    this.config = config;
    this.bucket = config.bucket;
    this.prefix = config.prefix;
    this.capabilities = declareCapabilities({ rangeReads: true, accessTiers: true, serverSideEncryption: true, multipart: true });
    this.location = `s3://${config.bucket}/${config.prefix}${config.endpoint ? ` at ${endpointForPeople(config.endpoint)}` : ''}`;
    const credentials = config.credentials && {
      accessKeyId: config.credentials.aws_access_key_id,
      secretAccessKey: config.credentials.aws_secret_access_key,
      ...(config.credentials.aws_session_token ? { sessionToken: config.credentials.aws_session_token } : {}),
    };
    this.client = new S3Client({
      region: config.region,
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      forcePathStyle: config.force_path_style ?? config.endpoint !== undefined,
      ...(credentials ? { credentials } : {}),
      // one retry policy: src/core/retry.ts around our calls, not a second one inside the SDK
      maxAttempts: 1,
      requestHandler: { connectionTimeout: config.connect_timeout, requestTimeout: config.request_timeout },
    });
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${this.objectKey(key)}`;
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<ObjectStat> {
    const objectKey = this.objectKey(key);
    const params = this.writeParams(objectKey, options);
    const parts = partsOf(body, this.config.part_size)[Symbol.asyncIterator]();
    try {
      const first = await parts.next();
      const second = first.done ? first : await parts.next();
      if (second.done) {
        const bytes = first.done ? new Uint8Array(0) : first.value;
        await this.client.send(new PutObjectCommand({ ...params, Body: bytes, ContentLength: bytes.byteLength }));
        return { key, size: bytes.byteLength, ...(params.StorageClass ? { accessTier: params.StorageClass } : {}) };
      }
      const size = await this.putMultipart(params, prepend([first.value, second.value], parts));
      return { key, size, ...(params.StorageClass ? { accessTier: params.StorageClass } : {}) };
    } catch (cause) {
      await parts.return?.(undefined);
      throw s3Failure(cause, 'put', key, this.bucket);
    }
  }

  /** CreateMultipartUpload, parts with bounded concurrency, Complete; Abort on any failure. */
  private async putMultipart(params: WriteParams, parts: AsyncIterable<Uint8Array>): Promise<number> {
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand({ ...params, ChecksumAlgorithm: 'CRC32' }));
    const target = { Bucket: params.Bucket, Key: params.Key, UploadId };
    const completed: CompletedPart[] = [];
    const inFlight = new Set<Promise<void>>();
    let size = 0;
    let partNumber = 0;
    try {
      for await (const part of parts) {
        if (++partNumber > maxParts) {
          throw new StorageError(`s3 put: more than ${maxParts} parts; raise part_size`, { context: { connector, operation: 'put', key: params.Key } });
        }
        const number = partNumber;
        size += part.byteLength;
        const upload: Promise<void> = this.client
          .send(new UploadPartCommand({ ...target, PartNumber: number, Body: part, ContentLength: part.byteLength, ChecksumAlgorithm: 'CRC32' }))
          .then((response) => {
            completed[number - 1] = { PartNumber: number, ETag: response.ETag, ChecksumCRC32: response.ChecksumCRC32 };
          })
          .finally(() => inFlight.delete(upload));
        // handled here so a part failing while we wait for the next body chunk is no unhandled rejection;
        // race/all below still see the failure
        upload.catch(() => undefined);
        inFlight.add(upload);
        if (inFlight.size >= this.config.max_concurrent_parts) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      await this.client.send(new CompleteMultipartUploadCommand({ ...target, MultipartUpload: { Parts: completed } }));
      return size;
    } catch (cause) {
      // let running parts settle first, or an abort could race a part that lands after it
      await Promise.allSettled(inFlight);
      await this.client.send(new AbortMultipartUploadCommand(target)).catch(() => undefined);
      throw cause;
    }
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return await response.Body!.transformToByteArray();
    } catch (cause) {
      throw s3Failure(cause, 'get', key, this.bucket);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    if (length <= 0) {
      await this.stat(key);
      return new Uint8Array(0);
    }
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Range: `bytes=${offset}-${offset + length - 1}` }),
      );
      return await response.Body!.transformToByteArray();
    } catch (cause) {
      // a range that starts at or past the end: the object exists, the answer is empty
      if (errorCodeOf(cause) === 'InvalidRange' || httpStatusOf(cause) === 416) return new Uint8Array(0);
      throw s3Failure(cause, 'getRange', key, this.bucket);
    }
  }

  async stat(key: string): Promise<ObjectStat> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return {
        key,
        size: head.ContentLength ?? 0,
        ...(head.LastModified ? { modified: head.LastModified } : {}),
        accessTier: head.StorageClass ?? 'STANDARD',
      };
    } catch (cause) {
      throw s3Failure(cause, 'stat', key, this.bucket);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectStat> {
    let ContinuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.objectKey(prefix), ...(ContinuationToken ? { ContinuationToken } : {}) }),
        );
      } catch (cause) {
        throw s3Failure(cause, 'list', prefix, this.bucket);
      }
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        yield {
          key: object.Key.slice(this.prefix.length),
          size: object.Size ?? 0,
          ...(object.LastModified ? { modified: object.LastModified } : {}),
          accessTier: object.StorageClass ?? 'STANDARD',
        };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  /**
   * The multipart uploads under `prefix` that were started and never completed or aborted (a
   * crash or kill -9 in the middle of a put): invisible to `list` and `get`, but their parts are
   * stored (and billed) until AbortMultipartUpload. `size` is the sum of the uploaded parts
   * (ListParts), `modified` the upload's Initiated time, `remove()` aborts it. An upload that
   * completes or is aborted while this runs is left out (NoSuchUpload).
   */
  async *incompleteWrites(): AsyncIterable<ObjectStat & { remove(): Promise<void> }> {
    let keyMarker: string | undefined;
    for (;;) {
      const page = await this.listUploads(this.prefix, keyMarker);
      const uploads = [...(page.Uploads ?? [])];
      const last = page.IsTruncated ? (page.NextKeyMarker || uploads.at(-1)?.Key) : undefined;
      if (last !== undefined) {
        // A page may end inside the uploads of one key. S3 continues with KeyMarker and
        // UploadIdMarker, but versitygw (v1.7.0) refuses every UploadIdMarker it hands out
        // (InvalidArgument: it looks for it among the keys after KeyMarker), and KeyMarker alone
        // skips the rest of that key's uploads. So the rest of that key's uploads are listed on
        // their own (Prefix = the key), and the listing goes on after the key.
        const seen = new Set(uploads.filter((u) => u.Key === last).map((u) => u.UploadId));
        const same = await this.listUploads(last, undefined);
        uploads.push(...(same.Uploads ?? []).filter((u) => u.Key === last && !seen.has(u.UploadId)));
      }
      for (const upload of uploads) {
        const write = await this.incompleteWrite(upload);
        if (write !== undefined) yield write;
      }
      if (last === undefined) return;
      keyMarker = last;
    }
  }

  private async listUploads(prefix: string, keyMarker: string | undefined) {
    try {
      return await this.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.bucket, ...(prefix ? { Prefix: prefix } : {}), ...(keyMarker ? { KeyMarker: keyMarker } : {}) }),
      );
    } catch (cause) {
      throw s3Failure(cause, 'incompleteWrites', prefix.slice(this.prefix.length), this.bucket);
    }
  }

  /** One unfinished upload, with the bytes of its parts; undefined if it is gone meanwhile. */
  private async incompleteWrite(upload: MultipartUpload): Promise<(ObjectStat & { remove(): Promise<void> }) | undefined> {
    if (upload.Key === undefined || upload.UploadId === undefined) return undefined;
    const target = { Bucket: this.bucket, Key: upload.Key, UploadId: upload.UploadId };
    const key = upload.Key.slice(this.prefix.length);
    let size = 0;
    let marker: string | undefined;
    try {
      do {
        const parts = await this.client.send(new ListPartsCommand({ ...target, ...(marker ? { PartNumberMarker: marker } : {}) }));
        for (const part of parts.Parts ?? []) size += part.Size ?? 0;
        marker = parts.IsTruncated ? parts.NextPartNumberMarker : undefined;
      } while (marker);
    } catch (cause) {
      if (errorCodeOf(cause) === 'NoSuchUpload') return undefined;
      throw s3Failure(cause, 'incompleteWrites', key, this.bucket);
    }
    return {
      key,
      size,
      ...(upload.Initiated ? { modified: upload.Initiated } : {}),
      remove: async () => {
        try {
          await this.client.send(new AbortMultipartUploadCommand(target));
        } catch (cause) {
          // already completed or aborted: nothing is left to remove
          if (errorCodeOf(cause) === 'NoSuchUpload') return;
          throw s3Failure(cause, 'abortMultipartUpload', key, this.bucket);
        }
      },
    };
  }

  /** S3 answers 204 for a missing key. On a versioned bucket this adds a delete marker; versions stay. */
  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
    } catch (cause) {
      const failure = s3Failure(cause, 'delete', key, this.bucket);
      if (failure.code === 'NOT_FOUND') return;
      throw failure;
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private objectKey(key: string): string {
    return this.prefix + key;
  }

  private writeParams(objectKey: string, options: PutOptions): WriteParams {
    const storageClass = options.accessTier ? storageClassOfTier[options.accessTier] : (this.config.storage_class as StorageClass | undefined);
    const encryption = this.config.encryption;
    return {
      Bucket: this.bucket,
      Key: objectKey,
      ...(options.contentType ? { ContentType: options.contentType } : {}),
      ...(storageClass ? { StorageClass: storageClass } : {}),
      ...(encryption ? { ServerSideEncryption: encryption.algorithm as ServerSideEncryption } : {}),
      ...(encryption?.kms_key_id ? { SSEKMSKeyId: encryption.kms_key_id } : {}),
      ...(options.retainUntil ? { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: options.retainUntil } : {}),
    };
  }

  /** Versioning status and object lock configuration; a permission to read either is not required. */
  private async probeFeatures(): Promise<BucketFeatures> {
    const optional = async <T>(request: Promise<T>): Promise<T | undefined> => {
      try {
        return await request;
      } catch (cause) {
        const failure = s3Failure(cause, 'open', undefined, this.bucket);
        // not configured (404 ObjectLockConfigurationNotFoundError) or not allowed to ask: absent
        if (httpStatusOf(cause) === 404 || failure instanceof AccessDeniedError) return undefined;
        throw failure;
      }
    };
    const versioning = await optional(this.client.send(new GetBucketVersioningCommand({ Bucket: this.bucket })));
    const lock = await optional(this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.bucket })));
    return {
      versioning: versioning?.Status === 'Enabled',
      objectLock: lock?.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled',
    };
  }
}

async function* prepend(head: Uint8Array[], rest: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield* head;
  for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
}

/** The endpoint without any user:password part, for `location`. */
function endpointForPeople(endpoint: string): string {
  try {
    return redactUrl(new URL(endpoint).toString(), { keepUser: false }).replace(/\/$/, '');
  } catch {
    return '(invalid endpoint)';
  }
}

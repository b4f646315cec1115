import {
  BlobServiceClient,
  StorageSharedKeyCredential,
  type BlockBlobClient,
  type ContainerClient,
  type StoragePipelineOptions,
} from '@azure/storage-blob';
import { createHash, randomBytes } from 'node:crypto';
import { declareCapabilities, type AccessTier, type Backend, type Body, type ObjectStat, type PutOptions } from '../../src/core/backend.js';
import { partsOf } from '../../src/core/body.js';
import { ArchivedObjectError, ConfigError, ObjectLockedError, StorageError } from '../../src/core/errors.js';
import { httpStatusOf, storageFailure } from '../../src/core/storage-errors.js';
import type { AzureBlobBackendConfig } from './config.js';

const connector = 'azure_blob';

/** Azure allows at most this many committed blocks per blob. */
const maxBlocks = 50_000;

/** Our tier names → Azure's. */
const azureTiers: Record<AccessTier, string> = { hot: 'Hot', cool: 'Cool', cold: 'Cold', archive: 'Archive' };

export type RehydrateTier = Exclude<AccessTier, 'archive'>;
export type RehydratePriority = 'Standard' | 'High';

/** `stat` and `list` entries, with the tier in lowercase (`hot`, `cool`, `cold`, `archive`). */
export interface AzureObjectStat extends ObjectStat {
  /** Set while an archived blob is being rehydrated, e.g. `rehydrate-pending-to-hot`. */
  archiveStatus?: string;
}

/** Azure's error code: `code` on responses with a body, the x-ms-error-code header on HEAD responses. */
function azureErrorCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; details?: { errorCode?: unknown } } | null;
  if (typeof e?.details?.errorCode === 'string') return e.details.errorCode;
  return typeof e?.code === 'string' ? e.code : undefined;
}

const authenticationCodes = new Set([
  'AuthenticationFailed',
  'AuthorizationFailure',
  'AuthorizationPermissionMismatch',
  'AuthorizationResourceTypeMismatch',
  'InsufficientAccountPermissions',
  'AccountIsDisabled',
]);

/**
 * AzureBlobStorage: each key is a block blob `<prefix><key>` in one container. Writes land in
 * `access_tier` (or `PutOptions.accessTier`); large bodies stream up as blocks, at most
 * `max_concurrent_blocks` in flight. Reading a blob in the archive tier fails with
 * ArchivedObjectError until `rehydrate` has moved it online.
 *
 * The SDK's own retries are off: the engine's retry module is the one retry policy.
 */
export class AzureBlobStorage implements Backend {
  readonly type = connector;
  /**
   * Versioning and immutability are account/container settings on Azure (and Azurite 3.35 has
   * neither: 501), so this backend does not claim them; retention is the container's policy.
   */
  readonly capabilities = declareCapabilities({ rangeReads: true, accessTiers: true, multipart: true });
  readonly location: string;
  private readonly container: ContainerClient;
  private readonly prefix: string;
  /** The tier puts land in without `PutOptions.accessTier` (the config's `access_tier`). */
  readonly defaultAccessTier: AccessTier;
  private readonly blockSize: number;
  private readonly maxConcurrentBlocks: number;
  private readonly account: string;
  private readonly containerName: string;

  constructor(
    config: Pick<AzureBlobBackendConfig, 'account' | 'container' | 'prefix' | 'access_tier' | 'block_size' | 'max_concurrent_blocks'> &
      Partial<Pick<AzureBlobBackendConfig, 'connection_string' | 'endpoint'>>,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.account = config.account;
    this.containerName = config.container;
    this.prefix = config.prefix;
    this.defaultAccessTier = config.access_tier;
    this.blockSize = config.block_size;
    this.maxConcurrentBlocks = config.max_concurrent_blocks;
    this.container = serviceClient(config, env).getContainerClient(config.container);
    this.location = `${withoutQuery(this.container.url)}/${this.prefix}`;
  }

  uri(key: string): string {
    return withoutQuery(this.blob(key).url);
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<AzureObjectStat> {
    if (options.retainUntil !== undefined) {
      throw new StorageError(
        `${connector} put: retainUntil is not enforced per blob by this backend; set a time-based retention policy on container ${this.containerName} instead`,
        { retriable: false, context: this.context('put', key) },
      );
    }
    const blob = this.blob(key);
    const tier = options.accessTier ?? this.defaultAccessTier;
    const tierOption = { tier: azureTiers[tier] };
    const contentType = options.contentType === undefined ? {} : { blobContentType: options.contentType };
    const parts = partsOf(body, this.blockSize);
    try {
      const first = await parts.next();
      const second = await parts.next();
      if (second.done) {
        // One part: a single Put Blob request. The service checks the MD5 and keeps it for readers.
        const bytes = first.value as Uint8Array;
        await blob.upload(bytes, bytes.byteLength, { ...tierOption, blobHTTPHeaders: { ...contentType, blobContentMD5: md5(bytes) } });
        return { key, size: bytes.byteLength, accessTier: tier };
      }
      const { ids, size } = await this.uploadBlocks(blob, key, first.value as Uint8Array, second.value, parts);
      await blob.commitBlockList(ids, { ...tierOption, blobHTTPHeaders: contentType });
      return { key, size, accessTier: tier };
    } catch (cause) {
      throw this.fail('put', key, cause);
    } finally {
      // Stops a stream body we did not read to the end (after a failure).
      await parts.return(undefined);
    }
  }

  /**
   * Stages the parts as blocks, at most `maxConcurrentBlocks` in flight (so memory stays
   * bounded). Returns the block ids in order, for the commit, and the total size.
   */
  private async uploadBlocks(
    blob: BlockBlobClient,
    key: string,
    first: Uint8Array,
    second: Uint8Array,
    rest: AsyncGenerator<Uint8Array>,
  ): Promise<{ ids: string[]; size: number }> {
    // One random tag per upload: concurrent writers of the same key never share block ids.
    const tag = randomBytes(6).toString('hex');
    const ids: string[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: { cause: unknown } | undefined;
    let size = 0;
    const stage = (part: Uint8Array) => {
      if (ids.length >= maxBlocks) {
        throw new StorageError(
          `${connector} put: more than ${maxBlocks} blocks of ${this.blockSize} bytes; raise block_size`,
          { retriable: false, context: this.context('put', key) },
        );
      }
      const id = Buffer.from(`${tag}-${String(ids.length).padStart(6, '0')}`).toString('base64');
      ids.push(id);
      size += part.byteLength;
      const staged: Promise<void> = blob
        .stageBlock(id, part, part.byteLength, { transactionalContentMD5: md5(part) })
        .then(
          () => undefined,
          (cause: unknown) => {
            failure ??= { cause };
          },
        )
        .finally(() => inFlight.delete(staged));
      inFlight.add(staged);
    };
    try {
      stage(first);
      stage(second);
      while (!failure) {
        while (inFlight.size >= this.maxConcurrentBlocks && !failure) await Promise.race(inFlight);
        if (failure) break;
        const next = await rest.next();
        if (next.done) break;
        stage(next.value);
      }
    } finally {
      await Promise.all(inFlight);
    }
    if (failure) throw failure.cause;
    return { ids, size };
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      const response = await this.blob(key).download(0, undefined, { maxRetryRequests: 0 });
      return await readAll(response.readableStreamBody, response.contentLength ?? 0);
    } catch (cause) {
      throw this.fail('get', key, cause);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    try {
      if (length <= 0) {
        // count 0 would mean "to the end" to the SDK; still report a missing key.
        await this.blob(key).getProperties();
        return new Uint8Array(0);
      }
      const response = await this.blob(key).download(offset, length, { maxRetryRequests: 0 });
      return await readAll(response.readableStreamBody, response.contentLength ?? 0);
    } catch (cause) {
      // Starting at or after the end of an existing blob: nothing to read.
      if (httpStatusOf(cause) === 416) return new Uint8Array(0);
      throw this.fail('getRange', key, cause);
    }
  }

  async stat(key: string): Promise<AzureObjectStat> {
    try {
      const properties = await this.blob(key).getProperties();
      return {
        key,
        size: properties.contentLength ?? 0,
        ...(properties.lastModified ? { modified: properties.lastModified } : {}),
        ...(properties.accessTier ? { accessTier: properties.accessTier.toLowerCase() } : {}),
        ...(properties.archiveStatus ? { archiveStatus: properties.archiveStatus } : {}),
      };
    } catch (cause) {
      throw this.fail('stat', key, cause);
    }
  }

  async *list(prefix: string): AsyncGenerator<AzureObjectStat> {
    const pages = this.container.listBlobsFlat({ prefix: this.prefix + prefix }).byPage({ maxPageSize: 1000 });
    for (;;) {
      let page;
      try {
        const next = await pages.next();
        if (next.done) return;
        page = next.value;
      } catch (cause) {
        throw this.fail('list', prefix, cause);
      }
      for (const item of page.segment.blobItems) {
        const { contentLength, lastModified, accessTier, archiveStatus } = item.properties;
        yield {
          key: item.name.slice(this.prefix.length),
          size: contentLength ?? 0,
          modified: lastModified,
          ...(accessTier ? { accessTier: accessTier.toLowerCase() } : {}),
          ...(archiveStatus ? { archiveStatus } : {}),
        };
      }
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.blob(key).deleteIfExists({ deleteSnapshots: 'include' });
    } catch (cause) {
      throw this.fail('delete', key, cause);
    }
  }

  /** Moves a blob to another tier (hot, cool, cold, archive). */
  async setAccessTier(key: string, tier: AccessTier): Promise<void> {
    try {
      await this.blob(key).setAccessTier(azureTiers[tier]);
    } catch (cause) {
      throw this.fail('setAccessTier', key, cause);
    }
  }

  /**
   * Starts bringing an archived blob back online into `tier`. On Azure this takes hours
   * (`High` priority: under one hour for small blobs) and `stat` shows `archiveStatus`
   * `rehydrate-pending-to-<tier>` meanwhile; Azurite does it at once.
   */
  async rehydrate(key: string, tier: RehydrateTier, priority: RehydratePriority = 'Standard'): Promise<void> {
    try {
      await this.blob(key).setAccessTier(azureTiers[tier], { rehydratePriority: priority });
    } catch (cause) {
      throw this.fail('rehydrate', key, cause);
    }
  }

  async close(): Promise<void> {
    // The SDK keeps no connection state we own: its HTTP agent is shared and idles out.
  }

  private blob(key: string): BlockBlobClient {
    if (key.length === 0) throw new StorageError(`${connector}: empty key`, { context: this.context('key', key) });
    return this.container.getBlockBlobClient(this.prefix + key);
  }

  private context(operation: string, key: string) {
    return { connector, operation, key, container: this.containerName };
  }

  /** One translation of Azure errors: archive and retention first, then the common rules. */
  private fail(operation: string, key: string, cause: unknown): StorageError {
    if (cause instanceof StorageError) return cause;
    const code = azureErrorCode(cause);
    const context = this.context(operation, key);
    if (code === 'BlobArchived' || code === 'BlobBeingRehydrated') {
      const state = code === 'BlobArchived' ? 'is in the archive tier' : 'is still being rehydrated';
      return new ArchivedObjectError(
        `${connector} ${operation}: ${key} ${state} and cannot be read; rehydrate it first (rehydrate(key, 'hot'|'cool')), then wait until stat shows it online`,
        { cause, context },
      );
    }
    if (code === 'BlobImmutableDueToPolicy' || code === 'BlobImmutableDueToLegalHold') {
      return new ObjectLockedError(`${connector} ${operation}: ${key} is under the container's retention (${code})`, { cause, context });
    }
    if (code === 'Md5Mismatch') {
      // The bytes were damaged on the way: sending them again may succeed.
      return new StorageError(`${connector} ${operation}: the service saw a different MD5 than we sent`, { cause, retriable: true, context });
    }
    if (code === 'ContainerNotFound') {
      return new StorageError(
        `${connector} ${operation}: container ${this.containerName} does not exist in account ${this.account}; create it first`,
        { cause, retriable: false, context },
      );
    }
    return storageFailure(cause, {
      connector,
      operation,
      key,
      context: { container: this.containerName },
      ...(code !== undefined && authenticationCodes.has(code) ? { accessDenied: true } : {}),
    });
  }
}

/** Client from, first found: `connection_string`, AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY. */
function serviceClient(
  config: Pick<AzureBlobBackendConfig, 'account'> & Partial<Pick<AzureBlobBackendConfig, 'connection_string' | 'endpoint'>>,
  env: NodeJS.ProcessEnv,
): BlobServiceClient {
  // One try per call: retries belong to the engine's retry module.
  const options: StoragePipelineOptions = { retryOptions: { maxTries: 1 } };
  const connectionString = config.connection_string ?? env.AZURE_STORAGE_CONNECTION_STRING;
  if (connectionString) {
    const where = config.connection_string ? 'connection_string' : 'AZURE_STORAGE_CONNECTION_STRING';
    const named = /(?:^|;)\s*AccountName=([^;]*)/i.exec(connectionString)?.[1]?.trim();
    if (named !== undefined && named !== config.account) {
      throw new ConfigError(`${connector}: account is ${config.account} but ${where} names account ${named}`);
    }
    try {
      return BlobServiceClient.fromConnectionString(connectionString, options);
    } catch (cause) {
      // The SDK's messages name the broken part, never the secret.
      throw new ConfigError(`${connector}: ${where} is not a valid connection string (${(cause as Error).message})`);
    }
  }
  const accountKey = env.AZURE_STORAGE_KEY;
  if (accountKey) {
    const endpoint = config.endpoint ?? `https://${config.account}.blob.core.windows.net`;
    return new BlobServiceClient(endpoint, new StorageSharedKeyCredential(config.account, accountKey), options);
  }
  throw new ConfigError(
    `${connector}: no credentials for account ${config.account}: set connection_string (e.g. "\${AZURE_CONNECTION_STRING}"), or the environment variable AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY`,
  );
}

function withoutQuery(url: string): string {
  const parsed = new URL(url);
  parsed.search = '';
  return parsed.toString();
}

function md5(bytes: Uint8Array): Uint8Array {
  return createHash('md5').update(bytes).digest();
}

/** Reads a download body of `length` bytes into one array; a short body is a (retriable) failure. */
async function readAll(stream: NodeJS.ReadableStream | undefined, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let at = 0;
  if (stream) {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (at + chunk.byteLength > length) throw new StorageError(`${connector} download: more bytes than Content-Length`);
      out.set(chunk, at);
      at += chunk.byteLength;
    }
  }
  if (at !== length) {
    throw new StorageError(`${connector} download: body ended after ${at} of ${length} bytes`, { retriable: true });
  }
  return out;
}

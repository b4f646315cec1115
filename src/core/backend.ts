/**
 * One interface for every storage system. Formats and the pipeline only see this; vendor SDKs
 * stay inside their connector folder.
 */
export interface BackendCapabilities {
  /** `getRange` reads only the requested bytes (otherwise it is emulated). */
  rangeReads: boolean;
  /** `PutOptions.accessTier` is honoured (Azure hot/cool/cold/archive, S3/GCS storage classes). */
  accessTiers: boolean;
  /** The server keeps earlier versions of an overwritten object. */
  versioning: boolean;
  /** `PutOptions.retainUntil` is enforced by the server (object lock, retention policy). */
  immutability: boolean;
  /** The server encrypts at rest with parameters we pass (SSE). */
  serverSideEncryption: boolean;
  /** Large bodies go up in parts/blocks/chunks instead of one request. */
  multipart: boolean;
}

/** A backend's capabilities: those it names are on, every other one is off. */
export function declareCapabilities(has: Partial<BackendCapabilities>): BackendCapabilities {
  return { rangeReads: false, accessTiers: false, versioning: false, immutability: false, serverSideEncryption: false, multipart: false, ...has };
}

export type AccessTier = 'hot' | 'cool' | 'cold' | 'archive';

export interface ObjectStat {
  key: string;
  size: number;
  modified?: Date;
  /** The object's access tier or storage class as the backend names it. */
  accessTier?: string;
}

/** A body to store: bytes in memory, or a stream of chunks for large objects. */
export type Body = Uint8Array | AsyncIterable<Uint8Array>;

export interface PutOptions {
  contentType?: string;
  /** Write straight into this access tier (backends with `accessTiers`). */
  accessTier?: AccessTier;
  /** Retain (no overwrite, no delete) until then (backends with `immutability`). */
  retainUntil?: Date;
}

export interface Backend {
  /** The YAML `type`, e.g. `local_file`. */
  readonly type: string;
  readonly capabilities: BackendCapabilities;
  /** Where the backend keeps its objects, for people: a folder, a bucket URL. Never credentials. */
  readonly location: string;
  /** Where a user finds the object: an absolute path or the backend's URL. Never credentials. */
  uri(key: string): string;
  /** Durable when the promise resolves. Overwrites an existing key atomically. */
  put(key: string, body: Body, options?: PutOptions): Promise<ObjectStat>;
  /** Missing key: `NotFoundError`. */
  get(key: string): Promise<Uint8Array>;
  /** Bytes [offset, offset+length), shorter at the end of the object. */
  getRange(key: string, offset: number, length: number): Promise<Uint8Array>;
  stat(key: string): Promise<ObjectStat>;
  /** Every object whose key starts with `prefix` (a plain string prefix, not only folders). */
  list(prefix: string): AsyncIterable<ObjectStat>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Writes a crash left unfinished (a temporary file, an incomplete multipart upload), invisible
   * to `list` and `get`; `gc` removes them. Backends whose puts leave nothing behind omit it.
   */
  incompleteWrites?(): AsyncIterable<ObjectStat & { remove(): Promise<void> }>;
  /**
   * Backends with an offline access tier (Azure `archive`): asks for `key` to be brought back
   * online in `tier`; reads fail with ArchivedObjectError until it is.
   */
  rehydrate?(key: string, tier: 'hot' | 'cool' | 'cold', priority?: 'Standard' | 'High'): Promise<void>;
  /** Backends with access tiers: the one puts write into unless `PutOptions.accessTier` says otherwise. */
  readonly defaultAccessTier?: AccessTier;
  /** Backends with access tiers: moves a stored object to another one (e.g. into `archive`). */
  setAccessTier?(key: string, tier: AccessTier): Promise<void>;
  close(): Promise<void>;
}

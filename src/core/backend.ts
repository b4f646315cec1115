/**
 * One interface for every storage system. Formats and the pipeline only see this; vendor SDKs
 * stay inside their connector folder.
 */
export interface BackendCapabilities {
  rangeReads: boolean;
  accessTiers: boolean;
  versioning: boolean;
  immutability: boolean;
  serverSideEncryption: boolean;
}

export interface ObjectStat {
  key: string;
  size: number;
  modified?: Date;
}

export interface PutOptions {
  contentType?: string;
}

export interface Backend {
  /** The YAML `type`, e.g. `local_file`. */
  readonly type: string;
  readonly capabilities: BackendCapabilities;
  /** Where the backend keeps its objects, for people: a folder, a bucket URL. */
  readonly location: string;
  /** Where a user finds the object: an absolute path or the backend's URL. */
  uri(key: string): string;
  /** Durable when the promise resolves. Overwrites an existing key atomically. */
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<ObjectStat>;
  get(key: string): Promise<Uint8Array>;
  getRange(key: string, offset: number, length: number): Promise<Uint8Array>;
  stat(key: string): Promise<ObjectStat>;
  list(prefix: string): AsyncIterable<ObjectStat>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

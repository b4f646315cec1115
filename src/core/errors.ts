/**
 * Typed errors. Every error says whether a retry may help (`retriable`), carries the context
 * where it happened (stage, connector, key, partition …) and keeps its cause. Context values are
 * never secrets (a server's host:port, never its connection string); `describe` masks what a
 * cause may quote anyway.
 */
import { redact } from './redact.js';

export interface ErrorContext {
  stage?: string;
  connector?: string;
  key?: string;
  source?: string;
  partition?: number;
  offset?: number;
  file?: string;
  path?: string;
  [extra: string]: string | number | undefined;
}

export interface EarthMemoryErrorOptions {
  cause?: unknown;
  retriable?: boolean;
  context?: ErrorContext;
}

export class EarthMemoryError extends Error {
  readonly code: string = 'EARTHMEM_ERROR';
  readonly retriable: boolean;
  readonly context: ErrorContext;

  constructor(message: string, options: EarthMemoryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retriable = options.retriable ?? false;
    this.context = options.context ?? {};
  }

  /** One line for logs: message, context and the cause chain, secrets masked (`redact`). */
  describe(): string {
    const ctx = Object.entries(this.context)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    let text = ctx ? `${this.message} [${ctx}]` : this.message;
    let cause = this.cause;
    while (cause instanceof Error) {
      text += `: ${cause.message}`;
      cause = cause.cause;
    }
    // Causes are third-party errors: a driver may quote a connection string or a password.
    return redact(text);
  }
}

/** A pipeline file or option is wrong. Never retriable. */
export class ConfigError extends EarthMemoryError {
  override readonly code = 'CONFIG_INVALID';
  readonly issues: readonly ConfigIssue[];
  constructor(message: string, issues: readonly ConfigIssue[] = [], options: EarthMemoryErrorOptions = {}) {
    super(message, { ...options, retriable: false });
    this.issues = issues;
  }
}

export interface ConfigIssue {
  file: string;
  /** Key path in the pipeline file, e.g. `storage.tier_configs.hot.primary_backend.type`. */
  path: string;
  message: string;
  line?: number;
  column?: number;
}

export function formatConfigIssue(issue: ConfigIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}:${issue.column ?? 1}`;
  return `${where}: ${issue.path || '(root)'}: ${issue.message}`;
}

/** A storage backend failed. Retriable when the backend may recover (timeouts, 5xx, resets). */
export class StorageError extends EarthMemoryError {
  override readonly code: string = 'STORAGE_FAILED';
}

/** The key is not in the backend. */
export class NotFoundError extends StorageError {
  override readonly code = 'NOT_FOUND';
  constructor(key: string, options: EarthMemoryErrorOptions = {}) {
    super(`object not found: ${key}`, { ...options, retriable: false, context: { ...options.context, key } });
  }
}

/** The backend refused our credentials or permissions. Never retriable: fix the configuration. */
export class AccessDeniedError extends StorageError {
  override readonly code = 'ACCESS_DENIED';
  constructor(message: string, options: EarthMemoryErrorOptions = {}) {
    super(message, { ...options, retriable: false });
  }
}

/** The object is under retention (object lock or the engine's immutability rule) and cannot change yet. */
export class ObjectLockedError extends StorageError {
  override readonly code = 'OBJECT_LOCKED';
  constructor(message: string, options: EarthMemoryErrorOptions = {}) {
    super(message, { ...options, retriable: false });
  }
}

/** The object sits in an offline access tier (e.g. Azure archive): rehydrate it before reading. */
export class ArchivedObjectError extends StorageError {
  override readonly code = 'OBJECT_ARCHIVED';
  constructor(message: string, options: EarthMemoryErrorOptions = {}) {
    super(message, { ...options, retriable: false });
  }
}

/** A migration step cannot go on (a copy that does not verify, a plan that no longer holds). Not retriable. */
export class MigrationError extends EarthMemoryError {
  override readonly code = 'MIGRATION_FAILED';
  constructor(message: string, options: EarthMemoryErrorOptions = {}) {
    super(message, { ...options, retriable: false });
  }
}

/** The catalog (SQLite, PostgreSQL) failed. */
export class CatalogError extends EarthMemoryError {
  override readonly code = 'CATALOG_FAILED';
}

/**
 * A writer lost ownership of a source partition (another worker claimed it after a rebalance):
 * its write is refused so two owners never make the same records visible twice.
 */
export class FencedError extends EarthMemoryError {
  override readonly code = 'FENCED';
  constructor(message: string, options: EarthMemoryErrorOptions = {}) {
    super(message, { ...options, retriable: false });
  }
}

/** A batch could not be encoded (Arrow, Parquet …). Not retriable: the same input fails again. */
export class EncodeError extends EarthMemoryError {
  override readonly code = 'ENCODE_FAILED';
}

/** A source (file, Kafka) failed to read. */
export class SourceError extends EarthMemoryError {
  override readonly code = 'SOURCE_FAILED';
}

export function isRetriable(error: unknown): boolean {
  return error instanceof EarthMemoryError && error.retriable;
}

/** One line for logs and messages, secrets masked. */
export function describeError(error: unknown): string {
  if (error instanceof EarthMemoryError) return error.describe();
  if (error instanceof Error) return redact(error.message);
  return redact(String(error));
}

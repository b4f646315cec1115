import { AccessDeniedError, NotFoundError, StorageError, type ErrorContext } from './errors.js';

/** Network failures where the server may come back: retry with backoff. */
const retriableNetworkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

/** The HTTP status an SDK error carries, whatever the SDK calls it. */
export function httpStatusOf(error: unknown): number | undefined {
  const e = error as Record<string, any> | null;
  if (e === null || typeof e !== 'object') return undefined;
  const candidates = [e.$metadata?.httpStatusCode, e.statusCode, e.status, e.response?.status, e.response?.statusCode, e.code];
  for (const c of candidates) if (typeof c === 'number' && c >= 100 && c < 600) return c;
  return undefined;
}

/** The errno-style code of the error or of any error in its cause chain (`ECONNREFUSED` …). */
export function networkCodeOf(error: unknown): string | undefined {
  let e: any = error;
  for (let depth = 0; e && depth < 6; depth++) {
    if (typeof e.code === 'string' && retriableNetworkCodes.has(e.code)) return e.code;
    if (Array.isArray(e.errors)) for (const inner of e.errors) if (retriableNetworkCodes.has(inner?.code)) return inner.code;
    e = e.cause;
  }
  return undefined;
}

export interface StorageFailureOptions {
  connector: string;
  operation: string;
  key?: string;
  /** Overrides the generic rule: the SDK's own "not found" test (e.g. S3 `NoSuchKey`). */
  notFound?: boolean;
  /** The SDK's own "access denied" test (e.g. `InvalidAccessKeyId`). */
  accessDenied?: boolean;
  context?: ErrorContext;
}

/**
 * One translation from any SDK or driver error to our typed errors: 404 → NotFoundError,
 * 401/403 → AccessDeniedError (fatal at once), 408/429/5xx and connection failures → retriable
 * StorageError, anything else → fatal StorageError. The message names connector, operation
 * and status; never the credentials (callers must not put them in `context`).
 */
export function storageFailure(cause: unknown, options: StorageFailureOptions): StorageError {
  if (cause instanceof StorageError) return cause;
  const { connector, operation, key } = options;
  const context: ErrorContext = { ...options.context, connector, operation, ...(key === undefined ? {} : { key }) };
  const status = httpStatusOf(cause);
  if (options.notFound ?? status === 404) return new NotFoundError(key ?? '(none)', { cause, context });
  if (options.accessDenied ?? (status === 401 || status === 403)) {
    return new AccessDeniedError(`${connector} ${operation}: access denied${status ? ` (HTTP ${status})` : ''}; check the credentials`, {
      cause,
      context,
    });
  }
  const network = networkCodeOf(cause);
  const retriable = network !== undefined || status === 408 || status === 429 || (status !== undefined && status >= 500);
  const what = network ?? (status !== undefined ? `HTTP ${status}` : (cause as Error)?.name ?? 'error');
  return new StorageError(`${connector} ${operation} failed (${what})`, { cause, retriable, context });
}

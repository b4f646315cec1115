import pg from 'pg';
import { ConfigError, EarthMemoryError, StorageError, type ErrorContext } from '../../src/core/errors.js';
import { storageFailure } from '../../src/core/storage-errors.js';

export const connector = 'postgresql';

/**
 * `host:port/database` of the server, for `location`, `uri` and errors: never the user or the
 * password. Without a connection string node-postgres reads PGHOST, PGPORT and PGDATABASE.
 */
export function serverAddress(connectionString: string | undefined): string {
  const env = process.env;
  if (connectionString === undefined) {
    return `${env.PGHOST ?? 'localhost'}:${env.PGPORT ?? '5432'}/${env.PGDATABASE ?? env.PGUSER ?? ''}`;
  }
  // pg's other form, "/socket/dir database", carries no credentials.
  if (connectionString.startsWith('/')) {
    const [dir, database] = connectionString.split(' ');
    return `${dir}/${database ?? ''}`;
  }
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch (cause) {
    // Node's "Invalid URL" TypeError keeps the whole input, password included.
    if (cause instanceof Error && 'input' in cause) cause.input = '[redacted]';
    throw new ConfigError('PostgreSQL connection_string is not a URL (postgresql://user:password@host:port/database)', [], {
      cause,
      context: { connector },
    });
  }
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') {
    throw new ConfigError(`PostgreSQL connection_string must start with postgresql:// (got ${url.protocol}//)`, [], { context: { connector } });
  }
  const host = url.hostname || url.searchParams.get('host') || env.PGHOST || 'localhost';
  const port = url.port || env.PGPORT || '5432';
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || env.PGDATABASE || '';
  return `${host}:${port}/${database}`;
}

/** SQLSTATEs after which the same statement may succeed: serialization, deadlock, overload, lock or statement timeout, shutdown. */
const transientSqlStates = new Set(['40001', '40P01', '53300', '55P03', '57014', '57P01', '57P02', '57P03']);
/** Class 28: invalid authorization (28P01 wrong password, 28000 no pg_hba entry / role). */
const accessDeniedSqlStates = new Set(['28P01', '28000']);
/** node-postgres reports a lost or timed-out connection as a plain Error without a code. */
const lostConnection = /Connection terminated|timeout exceeded when trying to connect|Connection timeout|connection timeout|encountered a connection error and is not queryable/i;

export function sqlStateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof pg.DatabaseError && typeof code === 'string' ? code : undefined;
}

/**
 * The one translation of node-postgres errors: wrong password / role → AccessDeniedError; lost
 * connection, 08xxx, 40001, 40P01, shutdown → retriable; other SQL errors → fatal with their
 * SQLSTATE. Our own typed errors (ConfigError, NotFoundError …) pass through.
 */
export function postgresFailure(cause: unknown, operation: string, key: string | undefined, context: ErrorContext): EarthMemoryError {
  if (cause instanceof EarthMemoryError) return cause;
  const state = sqlStateOf(cause);
  const options = { connector, operation, ...(key === undefined ? {} : { key }), context };
  if (state !== undefined && accessDeniedSqlStates.has(state)) return storageFailure(cause, { ...options, accessDenied: true });
  const fullContext: ErrorContext = { ...context, connector, operation, ...(key === undefined ? {} : { key }) };
  if (state !== undefined) {
    const retriable = state.startsWith('08') || transientSqlStates.has(state);
    return new StorageError(`${connector} ${operation} failed (SQLSTATE ${state})`, { cause, retriable, context: fullContext });
  }
  if (cause instanceof Error && lostConnection.test(cause.message)) {
    return new StorageError(`${connector} ${operation} failed (connection lost)`, { cause, retriable: true, context: fullContext });
  }
  return storageFailure(cause, options);
}

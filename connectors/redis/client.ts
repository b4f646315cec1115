import { Redis } from 'ioredis';
import { ConfigError, StorageError } from '../../src/core/errors.js';
import { networkCodeOf, storageFailure } from '../../src/core/storage-errors.js';
import type { RedisConnectionConfig } from './config.js';

const connector = 'redis';

/** Server answers that mean "try again later" (a loading replica, a busy script, a failover). */
const retriableReplies = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY)\b/;
/** Answers that mean our credentials or permissions are wrong. */
const deniedReplies = /^(WRONGPASS|NOAUTH|NOPERM)\b|invalid password|AUTH <password> called without any password/i;
/** ioredis' own messages when a connection is lost or a command times out. */
const lostConnection = /^(Connection is closed|Stream isn't writeable|Command timed out|Reached the max retries)/;

export interface ResolvedRedisConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

/** One connection description from `url` or `host`/`port`/`db`; ConfigError when both or neither are given. */
export function resolveRedisConnection(config: RedisConnectionConfig): ResolvedRedisConnection {
  const timeouts = { connectTimeoutMs: config.connect_timeout, commandTimeoutMs: config.command_timeout };
  if (config.url !== undefined) {
    const mixed = (['host', 'port', 'db', 'tls'] as const).filter((k) => (k === 'tls' ? config.tls : config[k] !== undefined));
    if (mixed.length > 0) throw new ConfigError(`redis: set either url or host/port/db, not both (also given: ${mixed.join(', ')})`);
    let url: URL;
    try {
      url = new URL(config.url);
    } catch {
      // The URL itself is not repeated: it may hold the password.
      throw new ConfigError('redis: url is not a valid URL (expected redis://[user:password@]host:port/db)');
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new ConfigError(`redis: url must start with redis:// or rediss://, not ${url.protocol}//`);
    const db = url.pathname.replace(/^\//, '');
    if (db !== '' && !/^\d+$/.test(db)) throw new ConfigError(`redis: the url's path must be a database number, not "/${db}"`);
    const username = decodeURIComponent(url.username) || config.username;
    const password = config.password ?? (decodeURIComponent(url.password) || undefined);
    return {
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port ? Number(url.port) : 6379,
      db: db === '' ? 0 : Number(db),
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
      tls: url.protocol === 'rediss:',
      ...timeouts,
    };
  }
  if (config.host === undefined) throw new ConfigError('redis: expected url or host');
  return {
    host: config.host,
    port: config.port ?? 6379,
    db: config.db ?? 0,
    ...(config.username ? { username: config.username } : {}),
    ...(config.password ? { password: config.password } : {}),
    tls: config.tls,
    ...timeouts,
  };
}

/** `redis://host:port/db`, never credentials. */
export function redisLocation(connection: ResolvedRedisConnection): string {
  const host = connection.host.includes(':') ? `[${connection.host}]` : connection.host;
  return `${connection.tls ? 'rediss' : 'redis'}://${host}:${connection.port}/${connection.db}`;
}

/**
 * One ioredis client that makes exactly one connection attempt per operation when it is not
 * connected: no offline queue, no reconnect loop, no per-request retries, so a failure reaches
 * the caller at once and src/core/retry.ts decides about backoff.
 */
export class RedisConnection {
  readonly client: Redis;
  readonly location: string;
  /** The last error the client reported; a failed connect() only says "Connection is closed". */
  private lastError: Error | undefined;
  private connecting: Promise<void> | undefined;
  private closed = false;

  /** `name` shows in CLIENT LIST (earthmem-storage, earthmem-index, earthmem-cache). */
  constructor(connection: ResolvedRedisConnection, name: string) {
    this.location = redisLocation(connection);
    this.client = new Redis({
      connectionName: name,
      host: connection.host,
      port: connection.port,
      db: connection.db,
      ...(connection.username ? { username: connection.username } : {}),
      ...(connection.password ? { password: connection.password } : {}),
      ...(connection.tls ? { tls: {} } : {}),
      connectTimeout: connection.connectTimeoutMs,
      commandTimeout: connection.commandTimeoutMs,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      reconnectOnError: () => false,
      autoResubscribe: false,
    });
    this.client.on('error', (error: Error) => {
      this.lastError = error;
    });
  }

  /** Runs `command` on a connected client; any failure becomes a typed StorageError. */
  async run<T>(operation: string, key: string | undefined, command: (client: Redis) => Promise<T>): Promise<T> {
    try {
      if (this.closed) throw new StorageError(`redis ${operation} failed (closed)`, { context: { connector, operation, ...(key === undefined ? {} : { key }) } });
      await this.connect();
      return await command(this.client);
    } catch (cause) {
      throw redisFailure(cause, operation, key);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connecting?.catch(() => undefined);
    if (this.client.status === 'ready') await this.client.quit().catch(() => undefined);
    this.client.disconnect();
  }

  private connect(): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    this.connecting ??= (async () => {
      this.lastError = undefined;
      try {
        await this.client.connect();
      } catch (error) {
        throw this.lastError ?? error;
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }
}

/**
 * ioredis errors to typed errors: WRONGPASS/NOAUTH/NOPERM → AccessDeniedError; refused or lost
 * connections, timeouts, LOADING/BUSY/TRYAGAIN… → retriable; other replies (WRONGTYPE, OOM …) fatal.
 */
export function redisFailure(cause: unknown, operation: string, key?: string): StorageError {
  if (cause instanceof StorageError) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  const keyed = key === undefined ? {} : { key };
  if (deniedReplies.test(message)) return storageFailure(cause, { connector, operation, ...keyed, accessDenied: true });
  if (networkCodeOf(cause) !== undefined) return storageFailure(cause, { connector, operation, ...keyed });
  const reply = /^[A-Z]+\b/.exec(message)?.[0];
  const retriable = retriableReplies.test(message) || lostConnection.test(message);
  const what = lostConnection.test(message) ? message.replace(/\.$/, '') : reply ?? (cause as Error)?.name ?? 'error';
  return new StorageError(`redis ${operation} failed (${what})`, { cause, retriable, context: { connector, operation, ...keyed } });
}

/** `pattern` with Redis glob characters escaped, so SCAN MATCH treats it literally. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** Every key that starts with `prefix`, each once (SCAN may repeat keys), in batches. */
export async function* scanPrefix(client: Redis, prefix: string, count = 1000): AsyncGenerator<string[]> {
  const seen = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', count);
    cursor = next;
    const fresh = keys.filter((k) => !seen.has(k));
    for (const k of fresh) seen.add(k);
    if (fresh.length > 0) yield fresh;
  } while (cursor !== '0');
}

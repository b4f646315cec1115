import { z } from 'zod';
import { duration, nonEmpty, objectLayoutShape, retryShape } from '../../src/config/common.js';

/**
 * Where a Redis server is: `url`, or `host`/`port`/`db`. The two forms exclude each other; that
 * rule is checked when the connection is opened (`resolveRedisConnection`), so these schemas stay
 * plain objects for the pipeline's discriminated unions.
 */
export const redisConnectionShape = {
  /** `redis://[user:password@]host:port/db`, or `rediss://` for TLS. Write `${REDIS_URL}` to keep the password out of the file. */
  url: nonEmpty.optional(),
  host: nonEmpty.optional(),
  /** Default 6379. */
  port: z.number().int().min(1).max(65535).optional(),
  /** Default 0. */
  db: z.number().int().min(0).optional(),
  /** ACL user (Redis 6+); without it the password authenticates the default user. */
  username: nonEmpty.optional(),
  /** Also allowed with `url`, where it replaces the URL's password. */
  password: nonEmpty.optional(),
  /** TLS for the host form (the URL form says `rediss://`). */
  tls: z.boolean().default(false),
  /** One connection attempt waits this long; retries are the pipeline's (backoff), not the client's. */
  connect_timeout: duration.default('5s'),
  /** A command without an answer after this long fails with a retriable error. */
  command_timeout: duration.default('30s'),
};

/**
 * `type: redis` — RedisStorage: objects as Redis strings under `key_prefix`. The same block is the
 * warm tier's `index_backend` (RedisIndex: catalog lookups by key, bbox and time).
 */
export const redisBackendSchema = z
  .object({
    type: z.literal('redis'),
    ...redisConnectionShape,
    /** Every key this connector writes starts with it. */
    key_prefix: z.string().default('earthmem:'),
    /** Objects and index entries expire this long after their last write (a bare number is seconds: the spec's 604800 = 7 days). */
    ttl: duration.optional(),
    ...objectLayoutShape,
    ...retryShape,
  })
  .strict();
export type RedisBackendConfig = z.output<typeof redisBackendSchema>;
export type RedisConnectionConfig = Pick<RedisBackendConfig, keyof typeof redisConnectionShape>;

import { randomBytes } from 'node:crypto';
import { declareCapabilities, type Backend, type Body, type ObjectStat } from '../../src/core/backend.js';
import { partsOf } from '../../src/core/body.js';
import { NotFoundError } from '../../src/core/errors.js';
import { RedisConnection, redisFailure, resolveRedisConnection, scanPrefix } from './client.js';
import type { RedisBackendConfig } from './config.js';

/** Streamed bodies go up in APPENDs of this size. */
const APPEND_BYTES = 1024 * 1024;
/** A half-uploaded temp key vanishes by itself after this long if its writer died. */
const TEMP_TTL_MS = 60 * 60 * 1000;

/**
 * RedisStorage: each object is one Redis string at `<key_prefix>o:<key>`. A body in memory is one
 * SET; a streamed body is APPENDed to a temp key (`<key_prefix>t:<random>`) and RENAMEd over the
 * key in a MULTI, so readers see the old bytes or the new ones, never a part. With `ttl` every
 * object expires that long after its last put. A Redis string holds at most 512 MB
 * (proto-max-bulk-len) and lives in the server's memory.
 */
export class RedisStorage implements Backend {
  readonly type = 'redis';
  readonly capabilities = declareCapabilities({ rangeReads: true, multipart: true });
  readonly location: string;
  private readonly connection: RedisConnection;
  private readonly objectPrefix: string;
  private readonly tempPrefix: string;
  private readonly ttlMs: number | undefined;

  constructor(config: RedisBackendConfig) {
    this.connection = new RedisConnection(resolveRedisConnection(config), 'earthmem-storage');
    this.objectPrefix = `${config.key_prefix}o:`;
    this.tempPrefix = `${config.key_prefix}t:`;
    this.ttlMs = config.ttl === undefined ? undefined : Math.max(1, Math.round(config.ttl));
    this.location = `${this.connection.location}#${this.objectPrefix}`;
  }

  uri(key: string): string {
    return `${this.connection.location}#${this.objectPrefix}${key}`;
  }

  put(key: string, body: Body): Promise<ObjectStat> {
    const target = this.objectPrefix + key;
    return this.connection.run('put', key, async (redis) => {
      if (body instanceof Uint8Array) {
        const value = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
        if (this.ttlMs === undefined) await redis.set(target, value);
        else await redis.set(target, value, 'PX', this.ttlMs);
        return { key, size: body.byteLength };
      }
      const temp = this.tempPrefix + randomBytes(12).toString('hex');
      try {
        await redis.set(temp, '', 'PX', TEMP_TTL_MS);
        let size = 0;
        for await (const part of partsOf(body, APPEND_BYTES)) {
          if (part.byteLength === 0) continue;
          size = await redis.append(temp, Buffer.from(part.buffer, part.byteOffset, part.byteLength));
        }
        // RENAME carries the temp key's expiry over: set the object's own (or none) in the same transaction.
        const move = redis.multi().rename(temp, target);
        const results = await (this.ttlMs === undefined ? move.persist(target) : move.pexpire(target, this.ttlMs)).exec();
        const failed = results?.find(([error]) => error);
        if (!results || failed) throw failed?.[0] ?? new Error('Connection is closed.');
        return { key, size };
      } catch (error) {
        await redis.del(temp).catch(() => undefined);
        throw error;
      }
    });
  }

  get(key: string): Promise<Uint8Array> {
    return this.connection.run('get', key, async (redis) => {
      const value = await redis.getBuffer(this.objectPrefix + key);
      if (value === null) throw new NotFoundError(key, { context: { connector: this.type, operation: 'get' } });
      return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    });
  }

  getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    return this.connection.run('getRange', key, async (redis) => {
      const target = this.objectPrefix + key;
      if (length <= 0) {
        if (!(await redis.exists(target))) throw new NotFoundError(key, { context: { connector: this.type, operation: 'getRange' } });
        return new Uint8Array(0);
      }
      // EXISTS and GETRANGE in one transaction: a missing key and an empty range look alike otherwise.
      const results = await redis.multi().exists(target).getrangeBuffer(target, offset, offset + length - 1).exec();
      const [[existsError, exists], [rangeError, bytes]] = results as [[Error | null, number], [Error | null, Buffer]];
      if (existsError || rangeError) throw existsError ?? rangeError;
      if (!exists) throw new NotFoundError(key, { context: { connector: this.type, operation: 'getRange' } });
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    });
  }

  stat(key: string): Promise<ObjectStat> {
    return this.connection.run('stat', key, async (redis) => {
      const target = this.objectPrefix + key;
      const results = await redis.multi().exists(target).strlen(target).exec();
      const [[existsError, exists], [lengthError, size]] = results as [[Error | null, number], [Error | null, number]];
      if (existsError || lengthError) throw existsError ?? lengthError;
      if (!exists) throw new NotFoundError(key, { context: { connector: this.type, operation: 'stat' } });
      return { key, size };
    });
  }

  /** SCAN MATCH over the prefix (glob characters escaped); keys come in server order, not sorted. */
  async *list(prefix: string): AsyncIterable<ObjectStat> {
    const redis = await this.connection.run('list', prefix, async (client) => client);
    const batches = scanPrefix(redis, this.objectPrefix + prefix);
    for (;;) {
      let stats: ObjectStat[];
      try {
        const batch = await batches.next();
        if (batch.done) return;
        const pipeline = redis.pipeline();
        for (const fullKey of batch.value) pipeline.exists(fullKey).strlen(fullKey);
        const results = (await pipeline.exec()) ?? [];
        stats = [];
        batch.value.forEach((fullKey, i) => {
          const [existsError, exists] = results[2 * i]!;
          const [lengthError, size] = results[2 * i + 1]!;
          if (existsError || lengthError) throw existsError ?? lengthError;
          // Deleted or expired between SCAN and now: not listed.
          if (exists) stats.push({ key: fullKey.slice(this.objectPrefix.length), size: size as number });
        });
      } catch (cause) {
        throw redisFailure(cause, 'list', prefix);
      }
      yield* stats;
    }
  }

  async delete(key: string): Promise<void> {
    await this.connection.run('delete', key, (redis) => redis.del(this.objectPrefix + key));
  }

  close(): Promise<void> {
    return this.connection.close();
  }
}

import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { scanPrefix } from './client.js';

/** The server `scripts/services up redis` started; the tests fail (not skip) without it. */
export function redisEnv(): { url: string; password: string } {
  const url = process.env.REDIS_URL;
  const password = process.env.REDIS_PASSWORD;
  if (!url || !password) {
    throw new Error('REDIS_URL / REDIS_PASSWORD are not set: run the tests through scripts/test.mjs (it runs `scripts/services up redis`)');
  }
  return { url, password };
}

/** A key prefix of its own for each test run, so runs and tests never see each other's keys. */
export function runPrefix(name: string): string {
  return `earthmem-test:${name}:${Date.now().toString(36)}-${randomBytes(3).toString('hex')}:`;
}

/** A plain client for looking at what the connector wrote. */
export function rawClient(): Redis {
  return new Redis(redisEnv().url, { lazyConnect: true, maxRetriesPerRequest: 1 });
}

export async function deleteByPrefix(prefix: string): Promise<void> {
  const redis = rawClient();
  try {
    for await (const keys of scanPrefix(redis, prefix)) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

import { z } from 'zod';
import { nonEmpty, size } from '../config/common.js';

export const evictionPolicies = ['least-recently-used', 'least-frequently-used'] as const;
export type EvictionPolicy = (typeof evictionPolicies)[number];

/**
 * A tier's `cache_settings`: a read cache in front of its primary backend (CachedBackend).
 * `type: memory` keeps the cache in this process; `type: redis` shares it between workers.
 */
export const cacheSettingsSchema = z
  .object({
    type: z.enum(['memory', 'redis']).default('memory'),
    /** `type: redis` only: `redis://[user:password@]host:port/db` (write `${REDIS_URL}`). */
    url: nonEmpty.optional(),
    /** `type: redis` only: every cache key starts with it (one prefix per tier when tiers share a server). */
    key_prefix: z.string().default('earthmem:cache:'),
    /** Cached bytes at most ("50GB", "10GB"); an object larger than this is never cached. */
    max_size: size,
    eviction_policy: z.enum(evictionPolicies).default('least-recently-used'),
    /** Cache objects as they are written, and load the next key (listing order) in the background after each get. */
    prefetching: z.boolean().default(false),
  })
  .strict()
  .superRefine((settings, ctx) => {
    if (settings.type === 'redis' && settings.url === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['url'], message: 'type: redis needs url (redis://host:port/db)' });
    }
    if (settings.type === 'memory' && settings.url !== undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['url'], message: 'url is only for type: redis' });
    }
  });
export type CacheSettings = z.output<typeof cacheSettingsSchema>;

import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { compression, duration, nonEmpty, retryShape, size } from '../config/common.js';
import { fileSourceSchema, localFileBackendSchema, localFileDeadLetterSchema } from '../../connectors/local-file/config.js';
import { kafkaDeadLetterSchema, kafkaSourceSchema } from '../../connectors/kafka/config.js';
import { networkFileBackendSchema } from '../../connectors/network-file/config.js';
import { gcsBackendSchema } from '../../connectors/gcs/config.js';
import { s3BackendSchema } from '../../connectors/s3/config.js';
import { azureBlobBackendSchema } from '../../connectors/azure-blob/config.js';
import { postgisBackendSchema, postgresqlBackendSchema } from '../../connectors/postgresql/config.js';
import { sqliteBackendSchema } from '../../connectors/sqlite/config.js';
import { redisBackendSchema } from '../../connectors/redis/config.js';
import { mongodbBackendSchema } from '../../connectors/mongodb/config.js';
import { influxdbBackendSchema } from '../../connectors/influxdb/config.js';
import { cacheSettingsSchema } from '../storage/cache-config.js';
import { compileTemplate } from '../stages/object-key.js';
import { DEAD_LETTER } from '../stages/classify.js';
import { selectionCriteriaSchema } from '../config/selection.js';

/**
 * The pipeline file: the single source of validation, defaults and documentation.
 * Keys follow the spec (memory_storage.rst) in snake_case. Unknown keys are errors.
 */
export const TIERS = ['hot', 'warm', 'cold', 'glacier'] as const;
export type TierName = (typeof TIERS)[number];

const stringOrList = z.union([nonEmpty, z.array(nonEmpty).min(1)]);

const classifyRule = z
  .object({
    match: z
      .object({
        variable: stringOrList.optional(),
        dataset: stringOrList.optional(),
        kind: z.union([z.enum(['point', 'vector']), z.array(z.enum(['point', 'vector'])).min(1)]).optional(),
        station: stringOrList.optional(),
        bbox: z
          .tuple([z.number().min(-180).max(180), z.number().min(-90).max(90), z.number().min(-180).max(180), z.number().min(-90).max(90)])
          .optional(),
      })
      .strict()
      .refine((m) => Object.keys(m).length > 0, 'expected at least one of variable, dataset, kind, station, bbox'),
    memory_type: nonEmpty,
  })
  .strict();

/** Backends that keep encoded objects (files): the tier's `format` and `file_organization` apply. */
export const OBJECT_BACKENDS = ['local_file', 'network_file', 's3', 'gcs', 'azure_blob', 'redis'] as const;
/** Backends that keep records as rows, documents or points (RecordStore). */
export const RECORD_BACKENDS = ['postgresql', 'postgis', 'sqlite', 'mongodb', 'influxdb'] as const;

const backend = z.discriminatedUnion('type', [
  localFileBackendSchema,
  networkFileBackendSchema,
  s3BackendSchema,
  gcsBackendSchema,
  azureBlobBackendSchema,
  redisBackendSchema,
  postgresqlBackendSchema,
  postgisBackendSchema,
  sqliteBackendSchema,
  mongodbBackendSchema,
  influxdbBackendSchema,
]);
export type BackendConfig = z.output<typeof backend>;

/** The spec's `backup_policy`. */
const backupPolicy = z
  .object({
    /** What the server replicates (a property of the bucket/account, recorded for people; not set by earth-memory). */
    redundancy: z.enum(['local', 'zone-redundant', 'geo-redundant']).default('local'),
    /** Keep earlier versions of overwritten objects: needs a backend that declares versioning. */
    versioning: z.boolean().default(false),
    /** No overwrite or delete before `retention_period` ends (object lock where the backend has it, the engine otherwise). */
    immutable: z.boolean().default(false),
    retention_period: duration.optional(),
  })
  .strict()
  .superRefine((policy, ctx) => {
    if (policy.immutable && policy.retention_period === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['retention_period'], message: 'immutable: true needs a retention_period such as "10years"' });
    }
  });

const tierConfig = z
  .object({
    primary_backend: backend,
    /** Vector features (kind: vector) of this tier go here instead of primary_backend. */
    vector_backend: backend.optional(),
    /** Gridded data of this tier (opened and checked; the record contract has no raster records yet). */
    raster_backend: backend.optional(),
    /** A fast lookup of this tier's objects by key, bbox and time next to the catalog (RedisIndex). */
    index_backend: redisBackendSchema.optional(),
    /** A read cache in front of this tier's object backends. */
    cache_settings: cacheSettingsSchema.optional(),
    compression: compression.default({ algorithm: 'zstd', level: 'medium' }),
    parquet: z
      .object({
        row_group_size: z.number().int().positive().default(65_536),
      })
      .strict()
      .default({}),
    /** How the tier is read (recorded for people and the migration planner). */
    access_pattern: z.enum(['realtime', 'frequent', 'batch', 'rare']).optional(),
    /** How long a read may take (archive tiers: hours or days, after a rehydration). */
    retrieval_time: z.enum(['milliseconds', 'seconds', 'minutes', 'hours', 'days']).optional(),
    backup_policy: backupPolicy.optional(),
    /** Overrides storage.encryption_enabled for this tier. */
    encryption_enabled: z.boolean().optional(),
  })
  .strict()
  .superRefine((tier, ctx) => {
    for (const role of ['primary_backend', 'vector_backend', 'raster_backend'] as const) {
      const b = tier[role];
      if (b === undefined || !('file_organization' in b)) continue;
      try {
        compileTemplate(b.file_organization);
      } catch (error) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [role, 'file_organization'], message: (error as Error).message });
      }
    }
    const isRecords = (RECORD_BACKENDS as readonly string[]).includes(tier.primary_backend.type);
    if (tier.backup_policy?.immutable && isRecords) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['backup_policy', 'immutable'],
        message: `immutable needs an object backend; ${tier.primary_backend.type} keeps rows, which the engine cannot lock`,
      });
    }
  });
export type TierConfig = z.output<typeof tierConfig>;

/** One aging policy: a MigrationJob the planner runs on every pass (the job file's keys, minus id). */
const agingPolicy = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'expected letters, digits, "_" or "-" (at most 64)'),
    /** One tier, or several that all move to the destination. */
    source_tier: z.union([z.enum(TIERS), z.array(z.enum(TIERS)).min(1)]).transform((t) => (Array.isArray(t) ? t : [t])),
    destination_tier: z.enum(TIERS),
    selection_criteria: selectionCriteriaSchema.default({}),
    validation: z.boolean().default(true),
    delete_after_migration: z.boolean().default(true),
    concurrency: z.number().int().positive().max(64).default(4),
    /** Merge small objects while moving (or in place, with the source tier as destination). */
    compact: z
      .object({ target_rows: z.number().int().positive().default(1_000_000), target_bytes: size.default(256 * 1024 * 1024) })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.source_tier.includes(p.destination_tier) && (p.compact === undefined || p.source_tier.length > 1)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['destination_tier'], message: 'is one of the policy\'s source tiers: a move needs two tiers (or one source tier and compact:, to merge in place)' });
    }
    if (p.delete_after_migration && !p.validation) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['validation'], message: 'must be true with delete_after_migration: a source is deleted only after its copy is verified' });
    }
  });

/** `aging:` — the aging stream: policies planned on a timer inside `earthmem run`, or by `earthmem age`. */
const agingSchema = z
  .object({
    /** How often a pass runs inside `earthmem run` (and `earthmem age` without --once). */
    interval: duration.default('10m'),
    /** For all moves of a pass together. */
    max_bytes_per_second: size.optional(),
    /** A job with no step done for this long is reported as stuck, with the object and step it waits on. */
    stuck_after: duration.default('10m'),
    /** An object that entered its tier less than this ago is not moved again (no flapping). */
    min_residence: duration.default('1 day'),
    policies: z.array(agingPolicy).min(1),
  })
  .strict()
  .superRefine((aging, ctx) => {
    if (aging.interval <= 0) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['interval'], message: 'must be longer than 0' });
    const seen = new Map<string, number>();
    aging.policies.forEach((p, i) => {
      if (seen.has(p.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['policies', i, 'name'], message: `"${p.name}" is also the name of policy ${seen.get(p.name)}` });
      seen.set(p.name, i);
    });
    // A cycle of policies (hot → warm, then promotion warm → hot) could move the same object back
    // and forth within one interval, unless an object stays in a tier at least an interval.
    // In-place compaction (a tier to itself) merges, it does not move back and forth.
    const edges = aging.policies.flatMap((p, i) => p.source_tier.filter((from) => from !== p.destination_tier).map((from) => ({ from, to: p.destination_tier, i })));
    const reaches = (from: string, to: string, seenTiers = new Set<string>()): boolean =>
      edges.some((e) => e.from === from && (e.to === to || (!seenTiers.has(e.to) && reaches(e.to, to, new Set([...seenTiers, e.to])))));
    aging.policies.forEach((p, i) => {
      if (aging.min_residence < aging.interval && p.source_tier.some((from) => from !== p.destination_tier && reaches(p.destination_tier, from))) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['policies', i],
          message: `policy "${p.name}" is part of a cycle (${p.source_tier.join('/')} → ${p.destination_tier} and back) and min_residence is shorter than interval: an object could move back and forth within one interval`,
        });
      }
    });
  });
export type AgingConfig = z.output<typeof agingSchema>;
export type AgingPolicy = AgingConfig['policies'][number];

export const pipelineSchema = z
  .object({
    /** Optional name, shown in logs. */
    name: z.string().optional(),
    source: z.discriminatedUnion('type', [fileSourceSchema, kafkaSourceSchema]),
    classify: z
      .object({
        rules: z.array(classifyRule).default([]),
        default: nonEmpty.default(DEAD_LETTER),
      })
      .strict()
      .default({}),
    routing: z
      .object({
        default: z.enum(TIERS).default('hot'),
        memory_types: z.record(nonEmpty, z.enum(TIERS)).default({}),
      })
      .strict()
      .default({}),
    batch: z
      .object({
        max_rows: z.number().int().positive().default(100_000),
        max_bytes: size.default(64 * 1024 * 1024),
        /** Latency bound for streaming sources; a bounded (file) replay flushes by rows and bytes only. */
        max_age: duration.default('30s'),
        /**
         * All open batches together; over it the largest is flushed early. Default: half of
         * max_in_flight_bytes. It must stay below that budget: open batches holding all of it
         * would flush nothing, and a file replay (no age flush) would wait forever.
         */
        max_open_bytes: size.optional(),
        /** Read payload bytes not yet durable; over it the source waits. */
        max_in_flight_bytes: size.default(64 * 1024 * 1024),
        /** Batches being encoded and written at once. */
        max_in_flight_batches: z.number().int().positive().max(64).default(2),
        /**
         * Worker threads that encode and compress objects (one pool per process, shared by the
         * tiers); 0 encodes on the main thread. Default: the CPUs less one (the main thread
         * parses), at least 1, at most 4.
         */
        encode_workers: z.number().int().min(0).max(32).default(() => Math.min(4, Math.max(1, availableParallelism() - 1))),
      })
      .strict()
      .superRefine((batch, ctx) => {
        if (batch.max_open_bytes !== undefined && batch.max_open_bytes >= batch.max_in_flight_bytes) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['max_open_bytes'],
            message: `max_open_bytes (${batch.max_open_bytes}) must be below max_in_flight_bytes (${batch.max_in_flight_bytes}): open batches holding the whole in-flight budget would never flush, and reading would wait forever`,
          });
        }
      })
      .transform(({ max_open_bytes, ...batch }) => ({ ...batch, max_open_bytes: max_open_bytes ?? Math.floor(batch.max_in_flight_bytes / 2) }))
      .default({}),
    storage: z
      .object({
        tier_configs: z
          .object(Object.fromEntries(TIERS.map((t) => [t, tierConfig.optional()])) as Record<TierName, z.ZodOptional<typeof tierConfig>>)
          .strict()
          .refine((tiers) => Object.values(tiers).some((t) => t !== undefined), 'expected at least one tier'),
        /** Client-side AES-256-GCM for every object tier (tiers may override). */
        encryption_enabled: z.boolean().default(false),
        /** The environment variable that holds the 256-bit key (base64 or hex); never the key itself. */
        encryption_key_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name').default('EARTHMEM_ENCRYPTION_KEY'),
      })
      .strict(),
    catalog: z.discriminatedUnion('type', [
      /** Embedded; one worker. */
      z.object({ type: z.literal('sqlite'), path: nonEmpty, ...retryShape }).strict(),
      /** Shared by several workers (a consumer group). */
      z
        .object({
          type: z.literal('postgresql'),
          connection_string: nonEmpty,
          schema: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'expected a lower-case SQL identifier').default('earthmem'),
          max_connections: z.number().int().positive().default(10),
          ...retryShape,
        })
        .strict(),
    ]),
    dead_letter: z.discriminatedUnion('type', [localFileDeadLetterSchema, kafkaDeadLetterSchema]),
    aging: agingSchema.optional(),
  })
  .strict()
  .superRefine((pipeline, ctx) => {
    const tiers = pipeline.storage.tier_configs;
    const check = (tier: TierName, path: (string | number)[]) => {
      if (tiers[tier] === undefined) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path,
          message: `tier "${tier}" has no storage.tier_configs.${tier}; configured: ${TIERS.filter((t) => tiers[t]).join(', ')}`,
        });
      }
    };
    check(pipeline.routing.default, ['routing', 'default']);
    for (const [memoryType, tier] of Object.entries(pipeline.routing.memory_types)) check(tier, ['routing', 'memory_types', memoryType]);
    pipeline.aging?.policies.forEach((p, i) => {
      p.source_tier.forEach((t, j) => check(t, ['aging', 'policies', i, 'source_tier', ...(p.source_tier.length > 1 ? [j] : [])]));
      check(p.destination_tier, ['aging', 'policies', i, 'destination_tier']);
    });
  });

export type PipelineConfig = z.output<typeof pipelineSchema>;

import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { COG_FORMATS, COG_KEYS, compression, duration, nonEmpty, retryShape, size } from '../config/common.js';
import { cogStorageSchema, fileSourceSchema, localFileBackendSchema, localFileDeadLetterSchema } from '../../connectors/local-file/config.js';
import { cogOptionsSchema, type CogOptions } from '../encoders/cog/config.js';
import { rasterFileSourceSchema } from '../../connectors/raster-file/config.js';
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
        kind: z.union([z.enum(['point', 'vector', 'raster']), z.array(z.enum(['point', 'vector', 'raster'])).min(1)]).optional(),
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
export const OBJECT_BACKENDS = ['local_file', 'network_file', 's3', 'gcs', 'azure_blob', 'redis', 'cog'] as const;
/** Object stores that can keep COGs: a raster_backend of one of these, or a primary_backend of one with `format: cog`. */
export const RASTER_BACKENDS = ['local_file', 's3', 'gcs', 'azure_blob', 'cog'] as const;
/** Backends that keep records as rows, documents or points (RecordStore). */
export const RECORD_BACKENDS = ['postgresql', 'postgis', 'sqlite', 'mongodb', 'influxdb'] as const;

const backendUnion = z.discriminatedUnion('type', [
  localFileBackendSchema,
  cogStorageSchema,
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
export type BackendConfig = z.output<typeof backendUnion>;
export type BackendInput = z.input<typeof backendUnion>;
// Named, so the tiers' declared types refer to it instead of spelling out the union 12 times.
const backend: z.ZodType<BackendConfig, z.ZodTypeDef, BackendInput> = backendUnion;

const isCogFormat = (format: unknown): boolean => (COG_FORMATS as readonly unknown[]).includes(format);

/** True when the backend writes COGs in the role it has: `type: cog`, `format: cog`, or any raster-capable object store as raster_backend. */
function writesCogs(b: BackendConfig, role: 'primary_backend' | 'vector_backend' | 'raster_backend'): boolean {
  if (!(RASTER_BACKENDS as readonly string[]).includes(b.type)) return false;
  return b.type === 'cog' || role === 'raster_backend' || ('format' in b && isCogFormat(b.format));
}

/** How a COG backend lays out and encodes scenes: its organization template and the COG encoder's options. */
export function cogLayoutOf(b: BackendConfig): { organization: string; options: CogOptions } {
  const keys = Object.fromEntries(COG_KEYS.filter((k) => k in b && (b as Record<string, unknown>)[k] !== undefined).map((k) => [k, (b as Record<string, unknown>)[k]]));
  const organization = 'organization' in b && b.organization !== undefined ? b.organization : 'file_organization' in b ? b.file_organization : 'sensor/year/month';
  return { organization, options: cogOptionsSchema.parse(keys) };
}

/** The backend a tier writes raster scenes to: raster_backend, else a primary backend that writes COGs; undefined if none. */
export function rasterRoleOf(tier: Pick<TierConfig, 'primary_backend' | 'raster_backend'>): 'raster_backend' | 'primary_backend' | undefined {
  if (tier.raster_backend !== undefined) return 'raster_backend';
  return writesCogs(tier.primary_backend, 'primary_backend') ? 'primary_backend' : undefined;
}

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

const tierConfigSchema = z
  .object({
    primary_backend: backend,
    /** Vector features (kind: vector) of this tier go here instead of primary_backend. */
    vector_backend: backend.optional(),
    /** Raster scenes of this tier (kind: raster), one COG each: local_file, s3, gcs, azure_blob or cog. */
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
      if (b === undefined) continue;
      const layout = b as Record<string, unknown>;
      for (const key of ['file_organization', 'organization'] as const) {
        if (typeof layout[key] !== 'string') continue;
        try {
          compileTemplate(layout[key] as string);
        } catch (error) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: [role, key], message: (error as Error).message });
        }
      }
      if (b.type !== 'cog' && layout.organization !== undefined && layout.file_organization !== 'year/month/dataset') {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [role, 'organization'], message: 'is the spec\'s name for file_organization: give one of them, not both' });
      }
      if (role === 'raster_backend' && !(RASTER_BACKENDS as readonly string[]).includes(b.type)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [role, 'type'], message: `${b.type} cannot keep COGs; a raster_backend is one of ${RASTER_BACKENDS.join(', ')}` });
        continue;
      }
      if (role === 'raster_backend' && 'format' in b && b.format !== 'parquet' && !isCogFormat(b.format)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [role, 'format'], message: `a raster_backend writes COGs: format cog (or leave it out), not ${String(b.format)}` });
      }
      if (writesCogs(b, role)) {
        const keys = Object.fromEntries(COG_KEYS.filter((k) => layout[k] !== undefined).map((k) => [k, layout[k]]));
        const parsed = cogOptionsSchema.safeParse(keys);
        if (!parsed.success) for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: [role, ...issue.path] } as z.IssueData);
      } else {
        for (const k of COG_KEYS) {
          if (layout[k] !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [role, k], message: `is a COG key: it needs format: cog (this backend writes ${String(layout.format ?? b.type)})` });
        }
      }
      if (role === 'vector_backend' && writesCogs(b, role)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [role, 'format'], message: 'a vector_backend keeps features: cog is for raster_backend or primary_backend' });
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
export type TierConfig = z.output<typeof tierConfigSchema>;
export type TierInput = z.input<typeof tierConfigSchema>;
const tierConfig: z.ZodType<TierConfig, z.ZodTypeDef, TierInput> = tierConfigSchema;

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
    source: z.discriminatedUnion('type', [fileSourceSchema, rasterFileSourceSchema, kafkaSourceSchema]),
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
        /** All open batches together; over it the largest is flushed early. */
        max_open_bytes: size.default(32 * 1024 * 1024),
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
    /** Raster scenes (kind: raster): each is assembled from its tiles into one COG. */
    raster: z
      .object({
        /** An incomplete scene is written this long after its first tile (missing blocks nodata, catalogued partial). */
        max_age: duration.default('10m'),
        /** Scenes assembled at once; a tile of one more waits until the oldest is written (partial). */
        max_open_scenes: z.number().int().positive().max(1024).default(16),
        /** Compressed tiles of a scene kept in memory before they spill to an unlinked temp file. */
        memory_per_scene: size.default(64 * 1024 * 1024),
        /** Where scenes spill (default: the OS temp folder). */
        tmp_dir: nonEmpty.optional(),
      })
      .strict()
      .default({}),
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
    // A rule for rasters must land on a tier that can write COGs.
    pipeline.classify.rules.forEach((rule, i) => {
      const kinds = rule.match.kind === undefined ? [] : Array.isArray(rule.match.kind) ? rule.match.kind : [rule.match.kind];
      if (!kinds.includes('raster')) return;
      const tierName = pipeline.routing.memory_types[rule.memory_type] ?? pipeline.routing.default;
      const tier = tiers[tierName];
      if (tier !== undefined && rasterRoleOf(tier) === undefined) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['classify', 'rules', i, 'memory_type'],
          message: `routes raster records to tier ${tierName}, which has no raster_backend and whose primary_backend (${tier.primary_backend.type}${'format' in tier.primary_backend ? `, format ${tier.primary_backend.format}` : ''}) does not write COGs`,
        });
      }
    });
    for (const [memoryType, tier] of Object.entries(pipeline.routing.memory_types)) check(tier, ['routing', 'memory_types', memoryType]);
    pipeline.aging?.policies.forEach((p, i) => {
      p.source_tier.forEach((t, j) => check(t, ['aging', 'policies', i, 'source_tier', ...(p.source_tier.length > 1 ? [j] : [])]));
      check(p.destination_tier, ['aging', 'policies', i, 'destination_tier']);
    });
  });

export type PipelineConfig = z.output<typeof pipelineSchema>;

import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { COG_FORMATS, COG_KEYS, compression, compressionAlgorithm, duration, nonEmpty, organizationOf, retryShape, size } from '../config/common.js';
import { rasterFileSourceSchema } from '../../connectors/raster-file/config.js';
import { cogStorageSchema, fileSourceSchema, localFileBackendSchema, localFileDeadLetterSchema, zarrBackendSchema } from '../../connectors/local-file/config.js';
import { cogOptionsSchema, type CogOptions } from '../encoders/cog/config.js';
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
import { compileTemplate, timeTokenOf } from '../stages/object-key.js';
import { ZARR_KEYS, zarrOptions } from '../config/zarr.js';
import { checkLevel } from '../encoders/zarr/codecs.js';
import { DEAD_LETTER } from '../stages/classify.js';
import { selectionCriteriaSchema } from '../config/selection.js';
import { canonicalFormat, foreignKeys, formatProblem, resolveFormat, type DefaultFormats } from '../encoders/registry.js';

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
export const OBJECT_BACKENDS = ['local_file', 'zarr', 'network_file', 's3', 'gcs', 'azure_blob', 'redis', 'cog'] as const;
/** Object stores that can keep raster records: a raster_backend of one of these (COGs, or Zarr with `format: zarr`), or a primary_backend of one with `format: cog` or `format: zarr`. */
export const RASTER_BACKENDS = ['local_file', 's3', 'gcs', 'azure_blob', 'cog', 'zarr'] as const;
/** Backends that keep records as rows, documents or points (RecordStore). */
export const RECORD_BACKENDS = ['postgresql', 'postgis', 'sqlite', 'mongodb', 'influxdb'] as const;

const backendSchema = z.discriminatedUnion('type', [
  localFileBackendSchema,
  zarrBackendSchema,
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
export type BackendConfig = z.output<typeof backendSchema>;
export type BackendConfigInput = z.input<typeof backendSchema>;
// Named, so declarations refer to it instead of spelling the union out where it is used.
const backend: z.ZodType<BackendConfig, z.ZodTypeDef, BackendConfigInput> = backendSchema;

const isCogFormat = (format: unknown): boolean => (COG_FORMATS as readonly unknown[]).includes(format);

/** True when the backend writes COGs in the role it has: `type: cog`, `format: cog`, or any raster-capable object store as raster_backend. */
function writesCogs(b: BackendConfig, role: 'primary_backend' | 'vector_backend' | 'raster_backend'): boolean {
  if (!(RASTER_BACKENDS as readonly string[]).includes(b.type) || writesZarr(b)) return false;
  return b.type === 'cog' || role === 'raster_backend' || ('format' in b && isCogFormat(b.format));
}

/** True when the backend keeps Zarr stores: `type: zarr`, or an object store with `format: zarr`. */
export function writesZarr(b: BackendConfig): boolean {
  return b.type === 'zarr' || ('format' in b && b.format === 'zarr');
}

/** How a COG backend lays out and encodes scenes: its organization template and the COG encoder's options. */
export function cogLayoutOf(b: BackendConfig): { organization: string; options: CogOptions } {
  const keys = Object.fromEntries(COG_KEYS.filter((k) => k in b && (b as Record<string, unknown>)[k] !== undefined).map((k) => [k, (b as Record<string, unknown>)[k]]));
  // The spec's COGStorage default layout, unless the backend names one (either name).
  const layout = b as { organization?: string | undefined; file_organization?: string | undefined };
  const organization = layout.organization ?? layout.file_organization ?? 'sensor/year/month';
  return { organization, options: cogOptionsSchema.parse(keys) };
}

/** The backend a tier writes raster records to: raster_backend, else a primary backend that writes COGs or Zarr; undefined if none. */
export function rasterRoleOf(tier: Pick<TierConfig, 'primary_backend' | 'raster_backend'>): 'raster_backend' | 'primary_backend' | undefined {
  if (tier.raster_backend !== undefined) return 'raster_backend';
  return writesCogs(tier.primary_backend, 'primary_backend') || writesZarr(tier.primary_backend) ? 'primary_backend' : undefined;
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
      const lb = b as Partial<Extract<BackendConfig, { type: 'local_file' }>>;
      try {
        compileTemplate(lb.file_organization ?? lb.organization ?? (lb.partition_cols === undefined ? 'year/month/dataset' : ''), lb.partition_cols);
      } catch (error) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [role, lb.file_organization === undefined && lb.organization !== undefined ? 'organization' : 'file_organization'], message: (error as Error).message });
      }
      if (role === 'raster_backend' && !(RASTER_BACKENDS as readonly string[]).includes(b.type)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [role, 'type'], message: `${b.type} cannot keep raster scenes; a raster_backend is one of ${RASTER_BACKENDS.join(', ')}` });
        continue;
      }
      if (role === 'raster_backend' && 'format' in b && b.format !== undefined && !isCogFormat(canonicalFormat(b.format)) && b.format !== 'zarr') {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [role, 'format'], message: `a raster_backend writes COGs (format cog, or leave it out) or Zarr (format zarr), not ${String(b.format)}` });
      }
      if (writesCogs(b, role)) {
        const keys = Object.fromEntries(COG_KEYS.filter((k) => layout[k] !== undefined).map((k) => [k, layout[k]]));
        const parsed = cogOptionsSchema.safeParse(keys);
        if (!parsed.success) for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: [role, ...issue.path] } as z.IssueData);
      } else {
        // `compression` is every format's key; the others are COG's own.
        for (const k of COG_KEYS.filter((key) => key !== 'compression')) {
          if (layout[k] !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [role, k], message: `is a COG key: it needs format: cog${layout.format === undefined ? '' : ` (this backend's format is ${String(layout.format)})`}` });
        }
      }
      if (role === 'vector_backend' && writesCogs(b, role)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [role, 'format'], message: 'a vector_backend keeps features: cog is for raster_backend or primary_backend' });
      }
    }
    for (const role of ['primary_backend', 'vector_backend', 'raster_backend'] as const) {
      const b = tier[role];
      if (b !== undefined) checkZarrKeys(b, [role], ctx);
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
// Interfaces, so declarations name them instead of spelling them out (tsc's declaration size limit).
export interface TierConfig extends z.output<typeof tierConfigSchema> {}
export interface TierConfigInput extends z.input<typeof tierConfigSchema> {}
// Named, so the pipeline schema's declaration refers to it instead of spelling it out per tier.
const tierConfig: z.ZodType<TierConfig, z.ZodTypeDef, TierConfigInput> = tierConfigSchema;

/** The cross-key rules of `format: zarr` (and `type: zarr`): its keys only with it, a time token in the layout, codecs that exist. */
function checkZarrKeys(b: BackendConfig, path: string[], ctx: z.RefinementCtx): void {
  const isZarr = b.type === 'zarr' || ('format' in b && b.format === 'zarr');
  const given = ZARR_KEYS.filter((k) => k in b && (b as Record<string, unknown>)[k] !== undefined);
  if (!isZarr) {
    for (const k of given) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...path, k], message: `${k} is a Zarr key: it needs format: zarr` });
    return;
  }
  if (b.type === 'redis' || b.type === 'network_file') {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...path, 'format'], message: `format: zarr is stored on local_file, s3, gcs or azure_blob (or type: zarr), not ${b.type}` });
    return;
  }
  const options = zarrOptions(b as Parameters<typeof zarrOptions>[0]);
  if (!['zstd', 'gzip', 'lz4', 'blosc', 'none'].includes(options.compression)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...path, 'compression'], message: `Zarr chunks are compressed with zstd (the default), gzip, lz4, blosc or none, not ${options.compression}` });
    return;
  }
  if (options.compression === 'lz4' && options.zarrFormat === 3) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...path, 'compression'], message: 'lz4 has no Zarr v3 codec: use zstd or gzip with zarr_format: 3' });
  const bad = checkLevel(options.compression, options.compressionLevel);
  if (bad !== null && given.includes('compression_level')) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...path, 'compression_level'], message: bad });
  if (options.timeStepMs <= 0) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...path, 'time_step'], message: 'must be longer than 0' });
  if ('file_organization' in b) {
    try {
      if (timeTokenOf(compileTemplate(organizationOf(b))) === null) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...path, 'file_organization'], message: 'format: zarr needs a time token ({year}, {month}, {day} or {hour}): a store covers one period, and its time index starts at the period\'s start' });
      }
    } catch {
      // reported with the layout's own message
    }
  }
}

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
const agingSchemaBase = z
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
export type AgingConfig = z.output<typeof agingSchemaBase>;
const agingSchema: z.ZodType<AgingConfig, z.ZodTypeDef, z.input<typeof agingSchemaBase>> = agingSchemaBase;
export type AgingPolicy = AgingConfig['policies'][number];

const sourceUnion = z.discriminatedUnion('type', [fileSourceSchema, rasterFileSourceSchema, kafkaSourceSchema]);
export type SourceConfig = z.output<typeof sourceUnion>;
const sourceSchema: z.ZodType<SourceConfig, z.ZodTypeDef, z.input<typeof sourceUnion>> = sourceUnion;
const deadLetterUnion = z.discriminatedUnion('type', [localFileDeadLetterSchema, kafkaDeadLetterSchema]);
export type DeadLetterConfig = z.output<typeof deadLetterUnion>;
const deadLetterSchema: z.ZodType<DeadLetterConfig, z.ZodTypeDef, z.input<typeof deadLetterUnion>> = deadLetterUnion;

const pipelineSchemaBase = z
  .object({
    /** Optional name, shown in logs. */
    name: z.string().optional(),
    source: sourceSchema,
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
        /**
         * The spec's default formats: what an object backend without `format` stores each kind of
         * record as (a point record is a time series). Resolution: the backend's `format`, else
         * this default for the record's kind (src/encoders/registry.ts resolveFormat).
         */
        default_vector_format: nonEmpty.default('parquet'),
        default_raster_format: nonEmpty.default('cog'),
        default_timeseries_format: nonEmpty.default('parquet'),
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
    dead_letter: deadLetterSchema,
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
    const reaching = kindsReaching(pipeline);
    for (const tierName of TIERS) {
      const tier = tiers[tierName];
      if (tier !== undefined) checkFormats(tier, pipeline.storage, ['storage', 'tier_configs', tierName], ctx, reaching.get(tierName) ?? new Set());
    }
    // A rule for rasters must land on a tier that can write COGs or Zarr.
    pipeline.classify.rules.forEach((rule, i) => {
      const kinds = rule.match.kind === undefined ? [] : Array.isArray(rule.match.kind) ? rule.match.kind : [rule.match.kind];
      if (!kinds.includes('raster')) return;
      const tierName = pipeline.routing.memory_types[rule.memory_type] ?? pipeline.routing.default;
      const tier = tiers[tierName];
      if (tier !== undefined && rasterRoleOf(tier) === undefined) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['classify', 'rules', i, 'memory_type'],
          message: `routes raster records to tier ${tierName}, which has no raster_backend and whose primary_backend (${tier.primary_backend.type}${'format' in tier.primary_backend ? `, format ${tier.primary_backend.format}` : ''}) writes neither COGs nor Zarr`,
        });
      }
    });
    for (const [memoryType, tier] of Object.entries(pipeline.routing.memory_types)) check(tier, ['routing', 'memory_types', memoryType]);
    pipeline.aging?.policies.forEach((p, i) => {
      p.source_tier.forEach((t, j) => check(t, ['aging', 'policies', i, 'source_tier', ...(p.source_tier.length > 1 ? [j] : [])]));
      check(p.destination_tier, ['aging', 'policies', i, 'destination_tier']);
    });
  });

export type PipelineConfig = z.output<typeof pipelineSchemaBase>;
export type PipelineConfigInput = z.input<typeof pipelineSchemaBase>;
/** Annotated with named types: spelled out, its declaration is longer than tsc serializes. */
export const pipelineSchema: z.ZodType<PipelineConfig, z.ZodTypeDef, PipelineConfigInput> = pipelineSchemaBase;

/**
 * The formats of a tier's object backends, resolved per kind of record they receive, checked
 * against the format registry (the one list of formats): unknown or unregistered formats, a
 * database named as a file format, a format that cannot store the kind (CSV and vectors), and
 * format keys the format does not take.
 */
type StoredKind = 'point' | 'vector';
interface Reachable {
  classify: { rules: { match: { kind?: string | string[] | undefined }; memory_type: string }[]; default: string };
  routing: { default: TierName; memory_types: Record<string, TierName> };
  aging?: { policies: { source_tier: TierName[]; destination_tier: TierName }[] } | undefined;
}

/**
 * The kinds of record that can reach each tier: by classify rules (a rule without `kind` passes
 * every kind), the classify default, and aging moves out of tiers they reach. A format that
 * cannot store a kind is an error only where that kind can arrive.
 */
function kindsReaching(pipeline: Reachable): Map<TierName, Set<StoredKind>> {
  const all: StoredKind[] = ['point', 'vector'];
  const reaching = new Map<TierName, Set<StoredKind>>();
  const add = (tier: TierName, kinds: readonly string[]) => {
    const set = reaching.get(tier) ?? new Set<StoredKind>();
    for (const k of kinds) if ((all as string[]).includes(k)) set.add(k as StoredKind);
    reaching.set(tier, set);
  };
  const tierOf = (memoryType: string) => pipeline.routing.memory_types[memoryType] ?? pipeline.routing.default;
  for (const rule of pipeline.classify.rules) {
    const kinds = rule.match.kind === undefined ? all : Array.isArray(rule.match.kind) ? rule.match.kind : [rule.match.kind];
    add(tierOf(rule.memory_type), kinds);
  }
  if (pipeline.classify.default !== DEAD_LETTER) add(tierOf(pipeline.classify.default), all);
  for (let changed = true; changed; ) {
    changed = false;
    for (const p of pipeline.aging?.policies ?? []) {
      const before = reaching.get(p.destination_tier)?.size ?? 0;
      for (const from of p.source_tier) add(p.destination_tier, [...(reaching.get(from) ?? [])]);
      if ((reaching.get(p.destination_tier)?.size ?? 0) !== before) changed = true;
    }
  }
  return reaching;
}

function checkFormats(tier: TierConfig, defaults: DefaultFormats, path: (string | number)[], ctx: z.RefinementCtx, reaching: ReadonlySet<StoredKind>): void {
  for (const role of ['primary_backend', 'vector_backend'] as const) {
    const b = tier[role];
    if (b === undefined) continue;
    const issue = (key: string, message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...path, role, key], message });
    if (b.type !== 'zarr' && !(OBJECT_BACKENDS as readonly string[]).includes(b.type)) {
      if ('format' in b && b.format !== undefined) issue('format', `${b.type} keeps rows, not files: format does not apply`);
      continue;
    }
    // The spec's ZarrStorage is a backend type whose format is zarr.
    const own = b.type === 'zarr' ? 'zarr' : 'format' in b ? b.format : undefined;
    const said = new Set<string>();
    for (const kind of kindsFor(role, tier)) {
      if (!reaching.has(kind)) continue;
      const { format, from } = resolveFormat(kind, own, defaults);
      const problem = formatProblem(kind, format);
      if (problem === undefined || said.has(problem)) continue;
      said.add(problem);
      const hint = kind === 'vector' && own !== undefined && role === 'primary_backend' ? '; vectors of this tier can go to a vector_backend with another format' : '';
      issue('format', from === 'format' ? `${problem}${hint}` : `${kind} records get storage.${from} (${format}): ${problem}`);
    }
    const lb = b as Extract<BackendConfig, { type: 'local_file' }>;
    if (lb.file_organization !== undefined && lb.organization !== undefined) issue('organization', 'is another name for file_organization: give one of them');
    const formatsUsed = new Set(kindsFor(role, tier).map((kind) => resolveFormat(kind, own, defaults).format));
    for (const format of formatsUsed) {
      for (const key of foreignKeys(format, { compression: lb.compression, validation: lb.validation, layout: lb.layout, partition_cols: lb.partition_cols, row_group_size: lb.row_group_size, page_size: lb.page_size })) {
        issue(key, `format ${format} does not take ${key}`);
      }
      const codecs: readonly string[] | undefined = canonicalFormat(format) === 'parquet' || canonicalFormat(format) === 'geoparquet' ? compressionAlgorithm.options : undefined;
      if (lb.compression !== undefined && codecs !== undefined && !codecs.includes(lb.compression)) issue('compression', `format ${format} compresses with ${codecs.join(', ')}, not ${lb.compression}`);
      if ((canonicalFormat(format) === 'geojson' || canonicalFormat(format) === 'csv') && lb.compression !== undefined && lb.compression !== 'gzip' && lb.compression !== 'none') {
        issue('compression', `${format} is compressed as a whole file: gzip or none`);
      }
    }
  }
}

const kindsFor = (role: 'primary_backend' | 'vector_backend', tier: TierConfig): ('point' | 'vector')[] =>
  role === 'vector_backend' ? ['vector'] : tier.vector_backend === undefined ? ['point', 'vector'] : ['point'];

/** What each tier stores each kind of record as, for `earthmem validate`: `hot point: csv (default_timeseries_format)`. */
export function resolvedFormats(config: PipelineConfig): string[] {
  const lines: string[] = [];
  for (const name of TIERS) {
    const tier = config.storage.tier_configs[name];
    if (tier === undefined) continue;
    for (const [kind, role] of [['point', 'primary_backend'], ['vector', tier.vector_backend === undefined ? 'primary_backend' : 'vector_backend'], ['raster', 'raster_backend']] as const) {
      const b = tier[role];
      if (b === undefined) continue;
      if (!(OBJECT_BACKENDS as readonly string[]).includes(b.type)) {
        lines.push(`${name} ${kind}: ${b.type} rows (${role})`);
        continue;
      }
      const { format, from } = resolveFormat(kind, 'format' in b ? b.format : undefined, config.storage);
      const problem = formatProblem(kind, format);
      lines.push(`${name} ${kind}: ${format}${canonicalFormat(format) === format ? '' : ` (${canonicalFormat(format)})`} (${from === 'format' ? `${role}.format` : `storage.${from}`})${problem === undefined ? '' : ` — ${problem}`}`);
    }
  }
  return lines;
}

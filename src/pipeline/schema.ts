import { z } from 'zod';
import { compression, duration, nonEmpty, size } from '../config/common.js';
import { fileSourceSchema, localFileBackendSchema, localFileDeadLetterSchema } from '../../connectors/local-file/config.js';
import { kafkaDeadLetterSchema, kafkaSourceSchema } from '../../connectors/kafka/config.js';
import { compileTemplate } from '../stages/object-key.js';
import { DEAD_LETTER } from '../stages/classify.js';

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

const backend = z.discriminatedUnion('type', [localFileBackendSchema]);

const tierConfig = z
  .object({
    primary_backend: backend,
    compression: compression.default({ algorithm: 'zstd', level: 'medium' }),
    parquet: z
      .object({
        row_group_size: z.number().int().positive().default(65_536),
      })
      .strict()
      .default({}),
  })
  .strict()
  .superRefine((tier, ctx) => {
    try {
      compileTemplate(tier.primary_backend.file_organization);
    } catch (error) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['primary_backend', 'file_organization'],
        message: (error as Error).message,
      });
    }
  });
export type TierConfig = z.output<typeof tierConfig>;

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
        /** All open batches together; over it the largest is flushed early. */
        max_open_bytes: size.default(32 * 1024 * 1024),
        /** Read payload bytes not yet durable; over it the source waits. */
        max_in_flight_bytes: size.default(64 * 1024 * 1024),
        /** Batches being encoded and written at once. */
        max_in_flight_batches: z.number().int().positive().max(64).default(2),
      })
      .strict()
      .default({}),
    storage: z
      .object({
        tier_configs: z
          .object(Object.fromEntries(TIERS.map((t) => [t, tierConfig.optional()])) as Record<TierName, z.ZodOptional<typeof tierConfig>>)
          .strict()
          .refine((tiers) => Object.values(tiers).some((t) => t !== undefined), 'expected at least one tier'),
      })
      .strict(),
    catalog: z.discriminatedUnion('type', [
      /** Embedded; one worker. */
      z.object({ type: z.literal('sqlite'), path: nonEmpty }).strict(),
      /** Shared by several workers (a consumer group). */
      z
        .object({
          type: z.literal('postgresql'),
          connection_string: nonEmpty,
          schema: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'expected a lower-case SQL identifier').default('earthmem'),
          max_connections: z.number().int().positive().default(10),
        })
        .strict(),
    ]),
    dead_letter: z.discriminatedUnion('type', [localFileDeadLetterSchema, kafkaDeadLetterSchema]),
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
  });

export type PipelineConfig = z.output<typeof pipelineSchema>;

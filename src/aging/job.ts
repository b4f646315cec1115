import { z } from 'zod';
import { size } from '../config/common.js';
import { selectionCriteriaSchema } from '../config/selection.js';
import { TIERS } from '../pipeline/schema.js';

/** `compact: {target_rows, target_bytes}`: merged objects grow up to either limit. */
export const compactSchema = z
  .object({
    target_rows: z.number().int().positive().default(1_000_000),
    target_bytes: size.default(256 * 1024 * 1024),
  })
  .strict();

/**
 * The spec's MigrationJob, as a job file (`earthmem migrate PIPELINE.yaml JOB.yaml`) or the
 * library's `codex.executeMigration(job)`. The single source of its validation and defaults.
 */
export const migrationJobSchema = z
  .object({
    /** Running a job whose id exists resumes it. Default: source-to-destination and the time. */
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected letters, digits, ".", "_" or "-" (at most 128)').optional(),
    source_tier: z.enum(TIERS),
    destination_tier: z.enum(TIERS),
    selection_criteria: selectionCriteriaSchema.default({}),
    /** Read every copy back from the destination and check it before anything is deleted. */
    validation: z.boolean().default(true),
    delete_after_migration: z.boolean().default(true),
    /** Switch the catalog (and the tiers' indexes) to the copy. false: keep a verified copy only. */
    metadata_update: z.boolean().default(true),
    /** Bytes copied per second by this job, all objects together. */
    max_bytes_per_second: size.optional(),
    /** Objects moved at once. */
    concurrency: z.number().int().positive().max(64).default(4),
    /** Merge small objects while moving: consecutive objects of one batch identity, up to these sizes. */
    compact: compactSchema.optional(),
  })
  .strict()
  .superRefine((job, ctx) => {
    if (job.source_tier === job.destination_tier && job.compact === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['destination_tier'], message: 'is the source_tier: a move needs two tiers (or compact:, to merge in place)' });
    }
    if (!job.metadata_update && job.delete_after_migration) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['delete_after_migration'],
        message: 'needs metadata_update: true (the catalog must point at the copy before the source goes)',
      });
    }
    if (job.delete_after_migration && !job.validation) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['validation'], message: 'must be true with delete_after_migration: a source is deleted only after its copy is verified' });
    }
  });

export type MigrationJobInput = z.input<typeof migrationJobSchema>;
export type MigrationJobSpec = z.output<typeof migrationJobSchema>;

export { resolveTime, type PointInTime, type SelectionCriteria } from '../config/selection.js';

import { z } from 'zod';
import { nonEmpty, size } from '../config/common.js';
import { parseDuration } from '../config/units.js';
import { TIERS } from '../pipeline/schema.js';

/** A point in time as a job file gives it: RFC 3339, or a duration before now ("30 days ago"). */
export type PointInTime = { at: number } | { ago: number };

const pointInTime = z.union([z.string(), z.date()]).transform((value, ctx): PointInTime => {
  if (value instanceof Date) return { at: value.getTime() };
  if (/\bago\s*$/.test(value)) {
    const ms = parseDuration(value);
    if (ms !== undefined) return { ago: ms };
  } else if (/^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?(Z|[+-]\d\d:?\d\d)?$/.test(value.trim())) {
    const at = Date.parse(value);
    if (Number.isFinite(at)) return { at };
  }
  ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'expected an RFC 3339 time such as 2026-11-01T00:00:00Z, or a duration before now such as "30 days ago"' });
  return z.NEVER;
});

export function resolveTime(point: PointInTime, nowMs: number): number {
  return 'at' in point ? point.at : nowMs - point.ago;
}

/** The spec's `selection_criteria`: every criterion given must hold. */
export const selectionCriteriaSchema = z
  .object({
    /** Objects last read before then (never-read objects: created before then). */
    last_accessed_before: pointInTime.optional(),
    created_before: pointInTime.optional(),
    /** Objects whose newest observation (time_max) is before then. */
    time_before: pointInTime.optional(),
    memory_types: z.array(nonEmpty).min(1).optional(),
    datasets: z.array(nonEmpty).min(1).optional(),
    min_size: size.optional(),
    max_size: size.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.min_size !== undefined && c.max_size !== undefined && c.min_size > c.max_size) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['max_size'], message: 'max_size is below min_size: nothing could be selected' });
    }
  });
export type SelectionCriteria = z.output<typeof selectionCriteriaSchema>;

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
  })
  .strict()
  .superRefine((job, ctx) => {
    if (job.source_tier === job.destination_tier) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['destination_tier'], message: 'is the source_tier: a move needs two tiers' });
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

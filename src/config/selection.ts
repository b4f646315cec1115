import { z } from 'zod';
import { nonEmpty, size } from './common.js';
import { parseDuration } from './units.js';

/** A point in time as a job or policy gives it: RFC 3339, or a duration before now ("30 days ago"). */
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

/** `accessed_at_least: 5 times in 1 day`: objects read at least that often within the window before now. */
const accessFrequency = z.string().transform((value, ctx) => {
  const match = /^\s*(\d+)\s*times?\s+in\s+(.+)$/.exec(value);
  const windowMs = match ? parseDuration(match[2]!) : undefined;
  if (!match || windowMs === undefined || windowMs <= 0 || Number(match[1]) < 1) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'expected "N times in DURATION", such as "5 times in 1 day"' });
    return z.NEVER;
  }
  return { times: Number(match[1]), windowMs };
});

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
    /** Objects read at least N times within the window (promotion on access); reads counted per hour. */
    accessed_at_least: accessFrequency.optional(),
    /** Objects that entered their tier before then (the aging stream's minimum residence). */
    in_tier_before: pointInTime.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.min_size !== undefined && c.max_size !== undefined && c.min_size > c.max_size) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['max_size'], message: 'max_size is below min_size: nothing could be selected' });
    }
  });
export type SelectionCriteria = z.output<typeof selectionCriteriaSchema>;


import { z } from 'zod';
import { zarrShape } from '../../src/config/zarr.js';
import { cogKeyShape, duration, nonEmpty, objectLayoutShape, size, retryShape } from '../../src/config/common.js';

const MiB = 1024 * 1024;

/** `type: s3` — S3Storage: a bucket on Amazon S3 or an S3-compatible server. */
export const s3BackendSchema = z
  .object({
    type: z.literal('s3'),
    bucket: nonEmpty,
    /** e.g. us-west-2; S3-compatible servers usually take us-east-1. */
    region: nonEmpty,
    /** Endpoint URL of an S3-compatible server (`http://127.0.0.1:19000`); omit for AWS. */
    endpoint: z.string().url().optional(),
    /** Prepended to every key (`data/`); an empty prefix uses the bucket root. */
    prefix: z.string().default(''),
    /** S3 storage class of new objects (STANDARD, STANDARD_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE …), sent as is. */
    storage_class: nonEmpty.optional(),
    /** Server-side encryption requested on every write; `kms_key_id` only with `aws:kms`. */
    encryption: z
      .object({
        algorithm: z.enum(['AES256', 'aws:kms']),
        kms_key_id: nonEmpty.nullish(),
      })
      .strict()
      .refine((e) => e.algorithm === 'aws:kms' || e.kms_key_id == null, {
        message: 'kms_key_id needs algorithm aws:kms',
        path: ['kms_key_id'],
      })
      .optional(),
    /** Static credentials (write `${ENV}` in YAML); omitted: the SDK's chain (AWS_* env, profile, instance role). */
    credentials: z
      .object({
        aws_access_key_id: nonEmpty,
        aws_secret_access_key: nonEmpty,
        aws_session_token: nonEmpty.optional(),
      })
      .strict()
      .optional(),
    /** Path-style URLs (`endpoint/bucket/key`); default: true when `endpoint` is set. */
    force_path_style: z.boolean().optional(),
    /** Multipart part size; S3 needs at least 5 MiB (and at most 10 000 parts per object). */
    part_size: size.pipe(z.number().int().min(5 * MiB, 'part_size must be at least 5MiB')).default(8 * MiB),
    /** Parts uploaded at once; memory held is about part_size × (this + 1). */
    max_concurrent_parts: z.number().int().min(1).max(64).default(4),
    /** TCP connect timeout. */
    connect_timeout: duration.default('10s'),
    /** Per-request timeout, waiting for the response (a part upload counts as one request). */
    request_timeout: duration.default('120s'),
    ...objectLayoutShape,
    // format: zarr (the spec's ZarrStorage keys).
    ...zarrShape,
    // format: cog (the spec's COGStorage keys).
    ...cogKeyShape,
    ...retryShape,
  })
  .strict();
export type S3BackendConfig = z.output<typeof s3BackendSchema>;

import { z } from 'zod';
import { zarrShape } from '../../src/config/zarr.js';
import { cogKeyShape, duration, nonEmpty, objectLayoutShape, size, retryShape } from '../../src/config/common.js';

const MiB = 1024 * 1024;
/** GCS resumable uploads take chunks in multiples of 256 KiB (except the last one). */
const chunkQuantum = 256 * 1024;

/** `type: gcs` — GCSStorage: objects in a Google Cloud Storage bucket (or an emulator of its JSON API). */
export const gcsBackendSchema = z
  .object({
    type: z.literal('gcs'),
    /** The bucket; it must exist (the backend never creates or changes buckets). */
    bucket: nonEmpty,
    /** The Google Cloud project (billing and quota); optional with a service-account key, which names its own. */
    project: nonEmpty.optional(),
    /** Key prefix inside the bucket, e.g. `archive/`; a missing trailing `/` is added. */
    prefix: z.string().default(''),
    /**
     * Path of a service-account JSON key. Without it, Application Default Credentials are used
     * (GOOGLE_APPLICATION_CREDENTIALS, gcloud auth, the metadata server).
     */
    credentials_file: nonEmpty.optional(),
    /**
     * API endpoint for emulators or private endpoints, e.g. `http://127.0.0.1:19443`. Requests to
     * a custom endpoint carry no credentials unless `credentials_file` is set.
     */
    endpoint: z.string().url().optional(),
    /** Storage class written with each object unless the tier asks for another access tier. */
    storage_class: z.enum(['STANDARD', 'NEARLINE', 'COLDLINE', 'ARCHIVE']).default('STANDARD'),
    /** Expected bucket location (e.g. `us-central1`); checked against the bucket on first use. */
    location: nonEmpty.optional(),
    /** Expected uniform bucket-level access; checked against the bucket on first use when set. */
    uniform_access_control: z.boolean().optional(),
    /** Bodies larger than this, and streams that turn out larger, use a resumable upload. */
    resumable_threshold: size.default(8 * MiB),
    /** Size of each resumable-upload request; memory held per upload. A multiple of 256 KiB. */
    chunk_size: size
      .refine((bytes) => bytes > 0 && bytes % chunkQuantum === 0, 'expected a positive multiple of 256KiB, e.g. "16MiB"')
      .default(16 * MiB),
    /** A request (or a stalled upload) that shows no progress for this long fails, retriable. */
    request_timeout: duration.default('60s'),
    ...objectLayoutShape,
    // format: zarr (the spec's ZarrStorage keys).
    ...zarrShape,
    // format: cog (the spec's COGStorage keys).
    ...cogKeyShape,
    ...retryShape,
  })
  .strict();
export type GCSBackendConfig = z.output<typeof gcsBackendSchema>;

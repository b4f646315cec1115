import { z } from 'zod';
import { zarrShape } from '../../src/config/zarr.js';
import { cogKeyShape, objectLayoutShape, size, retryShape } from '../../src/config/common.js';

const MiB = 1024 * 1024;
/** Azure's largest block (service version 2019-12-12 and later). */
const maxBlockBytes = 4000 * MiB;

/**
 * `type: azure_blob` — AzureBlobStorage: block blobs in one container of an Azure Storage account
 * (or Azurite). Credentials, first found wins: `connection_string`, the environment variable
 * AZURE_STORAGE_CONNECTION_STRING, or the account key in AZURE_STORAGE_KEY (with `endpoint`).
 */
export const azureBlobBackendSchema = z
  .object({
    type: z.literal('azure_blob'),
    /** Storage account name (3–24 lowercase letters and digits). */
    account: z.string().regex(/^[a-z0-9]{3,24}$/, 'expected a storage account name: 3-24 lowercase letters and digits'),
    /** Container of the tier; it must exist (creating containers is an administrator's job). */
    container: z
      .string()
      .regex(
        /^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/,
        'expected a container name: 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit',
      ),
    /** Blob-name prefix for every key; a "/" is added when missing ("sentinel" → "sentinel/"). */
    prefix: z
      .string()
      .default('')
      .transform((prefix) => (prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`)),
    /** Secret. Write `${AZURE_CONNECTION_STRING}` and keep the value in the environment. */
    connection_string: z.string().min(1).optional(),
    /**
     * Blob service URL for the account-key credential (AZURE_STORAGE_KEY); default
     * https://<account>.blob.core.windows.net. Not used with a connection string.
     */
    endpoint: z.string().url().optional(),
    /** Tier every write lands in; `PutOptions.accessTier` overrides it per object. */
    access_tier: z.enum(['hot', 'cool', 'cold', 'archive']).default('hot'),
    /** Bodies larger than this go up as blocks of this size (Put Block + Put Block List). */
    block_size: size
      .refine((bytes) => bytes >= 1 && bytes <= maxBlockBytes, `expected a block size from 1 byte to 4000MiB`)
      .default(8 * MiB),
    /** Blocks uploaded at the same time; memory in flight is about this × block_size. */
    max_concurrent_blocks: z.number().int().min(1).max(64).default(4),
    ...objectLayoutShape,
    // format: zarr (the spec's ZarrStorage keys).
    ...zarrShape,
    // format: cog (the spec's COGStorage keys).
    ...cogKeyShape,
    ...retryShape,
  })
  .strict();
export type AzureBlobBackendConfig = z.output<typeof azureBlobBackendSchema>;

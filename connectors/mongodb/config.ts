import { z } from 'zod';
import { duration, nonEmpty, objectLayoutShape, retryShape } from '../../src/config/common.js';

/** How many members must acknowledge a write (MongoDB's `{w, j, wtimeout}`). */
const writeConcernSchema = z
  .object({
    /** A member count, `majority`, or a replica-set tag name. */
    w: z.union([z.number().int().nonnegative(), nonEmpty]).default('majority'),
    /** Wait until the write is in the on-disk journal. */
    j: z.boolean().optional(),
    /** Give up waiting for the acknowledgements after this long (`5s`, or milliseconds). */
    wtimeout: duration.optional(),
  })
  .strict();

/**
 * `type: mongodb` — the spec's MongoDBStorage: encoded objects as 1 MiB chunk documents, and
 * records as one document each (GeoJSON geometry) in one collection per memory type.
 * A plain zod object (no refinements) so the pipeline can put it in its discriminated union.
 */
export const mongodbBackendSchema = z
  .object({
    type: z.literal('mongodb'),
    /**
     * `mongodb://user:password@host:port/database?options` (write `${MONGODB_URL}` in the YAML). Driver
     * options such as `serverSelectionTimeoutMS` or `authSource` go in its query string.
     */
    connection_string: nonEmpty,
    /** Database of the collections; default: the one named in the connection string, else `earth_memory`. */
    database: nonEmpty.optional(),
    /** Prefix of every collection: `<prefix><MemoryType>` for records, `<prefix>objects.*`, `<prefix>records.keys`. */
    collection_prefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]*$/, 'expected letters, digits, _ or - (MongoDB collection names)')
      .default('memory_'),
    /** Write concern sent with every write (the spec's `{w: majority}` by default). */
    write_concern: writeConcernSchema.default({ w: 'majority' }),
    /** Read concern level sent with every read. */
    read_concern: z.enum(['local', 'majority', 'available', 'linearizable', 'snapshot']).default('majority'),
    /**
     * A 2dsphere index on every record collection's `geometry`. Needs a server that has them (MongoDB;
     * FerretDB 1.x has none, so writes then fail); MongoDB then also rejects geometries it finds invalid.
     */
    spatial_index: z.boolean().default(false),
    /** Most connections the driver opens to one server. */
    max_pool_size: z.number().int().positive().default(10),
    ...objectLayoutShape,
    ...retryShape,
  })
  .strict();
export type MongodbBackendConfig = z.output<typeof mongodbBackendSchema>;

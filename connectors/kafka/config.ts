import { z } from 'zod';
import { duration, nonEmpty, retryShape, size } from '../../src/config/common.js';

/** Connection settings shared by the Kafka source, the Kafka dead letter and `earthmem produce`. */
export const kafkaConnectionShape = {
  /** `host:port` list; a single comma-separated string (e.g. from `${KAFKA_BROKERS}`) is split. */
  brokers: z
    .union([nonEmpty, z.array(nonEmpty).min(1)])
    .transform((b) => (Array.isArray(b) ? b : b.split(',').map((s) => s.trim()).filter(Boolean))),
  client_id: z.string().default('earthmem'),
  ssl: z
    .union([
      z.boolean(),
      z
        .object({
          ca_file: z.string().optional(),
          cert_file: z.string().optional(),
          key_file: z.string().optional(),
          reject_unauthorized: z.boolean().default(true),
        })
        .strict(),
    ])
    .optional(),
  sasl: z
    .object({
      mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
      username: nonEmpty,
      password: nonEmpty,
    })
    .strict()
    .optional(),
  connection_timeout: duration.default('10s'),
  request_timeout: duration.default('30s'),
};

const startSchema = z.union([
  z.enum(['earliest', 'latest']),
  z.object({ timestamp: z.union([nonEmpty, z.number()]) }).strict(),
  /** Explicit offsets per topic and partition: `{offsets: {topic: {0: 42, 1: 17}}}`. */
  z.object({ offsets: z.record(nonEmpty, z.record(z.string().regex(/^\d+$/), z.number().int().nonnegative())) }).strict(),
]);

/** `type: kafka` — a consumer group reading JSON records (the record contract) from topics. */
export const kafkaSourceSchema = z
  .object({
    type: z.literal('kafka'),
    ...kafkaConnectionShape,
    topics: z.array(nonEmpty).min(1),
    group_id: nonEmpty,
    /** Where a group with no committed offset starts. */
    start: startSchema.default('earliest'),
    /** What a message value is: a JSON record, or a raster tile envelope (src/records/schemas/raster-tile.md). */
    format: z.enum(['json', 'raster_tile']).default('json'),
    /** Records over this go to the dead letter as `too_large`: a JSON message's bytes, a raster tile's decompressed pixels. */
    max_record_bytes: size.default(1024 * 1024),
    session_timeout: duration.default('30s'),
    heartbeat_interval: duration.default('3s'),
    /** How often committable offsets are sent to Kafka. */
    commit_interval: duration.default('1s'),
    /** How often `earthmem run` logs the group's lag per partition; 0 turns the line off. */
    lag_log_interval: duration.default('10s'),
    /** No batch for this long while assigned partitions have unread messages: the consumer is replaced. */
    stall_timeout: duration.default('60s'),
    /** Bytes fetched per partition per request. */
    max_bytes_per_partition: size.default(1024 * 1024),
    /**
     * How long the broker holds a fetch that has no data yet (Kafka's fetch.max.wait.ms). kafkajs
     * also sleeps this long when every partition is paused, so a consumer paused for backpressure
     * resumes only after it: kafkajs's 5 s default stalled a backlog for seconds at a time.
     */
    max_wait: duration.default('500ms'),
  })
  .strict();
export type KafkaSourceConfig = z.output<typeof kafkaSourceSchema>;

/** `type: kafka` dead letter — original bytes as value; reason, message and position in headers. */
export const kafkaDeadLetterSchema = z
  .object({
    type: z.literal('kafka'),
    ...kafkaConnectionShape,
    topic: nonEmpty,
    /** How long a flush that fails is retried (the entries are kept and resent) before the run fails. */
    ...retryShape,
  })
  .strict();
export type KafkaDeadLetterConfig = z.output<typeof kafkaDeadLetterSchema>;

export type KafkaConnectionConfig = Pick<KafkaSourceConfig, keyof typeof kafkaConnectionShape>;

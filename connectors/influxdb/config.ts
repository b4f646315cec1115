import { z } from 'zod';
import { duration, nonEmpty, retryShape } from '../../src/config/common.js';

/**
 * `type: influxdb` — the spec's InfluxDBStorage: point records as InfluxDB points (a record
 * store, not an object store). A plain zod object (no refinements) so the pipeline can put it in
 * its discriminated union; `influxdbConfigProblems` checks the rules that span several keys.
 */
export const influxdbBackendSchema = z
  .object({
    type: z.literal('influxdb'),
    /** `http://host:8086` (a path prefix behind a proxy is kept). Credentials do not go here. */
    url: z.string().url('expected an http(s) URL such as http://127.0.0.1:8086'),
    /** 2.x API token (write `${INFLUXDB_TOKEN}`); on the 1.x API `username:password` is accepted too. */
    token: nonEmpty.optional(),
    /** 1.x user (basic auth). */
    username: nonEmpty.optional(),
    /** 1.x password (write `${INFLUXDB_PASSWORD}`). */
    password: z.string().optional(),
    /** 2.x organization (name or id); required by the 2.x API. */
    org: nonEmpty.optional(),
    /** 2.x bucket; on 1.x `database` or `database/retention_policy`. */
    bucket: nonEmpty,
    /** Measurements are `<prefix><MemoryType>`. */
    measurement_prefix: z
      .string()
      .regex(/^[A-Za-z0-9_.-]*$/, 'expected letters, digits, _ . or -')
      .default('earth_'),
    /** `auto` asks the server's /ping for its version: 2.x → v2 API, 1.x → v1 API. */
    api: z.enum(['auto', 'v1', 'v2']).default('auto'),
    /** Points per write request. */
    batch_points: z.number().int().positive().default(5000),
    /** One HTTP request gives up after this long (a retriable error). */
    request_timeout: duration.default('30s'),
    ...retryShape,
  })
  .strict();
export type InfluxdbBackendConfig = z.output<typeof influxdbBackendSchema>;

/** Rules across keys: the ones that make a configuration unusable. Empty when it is fine. */
export function influxdbConfigProblems(config: InfluxdbBackendConfig): string[] {
  const problems: string[] = [];
  if (config.token !== undefined && (config.username !== undefined || config.password !== undefined)) {
    problems.push('give either token or username/password, not both');
  }
  if ((config.username === undefined) !== (config.password === undefined)) problems.push('username and password go together');
  if (config.api === 'v2' && config.org === undefined) problems.push('api v2 needs org');
  if (config.api === 'v2' && config.token === undefined) problems.push('api v2 needs token');
  return problems;
}

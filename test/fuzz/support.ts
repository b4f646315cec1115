/**
 * Shared by the fuzz tests: the seed, comparing what the engine did with what the oracle says,
 * reading written objects back, and the prototype-pollution check.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import fc from 'fast-check';
import type { CatalogRow } from '../../src/catalog/catalog.js';
import type { ObservationRecord } from '../../src/core/record.js';
import { decodeGeoParquet } from '../../src/encoders/parquet/decode.js';
import type { PipelineConfig, TierName } from '../../src/pipeline/schema.js';
import type { ParseResult } from '../../src/records/parse.js';
import { canonical, decodeUtf8, parseJson } from './json.js';
import { describeCase, fuzzCases, type FuzzCase } from './cases.js';
import { expectedMemoryType, expectedOutcome, type ClassifyRules, type ExpectedRecord, type Outcome } from './oracle.js';

/** Fixed by default so CI runs are reproducible; FUZZ_SEED=<int> explores (every failure prints the seed). */
export const FUZZ_SEED = process.env.FUZZ_SEED === undefined ? 0x15_f022 : Number(process.env.FUZZ_SEED);
if (!/^-?[0-9]+$/.test(process.env.FUZZ_SEED ?? '0') || !Number.isSafeInteger(FUZZ_SEED)) {
  throw new Error(`FUZZ_SEED must be an integer, not ${process.env.FUZZ_SEED}`);
}

/** Runs a test body; a failure names the seed that reproduces it. */
export async function seeded<T>(name: string, body: (seed: number) => Promise<T> | T): Promise<T> {
  try {
    return await body(FUZZ_SEED);
  } catch (error) {
    const note = `${name}: reproduce with FUZZ_SEED=${FUZZ_SEED}`;
    console.error(note);
    if (error instanceof Error) error.message = `${error.message}\n${note}`;
    throw error;
  }
}

/** `count` cases from the fuzz arbitrary, the same ones for the same seed. */
export function sampleCases(count: number, maxRecordBytes: number, seed: number): FuzzCase[] {
  return fc.sample(fuzzCases(maxRecordBytes), { seed, numRuns: count });
}

/** Why the engine's answer differs from the oracle's, or undefined when they agree. */
export function disagreement(c: FuzzCase, result: ParseResult, expected: Outcome): string | undefined {
  const shown = describeCase(c);
  if (expected.ok !== result.ok) {
    return result.ok
      ? `accepted, but the oracle refuses it (${expected.ok ? '' : `${expected.reasons.join('|')}: ${expected.why.join('; ')}`}) ${shown}`
      : `refused as ${result.deadLetter.reason} (${result.deadLetter.message}), but the oracle accepts it ${shown}`;
  }
  if (!expected.ok && !result.ok) {
    if (!expected.reasons.includes(result.deadLetter.reason)) {
      return `reason ${result.deadLetter.reason} (${result.deadLetter.message}); the oracle expects ${expected.reasons.join('|')} (${expected.why.join('; ')}) ${shown}`;
    }
    if (result.deadLetter.payload !== c.bytes && Buffer.compare(result.deadLetter.payload, c.bytes) !== 0) return `dead letter payload differs ${shown}`;
    return undefined;
  }
  if (expected.ok && result.ok) {
    const a = recordKey(asExpected(result.record), '');
    const e = recordKey(expected.record, '');
    if (a !== e) return `record differs ${shown}\n  parsed: ${a.slice(0, 600)}\n  oracle: ${e.slice(0, 600)}`;
    if (result.record.size !== c.bytes.length) return `size ${result.record.size}, payload has ${c.bytes.length} bytes`;
  }
  return undefined;
}

const num = (n: number | null) => (n === null ? null : Object.is(n, -0) ? '-0' : String(n));

/** A record as the test compares it: every field, numbers with -0 told apart, JSON fields canonical. */
export function recordKey(r: ExpectedRecord, memoryType: string): string {
  const common = [memoryType, r.kind, r.id, r.dataset, r.variable, r.timeUs === 0 ? 0 : r.timeUs];
  if (r.kind === 'point') {
    return JSON.stringify([...common, num(r.lon), num(r.lat), num(r.value), r.unit, r.quality, r.station, num(r.elevation), r.attrs]);
  }
  return JSON.stringify([...common, num(r.value), r.geometry.type, JSON.stringify(r.geometry.coordinates, (_, v: unknown) => (typeof v === 'number' ? num(v) : v)), r.properties]);
}

/** An engine record in the oracle's terms (JSON text fields read by the oracle's own parser). */
export function asExpected(r: ObservationRecord): ExpectedRecord {
  const json = (text: string | null, what: string): string | null => {
    if (text === null) return null;
    const parsed = parseJson(text);
    assert.ok(parsed?.t === 'object', `${what} is not a JSON object: ${text.slice(0, 200)}`);
    return canonical(parsed);
  };
  if (r.kind === 'point') {
    return {
      kind: 'point', id: r.id, dataset: r.dataset, variable: r.variable, timeUs: r.timeUs, lon: r.lon, lat: r.lat, value: r.value, unit: r.unit,
      quality: r.quality, station: r.station, elevation: r.elevation, attrs: json(r.attrs, 'attrs'), protoKey: false,
    };
  }
  return {
    kind: 'vector', id: r.id, dataset: r.dataset, variable: r.variable, timeUs: r.timeUs, value: r.value,
    geometry: { type: r.geometry.type, coordinates: r.geometry.coordinates }, properties: json(r.properties, 'properties'), protoKey: false,
  };
}

/** The geometry as WKB keeps it: Z when every position has one, never M. */
export function storedGeometry(g: { type: string; coordinates: unknown }): { type: string; coordinates: unknown } {
  const positions: number[][] = [];
  const collect = (x: unknown): void => {
    if (typeof (x as unknown[])[0] === 'number') positions.push(x as number[]);
    else (x as unknown[]).forEach(collect);
  };
  collect(g.coordinates);
  const dims = positions.every((p) => p.length >= 3) ? 3 : 2;
  const project = (x: unknown): unknown => (typeof (x as unknown[])[0] === 'number' ? (x as number[]).slice(0, dims) : (x as unknown[]).map(project));
  return { type: g.type, coordinates: project(g.coordinates) };
}

/** What one payload should become in a pipeline with these classify rules. */
export type Fate = { dead: true; reasons: string[]; why: string[] } | { dead: false; record: ExpectedRecord; memoryType: string };

export function expectedFate(payload: Uint8Array, maxRecordBytes: number, classify: ClassifyRules): Fate {
  const outcome: Outcome = expectedOutcome(payload, maxRecordBytes);
  if (!outcome.ok) return { dead: true, reasons: outcome.reasons, why: outcome.why };
  const memoryType = expectedMemoryType(outcome.record, classify);
  if (memoryType === 'dead_letter') return { dead: true, reasons: ['unclassified'], why: ['no classify rule matches'] };
  return { dead: false, record: outcome.record, memoryType };
}

/** The bytes a file dead letter holds: `payload` (UTF-8) or `payload_base64` (when the bytes are not UTF-8), never both. */
export function deadLetterBytes(entry: Record<string, unknown>): Buffer {
  const hasText = typeof entry.payload === 'string';
  const hasBase64 = typeof entry.payload_base64 === 'string';
  assert.ok(hasText !== hasBase64, `exactly one of payload, payload_base64: ${JSON.stringify(entry).slice(0, 300)}`);
  const bytes = hasText ? Buffer.from(entry.payload as string, 'utf8') : Buffer.from(entry.payload_base64 as string, 'base64');
  assert.equal(hasBase64, decodeUtf8(bytes) === undefined, 'payload_base64 exactly when the payload is not UTF-8');
  assert.ok(typeof entry.message === 'string' && entry.message.length > 0, 'a message');
  assert.ok(!Number.isNaN(Date.parse(entry.dead_lettered_at as string)), 'dead_lettered_at');
  return bytes;
}

/** The local_file tiers of a pipeline: the tier a memory type routes to, and each tier's base path. */
export function localTiers(config: PipelineConfig): { routing: (memoryType: string) => string; root: (tier: string) => string } {
  return {
    routing: (memoryType) => config.routing.memory_types[memoryType] ?? config.routing.default,
    root: (tier) => {
      const backend = config.storage.tier_configs[tier as TierName]?.primary_backend as { type: string; base_path?: string } | undefined;
      assert.ok(backend?.type === 'local_file' && backend.base_path !== undefined, `tier ${tier} is a local_file tier`);
      return resolve(backend.base_path);
    },
  };
}

/** Every record of every catalogued object, decoded from its file, checked against its catalog row. */
export function readBack(rows: CatalogRow[], tiers: ReturnType<typeof localTiers>): { memoryType: string; record: ObservationRecord; uri: string }[] {
  const out: { memoryType: string; record: ObservationRecord; uri: string }[] = [];
  for (const row of rows) {
    // Datasets such as "../../etc" are in the keys: no object may land outside its tier.
    assert.ok(resolve(row.uri).startsWith(tiers.root(row.tier) + sep), `${row.uri} is inside tier ${row.tier}'s base path`);
    const { records } = decodeGeoParquet(readFileSync(row.uri), { source: row.uri, partition: 0 });
    assert.equal(records.length, row.rows, `${row.key}: rows in the catalog`);
    assert.equal(row.tier, tiers.routing(row.memoryType), `${row.key}: routed by memory type`);
    for (const record of records) {
      assert.equal(record.dataset, row.dataset, `${row.key}: one dataset per object`);
      assert.equal(record.kind, row.kind, `${row.key}: one kind per object`);
      assert.ok(record.timeUs >= row.timeMinUs && record.timeUs <= row.timeMaxUs, `${row.key}: time within the catalog's range`);
      out.push({ memoryType: row.memoryType, record, uri: row.uri });
    }
  }
  return out;
}

/** Compares two multisets of record keys, naming a few of the differences. */
export function assertSameRecords(actual: string[], expected: string[], what: string): void {
  const count = new Map<string, number>();
  for (const k of expected) count.set(k, (count.get(k) ?? 0) + 1);
  const extra: string[] = [];
  for (const k of actual) {
    const n = count.get(k) ?? 0;
    if (n === 0) extra.push(k);
    else count.set(k, n - 1);
  }
  const missing = [...count].flatMap(([k, n]) => Array<string>(n).fill(k));
  assert.ok(
    missing.length === 0 && extra.length === 0,
    `${what}: ${missing.length} expected records not written, ${extra.length} written that were not expected\n` +
      `missing: ${missing.slice(0, 5).map((k) => k.slice(0, 400)).join('\n         ')}\n` +
      `extra:   ${extra.slice(0, 5).map((k) => k.slice(0, 400)).join('\n         ')}`,
  );
}

/** Own properties of the built-in prototypes, with their descriptors, to compare after a run. */
export function prototypes(): Map<string, PropertyDescriptor | undefined> {
  const out = new Map<string, PropertyDescriptor | undefined>();
  for (const [name, proto] of [['Object', Object.prototype], ['Array', Array.prototype], ['Function', Function.prototype], ['String', String.prototype]] as const) {
    for (const key of Reflect.ownKeys(proto)) out.set(`${name}.${String(key)}`, Object.getOwnPropertyDescriptor(proto, key));
  }
  return out;
}

export function assertNoPollution(before: Map<string, PropertyDescriptor | undefined>): void {
  const after = prototypes();
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), 'the built-in prototypes have the same own properties');
  for (const [key, d] of before) {
    const now = after.get(key)!;
    assert.ok(now.value === d!.value && now.get === d!.get && now.set === d!.set && now.writable === d!.writable, `${key} unchanged`);
  }
  assert.equal(Object.getPrototypeOf({}), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(([] as unknown as Record<string, unknown>).polluted, undefined);
}

/** Counts by tag and by reason, for the run's report and for coverage floors. */
export function tally(items: Iterable<string>): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of items) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

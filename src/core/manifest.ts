import { createHash } from 'node:crypto';
import type { PipelineBatch } from './batch.js';
import { recordBbox, type ObservationRecord } from './record.js';

/**
 * What a write stored, as the format describes it: the keys (one for a Parquet object, many for
 * a Zarr store), and the content they hold. The catalog row is built from it, and a moved
 * object is verified by comparing the manifest read back from its destination with this one.
 */
export interface Manifest {
  keys: { key: string; bytes: number; sha256: string }[];
  rows: number;
  bbox: [number, number, number, number];
  timeMinUs: number;
  timeMaxUs: number;
  /** Column (field) names in stored order. */
  schema: string[];
  /**
   * sha256 over the records' ids in id order: the content, whatever the encoding or order. Null
   * where nothing will compare it (ingest) or the bytes themselves are compared (a raw copy).
   */
  contentHash: string | null;
}

export function contentHash(records: readonly ObservationRecord[]): string {
  return idsHash(records.map((r) => r.id));
}

function idsHash(of: readonly (string | null)[]): string {
  const ids = of.map((id) => id ?? '').sort();
  const digest = createHash('sha256');
  for (const id of ids) digest.update(`${id}\n`);
  return digest.digest('hex');
}

export function manifestOf(records: readonly ObservationRecord[], schema: readonly string[], keys: Manifest['keys'], withContentHash = true): Manifest {
  const bbox: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity];
  let timeMinUs = Infinity;
  let timeMaxUs = -Infinity;
  for (const record of records) {
    const [a, b, c, d] = recordBbox(record);
    if (a < bbox[0]) bbox[0] = a;
    if (b < bbox[1]) bbox[1] = b;
    if (c > bbox[2]) bbox[2] = c;
    if (d > bbox[3]) bbox[3] = d;
    if (record.timeUs < timeMinUs) timeMinUs = record.timeUs;
    if (record.timeUs > timeMaxUs) timeMaxUs = record.timeUs;
  }
  return { keys: [...keys], rows: records.length, bbox, timeMinUs, timeMaxUs, schema: [...schema], contentHash: withContentHash ? contentHash(records) : null };
}

/** The manifest of a batch, from its records or from the columns it kept (the same figures either way). */
export function manifestOfBatch(batch: PipelineBatch, schema: readonly string[], keys: Manifest['keys'], withContentHash = true): Manifest {
  if (batch.columns === undefined) return manifestOf(batch.records, schema, keys, withContentHash);
  const c = batch.columns;
  return {
    keys: [...keys], rows: c.rows, bbox: c.bbox, timeMinUs: c.timeMinUs, timeMaxUs: c.timeMaxUs, schema: [...schema],
    contentHash: withContentHash ? idsHash(c.ids()) : null,
  };
}

/** How `actual` differs from `expected`, one phrase per difference (empty: they describe the same content). */
export function manifestDifferences(expected: Manifest, actual: Manifest): string[] {
  const out: string[] = [];
  const keys = (m: Manifest) => m.keys.map((k) => `${k.key} ${k.bytes} ${k.sha256}`).sort().join(', ');
  if (keys(expected) !== keys(actual)) out.push(`stored ${keys(actual)}, expected ${keys(expected)}`);
  if (actual.rows !== expected.rows) out.push(`${actual.rows} rows, not ${expected.rows}`);
  if (actual.contentHash !== null && expected.contentHash !== null && actual.contentHash !== expected.contentHash) out.push('its ids differ from the source');
  if (actual.timeMinUs !== expected.timeMinUs || actual.timeMaxUs !== expected.timeMaxUs) {
    out.push(`time range ${actual.timeMinUs}..${actual.timeMaxUs} µs, not ${expected.timeMinUs}..${expected.timeMaxUs}`);
  }
  if (actual.bbox.some((v, i) => v !== expected.bbox[i])) out.push(`bbox ${actual.bbox.join(',')}, not ${expected.bbox.join(',')}`);
  if (actual.schema.join(',') !== expected.schema.join(',')) out.push(`columns ${actual.schema.join(',')}, not ${expected.schema.join(',')}`);
  return out;
}

import { createHash } from 'node:crypto';
import { TupleMemo } from './tuple-memo.js';
import type { ProvenanceRange } from '../core/batch.js';
import { StorageError } from '../core/errors.js';
import type { ObservationRecord } from '../core/record.js';

/**
 * Object keys: `<memory_type>/<file_organization expanded>/part-<hash>.<ext>`, deterministic from
 * the memory type, the partition path and the batch's provenance, so a replay of the same input
 * writes the same keys. Every part is sanitized: no input can leave the tier's prefix.
 */
export const TEMPLATE_TOKENS = ['memory_type', 'kind', 'dataset', 'variable', 'sensor', 'station', 'year', 'month', 'day', 'hour'] as const;
export type TemplateToken = (typeof TEMPLATE_TOKENS)[number];

export const NAMED_ORGANIZATIONS: Record<string, string> = {
  'year/month/dataset': '{year}/{month}/{dataset}',
  'sensor/year/month': '{sensor}/{year}/{month}',
  hierarchical: '{dataset}/{variable}/{year}/{month}/{day}',
  'year/month/day': '{year}/{month}/{day}',
  'category/subcategory': '{dataset}/{variable}',
};

/** The columns ParquetStorage's `partition_cols` may name. */
export const HIVE_COLUMNS = ['year', 'month', 'day', 'variable', 'dataset', 'station'] as const;
export type HiveColumn = (typeof HIVE_COLUMNS)[number];
/** Hive's (and pyarrow's, DuckDB's) directory name for a null partition value. */
export const HIVE_NULL = '__HIVE_DEFAULT_PARTITION__';

/** The `column=value` directories of `key` for `columns` (percent-decoded; HIVE_NULL: null). */
export function hiveValues(key: string, columns: readonly string[]): Map<string, string | null> {
  const out = new Map<string, string | null>();
  for (const segment of key.split('/')) {
    const eq = segment.indexOf('=');
    if (eq <= 0) continue;
    const name = segment.slice(0, eq);
    if (!columns.includes(name)) continue;
    const raw = segment.slice(eq + 1);
    out.set(name, raw === HIVE_NULL ? null : decodeURIComponent(raw));
  }
  return out;
}

export interface CompiledTemplate {
  /** The `file_organization` as written. */
  readonly source: string;
  /** Its segments, named layouts spelled out (`{sensor}`, `{year}`…): one per path segment. */
  readonly segments: readonly string[];
  expand(record: ObservationRecord, memoryType: string): string;
}

/** Percent-encodes everything but [A-Za-z0-9._-]; `.` and `..` alone become `%2E`/`%2E%2E`. */
export function sanitizeSegment(value: string): string {
  if (value.length === 0) return '_';
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) || (c === '.' && byte === 0x2e) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (/^\.+$/.test(out)) out = out.replace(/\./g, '%2E');
  // Keep one segment well under file-system name limits; the hash keeps long values apart.
  if (out.length > 120) out = `${out.slice(0, 100)}~${createHash('sha256').update(value).digest('hex').slice(0, 16)}`;
  return out;
}

/**
 * Compiles a `file_organization`: a named layout, or a template of `/`-separated segments where
 * each segment is a bare token (`year`) or text with `{token}` placeholders (`y={year}`).
 * Throws with a message naming the bad token.
 */
export function compileTemplate(organization: string, partitionCols: readonly HiveColumn[] = []): CompiledTemplate {
  const template = NAMED_ORGANIZATIONS[organization] ?? organization;
  // Hive-style `column=value` directories (ParquetStorage's partition_cols) after the layout's own.
  const segments = [...template.split('/').filter((s) => s.length > 0), ...partitionCols.map((c) => `${c}={${c}}`)];
  const hive = new Set<string>(partitionCols);
  if (segments.length === 0) throw new Error('file_organization is empty');
  const parts = segments.map((segment) => {
    if ((TEMPLATE_TOKENS as readonly string[]).includes(segment)) return [{ token: segment as TemplateToken }];
    const pieces: ({ text: string } | { token: TemplateToken })[] = [];
    const re = /\{([^}]*)\}/g;
    let last = 0;
    for (let m = re.exec(segment); m !== null; m = re.exec(segment)) {
      if (!(TEMPLATE_TOKENS as readonly string[]).includes(m[1]!)) {
        throw new Error(`unknown token {${m[1]}}; expected one of ${TEMPLATE_TOKENS.map((t) => `{${t}}`).join(', ')}`);
      }
      if (m.index > last) pieces.push({ text: literal(segment.slice(last, m.index)) });
      pieces.push({ token: m[1] as TemplateToken });
      last = m.index + m[0].length;
    }
    if (pieces.length === 0) {
      throw new Error(`segment "${segment}" is neither a token nor has {token} placeholders; tokens: ${TEMPLATE_TOKENS.join(', ')}`);
    }
    if (last < segment.length) pieces.push({ text: literal(segment.slice(last)) });
    return pieces;
  });
  const used = new Set(parts.flatMap((pieces) => pieces.flatMap((p) => ('token' in p ? [p.token] : []))));
  // The cache key holds only what the template reads, at the coarsest time step it needs: a key
  // with the station and the hour in it (hourly station data) would miss on almost every record.
  const timeStepUs = used.has('hour') ? 3_600_000_000 : used.has('day') || used.has('month') || used.has('year') ? 86_400_000_000 : 0;
  const usesStation = used.has('sensor') || used.has('station');
  const usesVariable = used.has('variable');
  const usesKind = used.has('kind') || usesStation;
  // Few distinct paths recur across millions of records: memoize by the fields the template reads.
  const memo = new TupleMemo<string>();
  const expand = (record: ObservationRecord, memoryType: string): string => {
      const date = new Date(Math.floor(record.timeUs / 1000));
      let hiveSegment = false;
      const value = (token: TemplateToken): string => {
        switch (token) {
          case 'memory_type': return memoryType;
          case 'kind': return record.kind;
          case 'dataset': return record.dataset;
          case 'variable': return hiveSegment ? (record.variable === null || record.variable === '' ? HIVE_NULL : record.variable) : record.variable ?? 'none';
          case 'sensor': return record.kind === 'point' ? record.station ?? record.dataset : record.dataset;
          case 'station':
            // As in Hive and pyarrow, an empty value is the null partition.
            if (hiveSegment) return record.kind === 'point' && record.station !== null && record.station !== '' ? record.station : HIVE_NULL;
            return record.kind === 'point' ? record.station ?? record.dataset : record.dataset;
          case 'year': return String(date.getUTCFullYear()).padStart(4, '0');
          case 'month': return String(date.getUTCMonth() + 1).padStart(2, '0');
          case 'day': return String(date.getUTCDate()).padStart(2, '0');
          case 'hour': return String(date.getUTCHours()).padStart(2, '0');
        }
      };
      return parts
        .map((pieces, i) => {
          hiveSegment = i >= parts.length - hive.size;
          return pieces.map((p) => ('text' in p ? p.text : hiveSegment && value(p.token) === HIVE_NULL ? HIVE_NULL : sanitizeSegment(value(p.token)))).join('');
        })
        .join('/');
  };
  return {
    source: organization,
    segments: segments.map((segment) => ((TEMPLATE_TOKENS as readonly string[]).includes(segment) ? `{${segment}}` : segment)),
    expand(record, memoryType) {
      const step = timeStepUs === 0 ? 0 : Math.floor(record.timeUs / timeStepUs);
      const kind = usesKind ? record.kind : '';
      const station = usesStation && record.kind === 'point' ? record.station : null;
      const variable = usesVariable ? record.variable : null;
      return memo.get(memoryType, kind, record.dataset, variable, station, step, expand, record, memoryType);
    },
  };
}

function literal(text: string): string {
  if (!/^[A-Za-z0-9_.=-]+$/.test(text) || /^\.+$/.test(text)) {
    throw new Error(`"${text}": literal text in a file_organization may use only A-Z a-z 0-9 _ . = -`);
  }
  return text;
}

/** A segment an expanded template can make: sanitized values and literal text. */
const SAFE_SEGMENT = /^[A-Za-z0-9._=%~-]+$/;

/**
 * The key of an object: memory type, partition path, a hash of both and of the provenance. The
 * partition path is an expanded template's, but a copy's key (a migration) takes it from the
 * catalog row: one that could leave the tier (`..`, empty or unsafe segments) is refused.
 */
export function objectKey(memoryType: string, partitionPath: string, provenance: readonly ProvenanceRange[], extension: string): string {
  for (const segment of partitionPath.split('/')) {
    if (!SAFE_SEGMENT.test(segment) || /^\.+$/.test(segment)) {
      throw new StorageError(`partition path ${JSON.stringify(partitionPath)} has an unsafe segment ${JSON.stringify(segment)}: an object key stays inside its tier`, {
        context: { stage: 'key', memory_type: memoryType },
      });
    }
  }
  if (!/^[A-Za-z0-9._%~-]*$/.test(extension)) throw new StorageError(`unsafe object key extension ${JSON.stringify(extension)}`, { context: { stage: 'key' } });
  const hash = createHash('sha256')
    .update(JSON.stringify([memoryType, partitionPath, provenance]))
    .digest('hex')
    .slice(0, 24);
  return `${sanitizeSegment(memoryType)}/${partitionPath}/part-${hash}${extension}`;
}

/** The finest time token a layout uses (a partition covers one such period), or null. */
export function timeTokenOf(template: CompiledTemplate): 'hour' | 'day' | 'month' | 'year' | null {
  const text = template.segments.join('/');
  for (const token of ['hour', 'day', 'month', 'year'] as const) if (text.includes(`{${token}}`)) return token;
  return null;
}

/** Start of the period of `token` that holds `timeUs` (UTC), µs since the epoch. */
export function periodStartUs(token: 'hour' | 'day' | 'month' | 'year', timeUs: number): number {
  const d = new Date(Math.floor(timeUs / 1000));
  const y = d.getUTCFullYear();
  const ms =
    token === 'year' ? Date.UTC(y, 0, 1)
    : token === 'month' ? Date.UTC(y, d.getUTCMonth(), 1)
    : token === 'day' ? Date.UTC(y, d.getUTCMonth(), d.getUTCDate())
    : Date.UTC(y, d.getUTCMonth(), d.getUTCDate(), d.getUTCHours());
  return ms * 1000;
}

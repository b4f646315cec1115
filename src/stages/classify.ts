import type { ObservationRecord } from '../core/record.js';
import type { RasterRecord } from '../core/raster.js';

/** What classify rules see: records, and raster tiles (kind raster, their WGS 84 bbox). */
export type Classifiable = ObservationRecord | RasterRecord;
import { TupleMemo } from './tuple-memo.js';

/** A `classify.rules` entry: every key in `match` must match (AND); a list matches any of its values. */
export interface ClassifyRule {
  match: {
    variable?: string | string[];
    dataset?: string | string[];
    kind?: string | string[];
    station?: string | string[];
    /** [minLon, minLat, maxLon, maxLat]: the record's bbox must intersect it. */
    bbox?: [number, number, number, number];
  };
  memory_type: string;
}

export interface ClassifyConfig {
  rules: ClassifyRule[];
  /** A memory type, or `dead_letter`. */
  default: string;
}

export const DEAD_LETTER = 'dead_letter';

type Test = (record: Classifiable) => boolean;

/** Glob (`*`, `?`) to an anchored RegExp; plain strings compare directly. */
export function globMatcher(patterns: string | string[]): (value: string | null) => boolean {
  const list = Array.isArray(patterns) ? patterns : [patterns];
  const exact = new Set(list.filter((p) => !/[*?]/.test(p)));
  const regexes = list
    .filter((p) => /[*?]/.test(p))
    .map((p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's'));
  return (value) => value !== null && (exact.has(value) || regexes.some((r) => r.test(value)));
}

function compileRule(rule: ClassifyRule): Test {
  const tests: Test[] = [];
  const { variable, dataset, kind, station, bbox } = rule.match;
  if (variable !== undefined) {
    const m = globMatcher(variable);
    tests.push((r) => m(r.variable));
  }
  if (dataset !== undefined) {
    const m = globMatcher(dataset);
    tests.push((r) => m(r.dataset));
  }
  if (kind !== undefined) {
    const m = globMatcher(kind);
    tests.push((r) => m(r.kind));
  }
  if (station !== undefined) {
    const m = globMatcher(station);
    tests.push((r) => m(r.kind === 'point' ? r.station : null));
  }
  if (bbox !== undefined) {
    const [w, s, e, n] = bbox;
    tests.push((r) => {
      const [a, b, c, d] = r.kind === 'point' ? [r.lon, r.lat, r.lon, r.lat] : r.bbox;
      return a <= e && c >= w && b <= n && d >= s;
    });
  }
  return (r) => tests.every((t) => t(r));
}

/**
 * Compiles the rules once; the returned function gives a record's memory type, or
 * `dead_letter` when no rule matches and the default says so. First matching rule wins.
 */
export function compileClassifier(config: ClassifyConfig): (record: Classifiable) => string {
  const rules = config.rules.map((rule) => ({ test: compileRule(rule), memoryType: rule.memory_type }));
  // Most streams carry few distinct (kind, dataset, variable) triples: memoize rules without bbox.
  const cacheable = config.rules.every((r) => r.match.bbox === undefined && r.match.station === undefined);
  const classify = (record: Classifiable): string => {
    for (const rule of rules) if (rule.test(record)) return rule.memoryType;
    return config.default;
  };
  if (!cacheable) return classify;
  const memo = new TupleMemo<string>();
  return (record) => memo.get(record.kind, record.dataset, record.variable, null, null, null, classify, record, null);
}

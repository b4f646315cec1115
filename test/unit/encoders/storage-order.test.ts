/**
 * storageOrder's linear path (batches in source order) must give exactly the order of the
 * comparison sort it stands for, on any batch: times ascending or not, ties, null stations and
 * variables, several sources, positions out of order (the comparison sort's own path).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { storageOrder, type BatchColumns } from '../../../src/encoders/arrow/batch-table.js';
import type { DictColumn } from '../../../src/encoders/arrow/columns.js';

interface Row {
  station: number | null;
  variable: number | null;
  time: number;
  source: number;
  partition: number;
  offset: number;
}

const STATIONS = ['ST2', 'ST10', 'ST1', 'b', 'A'];
const VARIABLES = ['wind', 'temperature', 'rain'];
const SOURCES = ['topic-b', 'topic-a'];

/** A dictionary column whose values come in the order rows first use them, as the builders make them. */
function dict(labels: readonly string[], picks: readonly (number | null)[]): DictColumn {
  const values: string[] = [];
  const indices = Int32Array.from(picks, (p) => {
    if (p === null) return -1;
    const at = values.indexOf(labels[p]!);
    return at >= 0 ? at : values.push(labels[p]!) - 1;
  });
  return { values, indices };
}

function columns(kind: 'point' | 'vector', rows: readonly Row[]): BatchColumns {
  const common = {
    length: rows.length,
    id: rows.map(() => null),
    dataset: dict(['d'], rows.map(() => 0)),
    timeUs: Float64Array.from(rows, (r) => r.time),
    source: dict(SOURCES, rows.map((r) => r.source)),
    partition: Float64Array.from(rows, (r) => r.partition),
    offset: Float64Array.from(rows, (r) => r.offset),
    bbox: [0, 0, 0, 0] as [number, number, number, number],
    geometryTypes: [],
    variable: dict(VARIABLES, rows.map((r) => r.variable)),
    value: { values: new Float64Array(rows.length) },
  };
  if (kind === 'vector') return { ...common, kind, properties: rows.map(() => null), geometry: { data: new Uint8Array(0), offsets: new Int32Array(rows.length + 1) } };
  const none = dict([], rows.map(() => null));
  return {
    ...common, kind, unit: none, quality: none, station: dict(STATIONS, rows.map((r) => r.station)),
    elevation: { values: new Float64Array(rows.length) }, lon: new Float64Array(rows.length), lat: new Float64Array(rows.length), attrs: rows.map(() => null),
  };
}

/** The order by its definition: strings compared as strings, nulls last, then time, source, partition, offset, row. */
function expected(kind: 'point' | 'vector', rows: readonly Row[]): number[] {
  const label = (labels: readonly string[], p: number | null) => (p === null ? null : labels[p]!);
  const byString = (x: string | null, y: string | null) => (x === y ? 0 : x === null ? 1 : y === null ? -1 : x < y ? -1 : 1);
  return rows
    .map((_, i) => i)
    .sort((a, b) => {
      const [r, s] = [rows[a]!, rows[b]!];
      const group = kind === 'point' ? byString(label(STATIONS, r.station), label(STATIONS, s.station)) || byString(label(VARIABLES, r.variable), label(VARIABLES, s.variable)) : 0;
      return group || r.time - s.time || byString(SOURCES[r.source]!, SOURCES[s.source]!) || r.partition - s.partition || r.offset - s.offset || a - b;
    });
}

const row = fc.record({
  station: fc.option(fc.integer({ min: 0, max: STATIONS.length - 1 }), { freq: 6 }),
  variable: fc.option(fc.integer({ min: 0, max: VARIABLES.length - 1 }), { freq: 6 }),
  time: fc.integer({ min: 0, max: 6 }).map((t) => 1_700_000_000_000_000 + t * 1_000_000),
  source: fc.integer({ min: 0, max: 1 }),
  partition: fc.integer({ min: 0, max: 2 }),
  offset: fc.integer({ min: 0, max: 20 }),
});

/** Rows in ascending source position (the linear path), times as generated. */
const inSourceOrder = (rows: Row[]) =>
  [...rows].sort((r, s) => SOURCES[r.source]!.localeCompare(SOURCES[s.source]!) || r.partition - s.partition || r.offset - s.offset);

describe('storageOrder', () => {
  for (const kind of ['point', 'vector'] as const) {
    it(`${kind}s in source order: the comparison sort's order`, () => {
      fc.assert(
        fc.property(fc.array(row, { maxLength: 60 }), fc.boolean(), (generated, ascendingTimes) => {
          let rows = inSourceOrder(generated);
          if (ascendingTimes) rows = rows.map((r, i) => ({ ...r, time: 1_700_000_000_000_000 + Math.floor(i / 3) }));
          assert.deepEqual([...storageOrder(columns(kind, rows))], expected(kind, rows));
        }),
        { numRuns: 400 },
      );
    });

    it(`${kind}s in any order: the comparison sort's order`, () => {
      fc.assert(
        fc.property(fc.array(row, { maxLength: 60 }), (rows) => {
          assert.deepEqual([...storageOrder(columns(kind, rows))], expected(kind, rows));
        }),
        { numRuns: 400 },
      );
    });
  }

  it('a large batch in source order, times ascending per station, comes out grouped and in time order', () => {
    const n = 100_000;
    const rows: Row[] = Array.from({ length: n }, (_, i) => ({ station: i % 5, variable: i % 3, time: 1_700_000_000_000_000 + i * 1000, source: 0, partition: 0, offset: i }));
    assert.deepEqual([...storageOrder(columns('point', rows))], expected('point', rows));
  });
});

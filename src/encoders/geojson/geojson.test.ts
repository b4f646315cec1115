/**
 * GeoJSON objects against readers no one here wrote: GDAL 3.6's ogrinfo (directly, and through
 * /vsigzip/ for gzip) and pyogrio (its own GDAL) comparing every feature; our decode round-trips
 * the same random batches exactly (geometries rewound to the right-hand rule), bytes are the
 * same on every encode, and validation refuses what RFC 7946 does not allow.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Batch } from '../../core/batch.js';
import type { GeoJsonGeometry, ObservationRecord, VectorRecord } from '../../core/record.js';
import { rewound } from '../../records/geometry.js';
import { randomBatch } from '../../../test/support/random-batches.js';
import { referencePython } from '../../../test/support/python.js';
import { packBatch, storageOrder } from '../arrow/batch-table.js';
import { wkbGeometry } from '../wkb.js';
import { GeoJsonEncoder } from './geojson.js';

/** -0 and 0 are the same position to GDAL. */
const normalZero = (g: GeoJsonGeometry): GeoJsonGeometry => JSON.parse(JSON.stringify(g)) as GeoJsonGeometry;

const dir = mkdtempSync(join(tmpdir(), 'geojson-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** What a stored record keeps: everything but where it was read from. */
function content(r: ObservationRecord): unknown {
  const { position: _p, size: _s, key: _k, ...rest } = r as ObservationRecord & { key?: unknown };
  return r.kind === 'vector' ? { ...rest, geometry: rewound((rest as VectorRecord).geometry) } : rest;
}

function expectedOrder(batch: Batch): ObservationRecord[] {
  return [...storageOrder(packBatch(batch))].map((i) => batch.records[i]!);
}

/** Twice the signed area; > 0: counterclockwise. */
const area2 = (ring: number[][]) => ring.slice(0, -1).reduce((s, p, i) => s + p[0]! * ring[i + 1]![1]! - ring[i + 1]![0]! * p[1]!, 0);

const variants = [
  { layout: 'feature_collection', compression: 'none' },
  { layout: 'feature_collection', compression: 'gzip' },
  { layout: 'text_sequence', compression: 'none' },
  { layout: 'text_sequence', compression: 'gzip' },
] as const;

describe('GeoJSON encoder', () => {
  for (const v of variants) {
    it(`${v.layout}, ${v.compression}: decode round-trips random batches, same bytes every time`, async () => {
      const encoder = new GeoJsonEncoder(v);
      for (let seed = 1; seed <= 12; seed++) {
        const batch = randomBatch(seed, seed % 2 === 0 ? 'point' : 'vector', 1 + seed * 7);
        const first = await encoder.encode(batch);
        const again = await encoder.encode({ ...batch, records: [...batch.records].reverse() });
        assert.deepEqual(again.bytes, first.bytes, 'the same records in another order give the same bytes');
        const decoded = encoder.decode(first.bytes, { source: 'x', partition: 0 });
        assert.equal(decoded.records.length, batch.records.length);
        assert.deepStrictEqual(decoded.records.map(content), expectedOrder(batch).map(content));
        // Re-encoding what was read gives the same object.
        assert.deepEqual((await encoder.encode({ ...batch, records: decoded.records })).bytes, first.bytes);
      }
    });
  }

  it('writes exterior rings counterclockwise and holes clockwise, with no crs member', async () => {
    const cw = [[0, 0], [0, 10], [10, 10], [10, 0], [0, 0]];
    const ccwHole = [[2, 2], [4, 2], [4, 4], [2, 4], [2, 2]];
    const batch = vectorBatch([{ type: 'Polygon', coordinates: [cw, ccwHole] }]);
    const text = Buffer.from((await new GeoJsonEncoder({}).encode(batch)).bytes).toString('utf8');
    const parsed = JSON.parse(text) as { type: string; crs?: unknown; features: { geometry: { coordinates: number[][][] } }[] };
    assert.equal(parsed.type, 'FeatureCollection');
    assert.equal(parsed.crs, undefined);
    const [outer, hole] = parsed.features[0]!.geometry.coordinates;
    assert.ok(area2(outer!) > 0, 'exterior counterclockwise');
    assert.ok(area2(hole!) < 0, 'hole clockwise');
  });

  it('validation refuses a hole outside its exterior ring (bad_geometry); validation: false lets it through', () => {
    const outer = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]];
    const far = [[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]];
    const record = vectorBatch([{ type: 'Polygon', coordinates: [outer, far] }]).records[0]!;
    const refused = new GeoJsonEncoder({}).refuse(record);
    assert.equal(refused?.reason, 'bad_geometry');
    assert.match(refused!.message, /hole 1 of a Polygon reaches outside its exterior ring/);
    assert.equal(new GeoJsonEncoder({ validation: false }).refuse(record), undefined);
    const fine = vectorBatch([{ type: 'Polygon', coordinates: [outer] }]).records[0]!;
    assert.equal(new GeoJsonEncoder({}).refuse(fine), undefined);
  });

  for (const v of variants) {
    it(`${v.layout}, ${v.compression}: ogrinfo (GDAL 3.6) and pyogrio read every feature`, async () => {
      const encoder = new GeoJsonEncoder(v);
      const checks: { path: string; kind: string; expected: ObservationRecord[] }[] = [];
      for (const [seed, kind] of [[3, 'point'], [5, 'vector']] as const) {
        const batch = randomBatch(seed, kind, 40);
        const path = join(dir, `${v.layout}-${v.compression}-${kind}${encoder.extension}`);
        writeFileSync(path, (await encoder.encode(batch)).bytes);
        checks.push({ path, kind, expected: expectedOrder(batch) });
      }
      for (const c of checks) {
        const gdalPath = v.compression === 'gzip' ? `/vsigzip/${c.path}` : c.path;
        const info = execFileSync('ogrinfo', ['-ro', '-al', '-so', gdalPath], { encoding: 'utf8' });
        assert.match(info, new RegExp(`Feature Count: ${c.expected.length}\\b`), info);
        assert.match(info, /Geometry: (Point|Unknown \(any\)|3D Unknown \(any\))/);
      }
      const script = `
import json, math, sys, pyogrio
from pyogrio.raw import read
def plain(v):
    if v is None: return None
    v = v.item() if hasattr(v, 'item') else v
    return None if isinstance(v, float) and math.isnan(v) else v
out = []
for path in sys.stdin.read().split():
    meta, fids, geometry, fields = read(path, datetime_as_string=True)
    rows = []
    for i in range(len(geometry)):
        rows.append({name: plain(fields[k][i]) for k, name in enumerate(meta['fields'])} | {'wkb': bytes(geometry[i]).hex()})
    out.append({'path': path, 'rows': rows})
print(json.dumps(out, allow_nan=False))
`;
      const paths = checks.map((c) => (v.compression === 'gzip' ? `/vsigzip/${c.path}` : c.path));
      const read = JSON.parse(execFileSync(referencePython(), ['-c', script], { input: paths.join('\n'), encoding: 'utf8', maxBuffer: 1 << 28 })) as { rows: Record<string, unknown>[] }[];
      checks.forEach((c, f) => {
        const rows = read[f]!.rows;
        assert.equal(rows.length, c.expected.length);
        rows.forEach((row, i) => {
          const r = c.expected[i]!;
          assert.equal(row.dataset, r.dataset, `feature ${i} dataset`);
          assert.equal(row.variable ?? null, r.variable);
          if (r.value === null) assert.equal(row.value, null);
          else assert.equal(row.value, r.value === 0 ? 0 : r.value, `feature ${i} value`);
          // GDAL reads the time as a DateTime field, to the millisecond (truncated toward zero before 1970).
          assert.ok(Math.abs(new Date(String(row.time)).getTime() - r.timeUs / 1000) < 1, `feature ${i} time ${String(row.time)}, expected ${r.timeUs} µs`);
          if (r.kind === 'point') {
            assert.equal(row.id ?? null, r.id);
            assert.equal(row.station ?? null, r.station);
            assert.equal(row.elevation ?? null, r.elevation);
          }
          // The geometry GDAL hands out is the one written: rewound, in the same positions.
          const geometry = r.kind === 'point' ? { type: 'Point' as const, coordinates: [r.lon, r.lat] } : rewound(r.geometry);
          assert.deepEqual(wkbGeometry(Buffer.from(row.wkb as string, 'hex')), normalZero(geometry), `feature ${i} geometry`);
        });
      });
    });
  }
});

function vectorBatch(geometries: GeoJsonGeometry[]): Batch {
  const records: VectorRecord[] = geometries.map((geometry, i) => ({
    kind: 'vector', position: { source: 's', partition: 0, offset: i + 1 }, size: 10, id: `f-${i}`, dataset: 'fires', variable: null,
    timeUs: 1_700_000_000_000_000 + i, value: null, properties: null, geometry, bbox: [0, 0, 10, 10],
  }));
  return { memoryType: 'M', tier: 'hot', dataset: 'fires', kind: 'vector', partitionPath: 'p', records, bytes: 10, flushReason: 'end' };
}

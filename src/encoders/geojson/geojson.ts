import { gunzipSync, gzipSync } from 'node:zlib';
import { recordBatch, type PipelineBatch } from '../../core/batch.js';
import { EncodeError } from '../../core/errors.js';
import type { DeadLetterReason, GeoJsonGeometry, ObservationRecord, PointRecord, SourcePosition, VectorRecord } from '../../core/record.js';
import { checkGeometry, rewound } from '../../records/geometry.js';
import { formatTimeMicros, parseTimeUs } from '../../records/time.js';
import { packBatch, storageOrder } from '../arrow/batch-table.js';
import type { DecodedObject, EncodedObject, Encoder } from '../encoder.js';
import type { FormatKeys } from '../registry.js';
import { geoJsonConfig, type GeoJsonConfig } from './config.js';

/** The properties a point feature carries (in this order), and the record fields a vector's properties hold besides its own. */
const POINT_PROPERTIES = ['id', 'dataset', 'variable', 'value', 'unit', 'quality', 'station', 'elevation', 'time', 'attrs'] as const;
const VECTOR_FIELDS = ['dataset', 'variable', 'value', 'time'] as const;
const RS = '\u001e';

/** JSON text of a number that keeps -0 (JSON.stringify writes 0; `-0` is valid JSON and parses back to -0). */
const num = (n: number) => (Object.is(n, -0) ? '-0' : JSON.stringify(n));
const str = (s: string | null) => (s === null ? 'null' : JSON.stringify(s));
const nullableNum = (n: number | null) => (n === null ? 'null' : num(n));
const coordinates = (c: unknown): string => (typeof (c as number[])[0] === 'number' ? `[${(c as number[]).map(num).join(',')}]` : `[${(c as unknown[]).map(coordinates).join(',')}]`);
const geometryText = (g: GeoJsonGeometry) => `{"type":${JSON.stringify(g.type)},"coordinates":${coordinates(g.coordinates)}}`;

/**
 * GeoJSONStorage: RFC 7946 GeoJSON, one FeatureCollection per object (`.geojson`) or RFC 8142
 * GeoJSON Text Sequences (`.geojsons`: RS, a Feature, LF), optionally gzipped as a whole file.
 * Points are Point features; vectors their geometry, rewound to the right-hand rule. Features are
 * in the storage order of the Parquet encoder and numbers in shortest round-trip form, so the
 * same batch gives the same bytes. No `crs` member: RFC 7946 coordinates are WGS 84 lon/lat.
 */
export class GeoJsonEncoder implements Encoder {
  readonly format = 'geojson';
  readonly extension: string;
  readonly contentType: string;
  readonly codec: { name: string; level: number | null };
  private readonly config: GeoJsonConfig;

  constructor(keys: FormatKeys, gzipLevel = 6) {
    this.config = geoJsonConfig.parse({ compression: keys.compression, validation: keys.validation, layout: keys.layout });
    const sequence = this.config.layout === 'text_sequence';
    const gzip = this.config.compression === 'gzip';
    this.extension = `${sequence ? '.geojsons' : '.geojson'}${gzip ? '.gz' : ''}`;
    this.contentType = gzip ? 'application/gzip' : sequence ? 'application/geo+json-seq' : 'application/geo+json';
    this.codec = gzip ? { name: 'gzip', level: gzipLevel } : { name: 'none', level: null };
  }

  /** validation: true refuses features RFC 7946 does not allow (checked where records are routed). */
  refuse(record: ObservationRecord): { reason: DeadLetterReason; message: string } | undefined {
    if (!this.config.validation || record.kind !== 'vector') return undefined;
    const checked = checkGeometry(record.geometry, { nesting: true });
    return checked.ok ? undefined : { reason: 'bad_geometry', message: `format geojson (validation: true): ${checked.message}` };
  }

  async encode(pipelineBatch: PipelineBatch): Promise<EncodedObject> {
    const batch = recordBatch(pipelineBatch);
    try {
      const order = storageOrder(packBatch(batch));
      const features: string[] = new Array(order.length);
      for (let i = 0; i < order.length; i++) features[i] = featureText(batch.records[order[i]!]!);
      const text =
        this.config.layout === 'text_sequence'
          ? features.map((f) => `${RS}${f}\n`).join('')
          : `{"type":"FeatureCollection","features":[\n${features.join(',\n')}\n]}\n`;
      const bytes = Buffer.from(text, 'utf8');
      const out = this.codec.name === 'gzip' ? gzipSync(bytes, { level: this.codec.level! }) : bytes;
      return { bytes: new Uint8Array(out.buffer, out.byteOffset, out.byteLength), rows: features.length, schema: batch.kind === 'point' ? ['geometry', ...POINT_PROPERTIES] : ['id', 'geometry', ...VECTOR_FIELDS, 'properties'] };
    } catch (cause) {
      throw new EncodeError('GeoJSON encoding failed', { cause, context: { stage: 'encode', memory_type: batch.memoryType, dataset: batch.dataset } });
    }
  }

  decode(bytes: Uint8Array, base: Omit<SourcePosition, 'offset'>): DecodedObject {
    let text: string;
    try {
      text = (this.codec.name === 'gzip' ? gunzipSync(bytes) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString('utf8');
    } catch (cause) {
      throw new EncodeError('not a readable gzipped GeoJSON object', { cause, context: { stage: 'decode' } });
    }
    let features: unknown[];
    try {
      features = this.config.layout === 'text_sequence'
        ? text.split(RS).filter((t) => t.trim().length > 0).map((t) => JSON.parse(t) as unknown)
        : ((JSON.parse(text) as { features: unknown[] }).features);
    } catch (cause) {
      throw new EncodeError('not a readable GeoJSON object', { cause, context: { stage: 'decode' } });
    }
    const records = features.map((f, i) => recordOf(f as Feature, { ...base, offset: i }));
    const schema = records[0]?.kind === 'vector' ? ['id', 'geometry', ...VECTOR_FIELDS, 'properties'] : ['geometry', ...POINT_PROPERTIES];
    return { records, schema };
  }

  async close(): Promise<void> {}
}

function featureText(r: ObservationRecord): string {
  if (r.kind === 'point') return pointFeature(r);
  return vectorFeature(r);
}

function pointFeature(r: PointRecord): string {
  const props = [
    `"id":${str(r.id)}`, `"dataset":${str(r.dataset)}`, `"variable":${str(r.variable)}`, `"value":${num(r.value)}`, `"unit":${str(r.unit)}`,
    `"quality":${str(r.quality)}`, `"station":${str(r.station)}`, `"elevation":${nullableNum(r.elevation)}`, `"time":${str(formatTimeMicros(r.timeUs))}`,
    // attrs is JSON text of an object (the parser made it): embedded as that object.
    `"attrs":${r.attrs ?? 'null'}`,
  ];
  return `{"type":"Feature",${r.id === null ? '' : `"id":${str(r.id)},`}"geometry":{"type":"Point","coordinates":[${num(r.lon)},${num(r.lat)}]},"properties":{${props.join(',')}}}`;
}

function vectorFeature(r: VectorRecord): string {
  // The record's fields first, then its other properties (JSON text of an object, without its braces).
  const own = r.properties === null || r.properties === '{}' ? '' : `,${r.properties.slice(1, -1)}`;
  const props = `"dataset":${str(r.dataset)},"variable":${str(r.variable)},"value":${nullableNum(r.value)},"time":${str(formatTimeMicros(r.timeUs))}${own}`;
  return `{"type":"Feature",${r.id === null ? '' : `"id":${str(r.id)},`}"geometry":${geometryText(rewound(r.geometry))},"properties":{${props}}}`;
}

interface Feature {
  type: 'Feature';
  id?: string;
  geometry: GeoJsonGeometry;
  properties: Record<string, unknown>;
}

function bad(message: string): never {
  throw new EncodeError(`GeoJSON object: ${message}`, { context: { stage: 'decode' } });
}

function recordOf(f: Feature, position: SourcePosition): ObservationRecord {
  if (f === null || typeof f !== 'object' || f.type !== 'Feature' || typeof f.properties !== 'object' || f.properties === null) bad(`feature ${position.offset} is not a Feature with properties`);
  const p = f.properties;
  const timeUs = parseTimeUs(p.time);
  if (timeUs === undefined) bad(`feature ${position.offset} has no RFC 3339 time`);
  const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
  const number = (v: unknown) => (typeof v === 'number' ? v : null);
  // A point's properties start with `id`; a vector's with `dataset` (its own come after the record's fields).
  if (Object.keys(p)[0] === 'id' && f.geometry?.type === 'Point') {
    const [lon, lat] = f.geometry.coordinates as number[];
    return {
      kind: 'point', position, size: 0, id: text(p.id), dataset: String(p.dataset), variable: String(p.variable), timeUs, lon: lon!, lat: lat!,
      value: number(p.value) ?? bad(`point feature ${position.offset} has no value`), unit: text(p.unit), quality: text(p.quality), station: text(p.station),
      elevation: number(p.elevation), attrs: p.attrs === null ? null : JSON.stringify(p.attrs),
    };
  }
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) {
    if ((VECTOR_FIELDS as readonly string[]).includes(k)) continue;
    if (k === '__proto__') Object.defineProperty(rest, k, { value: v, enumerable: true, writable: true, configurable: true });
    else rest[k] = v;
  }
  const checked = checkGeometry(f.geometry);
  if (!checked.ok) bad(`feature ${position.offset}: ${checked.message}`);
  return {
    kind: 'vector', position, size: 0, id: f.id === undefined ? null : String(f.id), dataset: String(p.dataset), variable: text(p.variable), timeUs,
    value: number(p.value), geometry: checked.geometry, bbox: checked.bbox, properties: Object.keys(rest).length === 0 ? null : JSON.stringify(rest),
  };
}

import { gunzipSync, gzipSync } from 'node:zlib';
import { recordBatch, type PipelineBatch } from '../../core/batch.js';
import { EncodeError } from '../../core/errors.js';
import type { PointRecord, SourcePosition } from '../../core/record.js';
import { formatTimeMicros, parseTimeUs } from '../../records/time.js';
import { packBatch, storageOrder } from '../arrow/batch-table.js';
import type { DecodedObject, EncodedObject, Encoder } from '../encoder.js';
import type { FormatKeys } from '../registry.js';
import { csvConfig } from './config.js';

/** The header, in this order. */
export const CSV_COLUMNS = ['id', 'dataset', 'variable', 'time', 'value', 'unit', 'quality', 'station', 'elevation', 'lon', 'lat', 'attrs'] as const;
const EOL = '\r\n';

/** A text field: quoted when it holds a comma, quote, CR or LF, or is empty (an empty field is null). */
function field(s: string | null): string {
  if (s === null) return '';
  if (s === '' || /[",\r\n]/.test(s)) return `"${s.replaceAll('"', '""')}"`;
  return s;
}

/** A number with a fraction or exponent always (`3.0`, `-0.0`), so readers that sniff types read DOUBLE, not BIGINT. */
function number(n: number | null): string {
  if (n === null) return '';
  const text = Object.is(n, -0) ? '-0' : String(n);
  return /[.eE]/.test(text) || !Number.isFinite(n) ? text : `${text}.0`;
}

/**
 * CSV for time series (the spec's development `default_timeseries_format: csv`): RFC 4180 with a
 * header row and CRLF line ends, UTF-8 without a byte order mark, one row per point record in
 * the storage order of the Parquet encoder (same batch, same bytes). `time` is RFC 3339 UTC with
 * six fraction digits; numbers always have a fraction; an empty field is null and an empty
 * string is `""`; `attrs` is its JSON text.
 */
export class CsvEncoder implements Encoder {
  readonly format = 'csv';
  readonly extension: string;
  readonly contentType: string;
  readonly codec: { name: string; level: number | null };

  constructor(keys: FormatKeys, gzipLevel = 6) {
    const config = csvConfig.parse({ compression: keys.compression });
    const gzip = config.compression === 'gzip';
    this.extension = gzip ? '.csv.gz' : '.csv';
    this.contentType = gzip ? 'application/gzip' : 'text/csv; charset=utf-8; header=present';
    this.codec = gzip ? { name: 'gzip', level: gzipLevel } : { name: 'none', level: null };
  }

  async encode(pipelineBatch: PipelineBatch): Promise<EncodedObject> {
    const batch = recordBatch(pipelineBatch);
    if (batch.kind !== 'point') {
      throw new EncodeError('format csv stores point records (time series) only', { context: { stage: 'encode', memory_type: batch.memoryType, dataset: batch.dataset } });
    }
    const order = storageOrder(packBatch(batch));
    const lines = [CSV_COLUMNS.join(',')];
    for (const i of order) {
      const r = batch.records[i] as PointRecord;
      lines.push([
        field(r.id), field(r.dataset), field(r.variable), formatTimeMicros(r.timeUs), number(r.value), field(r.unit), field(r.quality),
        field(r.station), number(r.elevation), number(r.lon), number(r.lat), field(r.attrs),
      ].join(','));
    }
    const bytes = Buffer.from(lines.join(EOL) + EOL, 'utf8');
    const out = this.codec.name === 'gzip' ? gzipSync(bytes, { level: this.codec.level! }) : bytes;
    return { bytes: new Uint8Array(out.buffer, out.byteOffset, out.byteLength), rows: order.length, schema: [...CSV_COLUMNS] };
  }

  decode(bytes: Uint8Array, base: Omit<SourcePosition, 'offset'>): DecodedObject {
    let text: string;
    try {
      text = (this.codec.name === 'gzip' ? gunzipSync(bytes) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString('utf8');
    } catch (cause) {
      throw new EncodeError('not a readable gzipped CSV object', { cause, context: { stage: 'decode' } });
    }
    const rows = parseCsv(text);
    const header = rows.shift();
    if (header === undefined || header.join(',') !== CSV_COLUMNS.join(',')) throw new EncodeError(`CSV object: expected the header ${CSV_COLUMNS.join(',')}`, { context: { stage: 'decode' } });
    const records = rows.map((row, i): PointRecord => {
      const bad = (what: string): never => {
        throw new EncodeError(`CSV object: row ${i + 2}: ${what}`, { context: { stage: 'decode' } });
      };
      const [id, dataset, variable, time, value, unit, quality, station, elevation, lon, lat, attrs] = row;
      if (row.length !== CSV_COLUMNS.length) bad(`${row.length} fields, not ${CSV_COLUMNS.length}`);
      const num = (v: string | null, name: string) => (v === null ? null : Number.isNaN(Number(v)) ? bad(`${name} ${v} is not a number`) : Number(v));
      return {
        kind: 'point', position: { ...base, offset: i }, size: 0, id: id!, dataset: dataset ?? bad('no dataset'), variable: variable ?? bad('no variable'),
        timeUs: parseTimeUs(time) ?? bad(`time ${time} is not RFC 3339`), value: num(value!, 'value') ?? bad('no value'), unit: unit!, quality: quality!,
        station: station!, elevation: num(elevation!, 'elevation'), lon: num(lon!, 'lon') ?? bad('no lon'), lat: num(lat!, 'lat') ?? bad('no lat'), attrs: attrs!,
      };
    });
    return { records, schema: [...CSV_COLUMNS] };
  }

  async close(): Promise<void> {}
}

/** RFC 4180 rows; an unquoted empty field is null, a quoted one the empty string. */
export function parseCsv(text: string): (string | null)[][] {
  const rows: (string | null)[][] = [];
  let row: (string | null)[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    let value: string | null;
    if (text[i] === '"') {
      let out = '';
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) throw new EncodeError('CSV object: a quoted field does not end', { context: { stage: 'decode' } });
        out += text.slice(i, q);
        if (text[q + 1] === '"') {
          out += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      value = out;
    } else {
      let end = i;
      while (end < n && text[end] !== ',' && text[end] !== '\r' && text[end] !== '\n') end++;
      value = end === i ? null : text.slice(i, end);
      i = end;
    }
    row.push(value);
    if (text[i] === ',') {
      i++;
      if (i === n) row.push(null);
      continue;
    }
    if (text[i] === '\r') i++;
    if (text[i] === '\n') i++;
    rows.push(row);
    row = [];
  }
  if (row.length > 0) rows.push(row);
  return rows;
}

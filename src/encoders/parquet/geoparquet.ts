import { tableToIPC } from 'apache-arrow';
import { createRequire } from 'node:module';
import type * as ParquetWasm from 'parquet-wasm/node';
import type { Batch } from '../../core/batch.js';
import { EncodeError } from '../../core/errors.js';
import { recordBbox } from '../../core/record.js';
import type { CompressionConfig } from '../../config/common.js';
import { batchToTable } from '../arrow/batch-table.js';
import { geoParquetTypeName } from '../wkb.js';
import type { EncodedObject, Encoder } from '../encoder.js';

// parquet-wasm's Node build is CommonJS and instantiates its wasm synchronously on load.
const parquet = createRequire(import.meta.url)('parquet-wasm/node') as typeof ParquetWasm;

export interface ParquetOptions {
  compression: CompressionConfig;
  rowGroupSize: number;
}

/**
 * Column-chunk codecs and the level each gets. parquet-wasm (arrow-rs) takes no level, so the
 * codec's writer default applies whatever the tier's level says; it is recorded as such.
 */
const parquetCodecs: Record<CompressionConfig['algorithm'], { codec: ParquetWasm.Compression; name: string; level: number | null }> = {
  zstd: { codec: parquet.Compression.ZSTD, name: 'zstd', level: 1 },
  lz4: { codec: parquet.Compression.LZ4_RAW, name: 'lz4_raw', level: null },
  gzip: { codec: parquet.Compression.GZIP, name: 'gzip', level: 6 },
  brotli: { codec: parquet.Compression.BROTLI, name: 'brotli', level: 1 },
  snappy: { codec: parquet.Compression.SNAPPY, name: 'snappy', level: null },
  none: { codec: parquet.Compression.UNCOMPRESSED, name: 'none', level: null },
};

/** OGC:CRS84 (WGS 84, lon/lat order) as PROJJSON, the GeoParquet default made explicit. */
export const CRS84 = {
  $schema: 'https://proj.org/schemas/v0.7/projjson.schema.json',
  type: 'GeographicCRS',
  name: 'WGS 84 (CRS84)',
  datum_ensemble: {
    name: 'World Geodetic System 1984 ensemble',
    members: [
      { name: 'World Geodetic System 1984 (Transit)' },
      { name: 'World Geodetic System 1984 (G730)' },
      { name: 'World Geodetic System 1984 (G873)' },
      { name: 'World Geodetic System 1984 (G1150)' },
      { name: 'World Geodetic System 1984 (G1674)' },
      { name: 'World Geodetic System 1984 (G1762)' },
      { name: 'World Geodetic System 1984 (G2139)' },
    ],
    ellipsoid: { name: 'WGS 84', semi_major_axis: 6378137, inverse_flattening: 298.257223563 },
    accuracy: '2.0',
    id: { authority: 'EPSG', code: 6326 },
  },
  coordinate_system: {
    subtype: 'ellipsoidal',
    axis: [
      { name: 'Geodetic longitude', abbreviation: 'Lon', direction: 'east', unit: 'degree' },
      { name: 'Geodetic latitude', abbreviation: 'Lat', direction: 'north', unit: 'degree' },
    ],
  },
  scope: 'Not known.',
  area: 'World.',
  bbox: { south_latitude: -90, west_longitude: -180, north_latitude: 90, east_longitude: 180 },
  id: { authority: 'OGC', code: 'CRS84' },
};

export function geoMetadata(batch: Batch): string {
  const bbox = [Infinity, Infinity, -Infinity, -Infinity];
  const types = new Set<string>();
  for (const record of batch.records) {
    const [a, b, c, d] = recordBbox(record);
    if (a < bbox[0]!) bbox[0] = a;
    if (b < bbox[1]!) bbox[1] = b;
    if (c > bbox[2]!) bbox[2] = c;
    if (d > bbox[3]!) bbox[3] = d;
    types.add(record.kind === 'point' ? 'Point' : geoParquetTypeName(record.geometry));
  }
  return JSON.stringify({
    version: '1.1.0',
    primary_column: 'geometry',
    columns: {
      geometry: { encoding: 'WKB', geometry_types: [...types].sort(), bbox, crs: CRS84, edges: 'planar' },
    },
  });
}

export class GeoParquetEncoder implements Encoder {
  readonly format = 'parquet';
  readonly extension = '.parquet';
  readonly contentType = 'application/vnd.apache.parquet';

  constructor(private readonly options: ParquetOptions) {}

  get codec(): { name: string; level: number | null } {
    const { name, level } = parquetCodecs[this.options.compression.algorithm];
    return { name, level };
  }

  encode(batch: Batch): EncodedObject {
    let wasmTable: ParquetWasm.Table | undefined;
    try {
      // `geo` goes both in the Parquet key-value metadata (GDAL, DuckDB) and in the Arrow schema
      // kept inside ARROW:schema (pyarrow and GeoPandas prefer that one).
      const geo = geoMetadata(batch);
      const ipc = tableToIPC(batchToTable(batch, { geo }), 'stream');
      wasmTable = parquet.Table.fromIPCStream(ipc);
      const props = new parquet.WriterPropertiesBuilder()
        .setCompression(parquetCodecs[this.options.compression.algorithm].codec)
        .setMaxRowGroupSize(this.options.rowGroupSize)
        .setCreatedBy('earth-memory')
        .setKeyValueMetadata(new Map([['geo', geo]]))
        .build();
      // writeParquet consumes the table: it must not be freed again.
      const table = wasmTable;
      wasmTable = undefined;
      const bytes = parquet.writeParquet(table, props);
      return { bytes, rows: batch.records.length };
    } catch (cause) {
      throw new EncodeError('GeoParquet encoding failed', {
        cause,
        context: { stage: 'encode', memory_type: batch.memoryType, dataset: batch.dataset },
      });
    } finally {
      wasmTable?.free();
    }
  }
}

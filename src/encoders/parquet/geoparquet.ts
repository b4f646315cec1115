import { tableToIPC } from 'apache-arrow';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type * as ParquetWasm from 'parquet-wasm/node';
import { codecLevel } from '../../compression/levels.js';
import type { PipelineBatch } from '../../core/batch.js';
import { EncodeError } from '../../core/errors.js';
import type { SourcePosition } from '../../core/record.js';
import type { CompressionConfig } from '../../config/common.js';
import { columnsToTable, packBatch, type BatchColumns } from '../arrow/batch-table.js';
import { PointColumnsBuilder } from '../arrow/point-builder.js';
import { leaseEncodePool, type EncodePoolLease } from '../encode-pool.js';
import type { DecodedObject, EncodedObject, Encoder } from '../encoder.js';
import type { FormatKeys } from '../registry.js';
import { decodeGeoParquet } from './decode.js';
import { ParquetCodec, recompressParquet, type PageCompressor } from './recompress.js';
import { hiveValues } from '../../stages/object-key.js';

const require = createRequire(import.meta.url);
// parquet-wasm's Node build is CommonJS and instantiates its wasm synchronously on load.
const parquet = require('parquet-wasm/node') as typeof ParquetWasm;
/**
 * The native binding of @mongodb-js/zstd 1.2.2: its `compress(buf, level)` honours the level,
 * while the package's main export ignores it (always 3). It runs on libuv's thread pool.
 */
const zstd = require('@mongodb-js/zstd/bindings') as { compress(data: Buffer, level: number): Promise<Buffer> };
const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);

export interface ParquetOptions {
  compression: CompressionConfig;
  rowGroupSize: number;
  /** The data page size limit in bytes (arrow-rs default: 1 MiB). */
  pageSize?: number;
  /** ParquetStorage's partition_cols: those that are record columns are left out of the file (the path has them). */
  partitionCols?: readonly string[];
}

/** Record columns a Hive partition can take out of the file (year, month, day are derived from `time`, which stays). */
const HIVE_RECORD_COLUMNS = ['dataset', 'variable', 'station'];

/** A parquet backend's options: its own keys over the tier's `compression` and `parquet.row_group_size`. */
export function parquetOptions(tierCompression: CompressionConfig, tierRowGroupSize: number, keys: FormatKeys): ParquetOptions {
  return {
    compression: keys.compression === undefined ? tierCompression : { algorithm: keys.compression as CompressionConfig['algorithm'], level: tierCompression.level },
    rowGroupSize: keys.row_group_size ?? tierRowGroupSize,
    ...(keys.page_size === undefined ? {} : { pageSize: keys.page_size }),
    ...(keys.partition_cols === undefined ? {} : { partitionCols: keys.partition_cols }),
  };
}

const asBuffer = (page: Uint8Array) => Buffer.from(page.buffer, page.byteOffset, page.byteLength);

/**
 * Column-chunk codecs. parquet-wasm 0.8 (arrow-rs) takes a codec but no level (it always uses
 * zstd 1, gzip 6, brotli 1), so for codecs with levels it writes UNCOMPRESSED pages and
 * `recompressParquet` compresses them at the level from `codecLevel` (src/compression/levels.ts).
 * Codecs without levels are left to parquet-wasm.
 */
const parquetCodecs: Record<CompressionConfig['algorithm'], { name: string; wasm: ParquetWasm.Compression; leveled?: { codec: number; compressor(level: number): PageCompressor } }> = {
  zstd: {
    name: 'zstd',
    wasm: parquet.Compression.UNCOMPRESSED,
    leveled: { codec: ParquetCodec.ZSTD, compressor: (level) => (page) => zstd.compress(asBuffer(page), level) },
  },
  gzip: {
    name: 'gzip',
    wasm: parquet.Compression.UNCOMPRESSED,
    leveled: { codec: ParquetCodec.GZIP, compressor: (level) => (page) => gzip(page, { level }) },
  },
  brotli: {
    name: 'brotli',
    wasm: parquet.Compression.UNCOMPRESSED,
    leveled: {
      codec: ParquetCodec.BROTLI,
      compressor: (level) => (page) => brotli(page, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level } }),
    },
  },
  lz4: { name: 'lz4_raw', wasm: parquet.Compression.LZ4_RAW },
  snappy: { name: 'snappy', wasm: parquet.Compression.SNAPPY },
  none: { name: 'none', wasm: parquet.Compression.UNCOMPRESSED },
};

/**
 * Where arrow-rs's default (a dictionary, falling back to PLAIN when it outgrows its page) loses,
 * as measured with this encoder on the sample data (`npm run bench` prints bytes per column). Rows
 * are sorted, so `time` is runs of small deltas and neighbouring ids share prefixes, while a
 * dictionary of unique values only adds its indexes. Feature values are mostly unique measurements;
 * point values are quantized and repeat, and geometries often do (stations, fixed cells): those
 * keep the dictionary, which costs ~1% when every value is unique.
 */
const columnEncodings: Record<PipelineBatch['kind'], Record<string, ParquetWasm.Encoding>> = {
  point: { id: parquet.Encoding.DELTA_BYTE_ARRAY, time: parquet.Encoding.DELTA_BINARY_PACKED },
  vector: { id: parquet.Encoding.DELTA_BYTE_ARRAY, time: parquet.Encoding.DELTA_BINARY_PACKED, value: parquet.Encoding.PLAIN },
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

/**
 * The `geo` metadata of packed columns (their bbox and geometry types were gathered while packing).
 * No bbox `covering` column: rows are stored by time (features) or station (points, whose lon/lat
 * columns already prune), so a row group's bbox statistics would span the whole extent and prune
 * nothing, while the column added 38% (float32) to 74% (float64) to the sample features' bytes.
 */
export function geoMetadata(columns: Pick<BatchColumns, 'bbox' | 'geometryTypes'>): string {
  return JSON.stringify({
    version: '1.1.0',
    primary_column: 'geometry',
    columns: {
      geometry: { encoding: 'WKB', geometry_types: [...columns.geometryTypes].sort(), bbox: columns.bbox, crs: CRS84, edges: 'planar' },
    },
  });
}

export class GeoParquetEncoder implements Encoder {
  readonly format = 'parquet';
  readonly pointColumns = (): PointColumnsBuilder => new PointColumnsBuilder();
  readonly extension = '.parquet';
  readonly contentType = 'application/vnd.apache.parquet';
  readonly codec: { name: string; level: number | null };
  /** For codecs with levels: the Parquet codec and the page compressor at this tier's level. */
  private readonly recompress: { codec: number; page: PageCompressor } | undefined;
  /** The shared encode pool this encoder uses; none: it encodes on the calling thread. */
  private readonly pool: EncodePoolLease | undefined;

  /** `workers`: the size of the shared encode pool to use (`batch.encode_workers`); 0 encodes in process. */
  constructor(private readonly options: ParquetOptions, workers = 0) {
    const { name, leveled } = parquetCodecs[options.compression.algorithm];
    const level = codecLevel(options.compression);
    // The level table and this one must agree, or the catalog would record a level not used.
    if ((leveled === undefined) !== (level === null)) throw new Error(`compression level table disagrees with the ${name} Parquet codec`);
    this.codec = { name, level };
    this.recompress = leveled === undefined || level === null ? undefined : { codec: leveled.codec, page: leveled.compressor(level) };
    this.pool = workers > 0 ? leaseEncodePool(workers) : undefined;
  }

  async encode(batch: PipelineBatch): Promise<EncodedObject> {
    try {
      const columns = packBatch(batch);
      return await (this.pool === undefined ? this.encodeColumns(columns) : this.pool.encode(columns, this.options));
    } catch (cause) {
      // A worker that died says so (retriable); anything else fails again on the same batch.
      throw new EncodeError('GeoParquet encoding failed', {
        cause,
        retriable: cause instanceof EncodeError && cause.retriable,
        context: { stage: 'encode', memory_type: batch.memoryType, dataset: batch.dataset },
      });
    }
  }

  /**
   * Packed columns → GeoParquet bytes: the whole encode, which an encode worker
   * (src/encoders/encode-worker.ts) runs as the calling thread does, so both give the same bytes.
   */
  async encodeColumns(columns: BatchColumns): Promise<EncodedObject> {
    const { wasm } = parquetCodecs[this.options.compression.algorithm];
    let wasmTable: ParquetWasm.Table | undefined;
    try {
      // `geo` goes both in the Parquet key-value metadata (GDAL, DuckDB) and in the Arrow schema
      // kept inside ARROW:schema (pyarrow and GeoPandas prefer that one).
      const geo = geoMetadata(columns);
      const drop = (this.options.partitionCols ?? []).filter((c) => HIVE_RECORD_COLUMNS.includes(c));
      const arrow = columnsToTable(columns, { geo }, drop);
      const ipc = tableToIPC(arrow, 'stream');
      wasmTable = parquet.Table.fromIPCStream(ipc);
      let builder = new parquet.WriterPropertiesBuilder()
        .setCompression(wasm)
        .setMaxRowGroupSize(this.options.rowGroupSize)
        .setCreatedBy('earth-memory')
        .setKeyValueMetadata(new Map([['geo', geo]]));
      // arrow-rs checks the page size after each write batch: batches small enough that a page ends near the limit.
      if (this.options.pageSize !== undefined) builder = builder.setDataPageSizeLimit(this.options.pageSize).setWriteBatchSize(Math.max(1, Math.min(1024, Math.floor(this.options.pageSize / 64))));
      for (const [column, encoding] of Object.entries(columnEncodings[columns.kind])) {
        builder = builder.setColumnDictionaryEnabled(column, false).setColumnEncoding(column, encoding);
      }
      const props = builder.build();
      // writeParquet consumes the table: it must not be freed again.
      const table = wasmTable;
      wasmTable = undefined;
      const written = parquet.writeParquet(table, props);
      const bytes = this.recompress === undefined ? written : await recompressParquet(written, this.recompress.codec, this.recompress.page);
      return { bytes, rows: columns.length, schema: arrow.schema.fields.map((f) => f.name) };
    } finally {
      wasmTable?.free();
    }
  }

  decode(bytes: Uint8Array, base: Omit<SourcePosition, 'offset'>, key?: string): DecodedObject {
    const cols = (this.options.partitionCols ?? []).filter((c) => HIVE_RECORD_COLUMNS.includes(c));
    if (cols.length === 0) return decodeGeoParquet(bytes, base);
    if (key === undefined) throw new EncodeError(`a Parquet object partitioned by ${cols.join(', ')} is read with its key (the values are in its path)`, { context: { stage: 'decode' } });
    return decodeGeoParquet(bytes, base, hiveValues(key, cols));
  }

  async close(): Promise<void> {
    await this.pool?.release();
  }
}

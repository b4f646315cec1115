/**
 * The record contract: one observation, as parsed and validated from its source.
 * Published for producers as JSON Schema in src/records/schemas/.
 */

/** Where a record came from: a file line, or a Kafka topic/partition/offset. */
export interface SourcePosition {
  /** File path (as configured) or Kafka topic. */
  source: string;
  /** Kafka partition; 0 for files. */
  partition: number;
  /** Kafka offset, or the 1-based line number in a file. */
  offset: number;
}

export type GeoJsonGeometry =
  | { type: 'Point'; coordinates: number[] }
  | { type: 'MultiPoint'; coordinates: number[][] }
  | { type: 'LineString'; coordinates: number[][] }
  | { type: 'MultiLineString'; coordinates: number[][][] }
  | { type: 'Polygon'; coordinates: number[][][] }
  | { type: 'MultiPolygon'; coordinates: number[][][][] };

interface RecordBase {
  position: SourcePosition;
  /** Size of the original payload in bytes; what batches count against `max_bytes`. */
  size: number;
  id: string | null;
  dataset: string;
  variable: string | null;
  /** Observation time, microseconds since the Unix epoch (UTC). */
  timeUs: number;
  /** Kafka key and headers, kept as provenance. */
  key?: string | null;
}

/** A station or sensor value at a lon/lat and time. */
export interface PointRecord extends RecordBase {
  kind: 'point';
  variable: string;
  lon: number;
  lat: number;
  value: number;
  unit: string | null;
  quality: string | null;
  station: string | null;
  elevation: number | null;
  /** Free-form attributes, kept as JSON text. */
  attrs: string | null;
}

/** A GeoJSON Feature with a time. */
export interface VectorRecord extends RecordBase {
  kind: 'vector';
  geometry: GeoJsonGeometry;
  /** The feature's other properties, as JSON text. */
  properties: string | null;
  value: number | null;
  /** [minLon, minLat, maxLon, maxLat] of the geometry. */
  bbox: [number, number, number, number];
}

export type ObservationRecord = PointRecord | VectorRecord;
export type RecordKind = ObservationRecord['kind'];

/** Why a record went to the dead letter. Stable codes: users filter on them. */
export type DeadLetterReason =
  | 'invalid_utf8'
  | 'malformed_json'
  | 'not_an_object'
  | 'missing_field'
  | 'wrong_type'
  | 'lon_out_of_range'
  | 'lat_out_of_range'
  | 'non_finite_value'
  | 'bad_time'
  | 'bad_geometry'
  | 'too_large'
  | 'unclassified'
  // Raster tiles (src/records/raster.ts; schemas/raster-tile.md):
  /** Not an envelope: magic, version, reserved bytes, header length, header JSON, unknown key. */
  | 'bad_envelope'
  /** `dtype` is not one of uint8 int8 uint16 int16 uint32 int32 float32 float64. */
  | 'bad_dtype'
  /** The (decompressed) pixels are not width × height × bands × bytes(dtype). */
  | 'wrong_pixel_size'
  /** x + width > scene_width or y + height > scene_height. */
  | 'tile_outside_scene'
  /** The CRS is malformed, or not one the decoder converts to WGS 84. */
  | 'unknown_crs'
  /** Not exactly one of geotransform/bbox, not north-up, rotated, non-finite, or off the earth. */
  | 'bad_geotransform'
  /** Unknown compression, or the pixel bytes do not decompress. */
  | 'bad_compression'
  /** nodata is not a value of the dtype (e.g. 300 for uint8, "nan" for int16). */
  | 'bad_nodata'
  /** A tile whose scene description (size, dtype, bands, CRS, geotransform) differs from its scene's first tile. */
  | 'scene_mismatch';

export interface DeadLetter {
  reason: DeadLetterReason;
  message: string;
  position: SourcePosition;
  /** The original payload, byte for byte. */
  payload: Uint8Array;
}

export function recordBbox(record: ObservationRecord): [number, number, number, number] {
  return record.kind === 'point' ? [record.lon, record.lat, record.lon, record.lat] : record.bbox;
}

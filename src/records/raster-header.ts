/**
 * The raster tile header contract, defined once: this JSON Schema is what
 * src/records/schemas/raster-tile.schema.json publishes (a test checks the file equals it) and
 * what `validateHeader` interprets, so the published schema and the decoder cannot drift.
 * `validateHeader` implements exactly the keywords used here (type, enum, const, minimum, maximum,
 * minLength, maxLength, pattern, items, minItems, maxItems, oneOf, required, additionalProperties);
 * the rules JSON Schema cannot state (tile inside the scene, north-up, nodata fits the dtype, pixel
 * size) are checked in raster.ts and listed in raster-tile.md.
 */
import type { DeadLetterReason } from '../core/record.js';
import { RASTER_DTYPES } from '../core/raster.js';

export const MAX_SCENE_SIDE = 1 << 20;
export const MAX_TILE_SIDE = 1 << 16;
export const MAX_BANDS = 1024;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonSchema = { [key: string]: Json };

const label = { type: 'string', minLength: 1, maxLength: 1024, pattern: '^[^\\u0000]+$' } as const;
const count = (minimum: number, maximum: number, description: string) => ({ type: 'integer', minimum, maximum, description });

export const RASTER_TILE_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://earth-memory.dev/schemas/raster-tile.schema.json',
  title: 'earth-memory raster tile header',
  description:
    'The JSON header of one raster tile envelope (bytes "EMRT", version 1; see raster-tile.md). Unknown keys are rejected. Also checked: x + width <= scene_width, y + height <= scene_height, a north-up geotransform (pixel width > 0, rotation terms 0, pixel height < 0), nodata representable in the dtype, and the decompressed pixels exactly width × height × bands × bytes(dtype).',
  type: 'object',
  additionalProperties: false,
  required: ['dataset', 'variable', 'time', 'crs', 'scene_id', 'scene_width', 'scene_height', 'x', 'y', 'width', 'height', 'dtype'],
  oneOf: [{ required: ['geotransform'] }, { required: ['bbox'] }],
  properties: {
    dataset: label,
    variable: label,
    time: {
      type: 'string',
      description: 'RFC 3339 date-time of the scene, microseconds kept.',
      pattern: '^\\d{4}-\\d{2}-\\d{2}[Tt ]\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?([Zz]|[+-]\\d{2}:\\d{2})$',
    },
    crs: {
      description: 'An EPSG code (integer), "EPSG:n", or WKT 1/2 whose root has an EPSG identifier. Decodable: 4326, 3857, 32601–32660, 32701–32760.',
      oneOf: [
        { type: 'integer', minimum: 1024, maximum: 32766 },
        { type: 'string', minLength: 1, maxLength: 32768 },
      ],
    },
    scene_id: { ...label, description: 'Shared by every tile of the scene; unique within dataset and variable.' },
    scene_width: count(1, MAX_SCENE_SIDE, 'Full scene width in pixels.'),
    scene_height: count(1, MAX_SCENE_SIDE, 'Full scene height in pixels.'),
    geotransform: {
      type: 'array',
      description: 'GDAL order, north-up: [origin_x, pixel_width, 0, origin_y, 0, -pixel_height], in CRS units.',
      items: { type: 'number' },
      minItems: 6,
      maxItems: 6,
    },
    bbox: {
      type: 'array',
      description: 'The scene [min_x, min_y, max_x, max_y] in the CRS (outer pixel edges); the geotransform is derived from it.',
      items: { type: 'number' },
      minItems: 4,
      maxItems: 4,
    },
    x: count(0, MAX_SCENE_SIDE - 1, "Column of the tile's top-left pixel in the scene."),
    y: count(0, MAX_SCENE_SIDE - 1, "Row of the tile's top-left pixel in the scene."),
    width: count(1, MAX_TILE_SIDE, 'Tile width in pixels.'),
    height: count(1, MAX_TILE_SIDE, 'Tile height in pixels.'),
    dtype: { enum: [...RASTER_DTYPES] },
    nodata: {
      description: 'The no-data value: a number, "nan" (float dtypes), or null/absent for none.',
      oneOf: [{ type: 'number' }, { const: 'nan' }, { type: 'null' }],
    },
    bands: count(1, MAX_BANDS, 'Samples per pixel, interleaved (default 1).'),
    compression: { enum: ['none', 'zstd', 'deflate'], description: 'Of the pixel bytes: none (default), zstd (one frame with its content size), deflate (a zlib stream).' },
    id: { type: ['string', 'null'], maxLength: 1024, description: "Producer's identifier of the tile." },
  },
} as const satisfies JsonSchema;

/** The dead-letter reason of a header key's failure; the rest are `wrong_type`. */
const REASON: Record<string, DeadLetterReason> = {
  time: 'bad_time',
  crs: 'unknown_crs',
  geotransform: 'bad_geotransform',
  bbox: 'bad_geotransform',
  dtype: 'bad_dtype',
  nodata: 'bad_nodata',
  compression: 'bad_compression',
};

export class HeaderInvalid {
  constructor(
    readonly reason: DeadLetterReason,
    readonly message: string,
  ) {}
}

/** Validates a parsed header against RASTER_TILE_SCHEMA; the first failure, or undefined. */
export function validateHeader(value: unknown): HeaderInvalid | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return new HeaderInvalid('bad_envelope', 'the header must be a JSON object');
  const o = value as Record<string, unknown>;
  const schema = RASTER_TILE_SCHEMA;
  for (const key of Object.keys(o)) {
    if (!Object.hasOwn(schema.properties, key)) return new HeaderInvalid('bad_envelope', `unknown header key "${key}"`);
  }
  for (const key of schema.required) {
    if (o[key] === undefined) return new HeaderInvalid(key === 'crs' ? 'unknown_crs' : 'missing_field', `missing header key "${key}"`);
  }
  const hasGt = o.geotransform !== undefined;
  if (hasGt === (o.bbox !== undefined)) return new HeaderInvalid('bad_geotransform', 'give exactly one of "geotransform" and "bbox"');
  for (const [key, sub] of Object.entries(schema.properties)) {
    if (o[key] === undefined) continue;
    const problem = check(sub as JsonSchema, o[key]);
    if (problem) return new HeaderInvalid(REASON[key] ?? 'wrong_type', `${key}: ${problem}`);
  }
  return undefined;
}

/** The first way `v` fails `s`, in words, or undefined. */
function check(s: JsonSchema, v: unknown): string | undefined {
  if (s.oneOf !== undefined) {
    const passing = (s.oneOf as JsonSchema[]).filter((alt) => check(alt, v) === undefined).length;
    if (passing !== 1) return `expected ${describe(s)}`;
  }
  if (s.const !== undefined && v !== s.const) return `expected ${JSON.stringify(s.const)}`;
  if (s.enum !== undefined && !(s.enum as Json[]).includes(v as Json)) return `expected one of ${(s.enum as Json[]).join(', ')}`;
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
    if (!types.some((t) => isType(t, v))) return `expected ${types.join(' or ')}`;
  }
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && v < s.minimum) return `${v} is below ${s.minimum}`;
    if (typeof s.maximum === 'number' && v > s.maximum) return `${v} is above ${s.maximum}`;
  }
  if (typeof v === 'string') {
    const length = [...v].length;
    if (typeof s.minLength === 'number' && length < s.minLength) return `shorter than ${s.minLength} characters`;
    if (typeof s.maxLength === 'number' && length > s.maxLength) return `longer than ${s.maxLength} characters`;
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) return `does not match ${s.pattern}`;
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) return `expected at least ${s.minItems} items`;
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) return `expected at most ${s.maxItems} items`;
    if (s.items !== undefined) {
      for (let i = 0; i < v.length; i++) {
        const problem = check(s.items as JsonSchema, v[i]);
        if (problem) return `[${i}]: ${problem}`;
      }
    }
  }
  return undefined;
}

function isType(t: string, v: unknown): boolean {
  switch (t) {
    case 'string': return typeof v === 'string';
    case 'number': return typeof v === 'number';
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    case 'array': return Array.isArray(v);
    case 'null': return v === null;
    case 'object': return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'boolean': return typeof v === 'boolean';
    default: return false;
  }
}

function describe(s: JsonSchema): string {
  return (s.oneOf as JsonSchema[])
    .map((alt) => (alt.const !== undefined ? JSON.stringify(alt.const) : String(alt.type)))
    .join(' or ');
}

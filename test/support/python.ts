import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The reference-reader Python (pyarrow, duckdb, pyogrio, rasterio, rio-cogeo) that `scripts/services up pyref` installs. */
export function referencePython(): string {
  const python = process.env.EARTHMEM_PYTHON ?? resolve('.services/venv/bin/python');
  if (!existsSync(python)) throw new Error(`reference Python not found at ${python}: run scripts/services up pyref`);
  return python;
}

export interface ParquetCheck {
  files: {
    path: string;
    rows: number;
    row_groups: number;
    bytes: number;
    codecs: string[];
    /** Per column path: the encodings of its chunks (pyarrow's names) and their compressed bytes. */
    columns: Record<string, { encodings: string[]; compressed_bytes: number }>;
    schema: Record<string, string>;
    geo: { columns?: { geometry?: { geometry_types?: string[]; bbox?: number[] } } };
    problems: string[];
    ids: (string | null)[];
  }[];
  duckdb_count: number;
  /** What DuckDB decoded from all files together (null for no files). */
  duckdb_read: { distinct_ids: number; time_min_us: number; time_max_us: number; value_sum: number | string | null; geometry_bytes: number } | null;
}

/** Reads Parquet files with pyarrow and DuckDB (test/support/check_parquet.py). */
export function checkParquet(paths: string[]): ParquetCheck {
  const out = execFileSync(referencePython(), [resolve('test/support/check_parquet.py')], {
    input: paths.join('\n'),
    maxBuffer: 1 << 30,
  });
  return JSON.parse(out.toString()) as ParquetCheck;
}

export interface GdalCheck {
  gdal: string;
  files: {
    path: string;
    driver: string;
    layer: string;
    geometry_name: string;
    geometry_type: string;
    crs: string;
    features: number;
    total_bounds: number[];
    fields: string[];
    /** Each feature's id and geometry (WKB, hex) as GDAL hands them out. */
    rows: [string | null, string][];
  }[];
}

/** Reads GeoParquet files with GDAL (test/support/check_gdal.py: pyogrio's GDAL, ADBC driver over DuckDB). */
export function checkGdal(paths: string[]): GdalCheck {
  const out = execFileSync(referencePython(), [resolve('test/support/check_gdal.py')], {
    input: paths.join('\n'),
    maxBuffer: 1 << 30,
  });
  return JSON.parse(out.toString()) as GdalCheck;
}

export interface ZarrCheck {
  zarr_format: number;
  dims: Record<string, number>;
  coords: string[];
  data_vars: string[];
  attrs: Record<string, unknown>;
  group_attrs: Record<string, unknown>;
  time_dtype: string;
  time: string[];
  station_name: string[];
  lon: number[];
  lat: number[];
  /** Per data variable: dims and values (NaN fill masked to null); data is null beyond 2-D. */
  values: Record<string, { dims: string[]; dtype: string; data: (number | null)[][]; attrs: Record<string, string>; per_step?: [number, number][] }>;
  zarr_arrays: Record<string, { shape: number[]; dtype: string; attrs: Record<string, unknown> }>;
}

/** Opens a Zarr store with xarray.open_zarr and zarr-python (test/support/check_zarr.py). */
export function checkZarr(path: string): ZarrCheck {
  return JSON.parse(execFileSync(referencePython(), [resolve('test/support/check_zarr.py'), path], { maxBuffer: 1 << 30 }).toString()) as ZarrCheck;
}

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The reference-reader Python (pyarrow, duckdb, rasterio, rio-cogeo) that `scripts/services up pyref` installs. */
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
    codecs: string[];
    schema: Record<string, string>;
    geo: { columns?: { geometry?: { geometry_types?: string[]; bbox?: number[] } } };
    problems: string[];
    ids: (string | null)[];
  }[];
  duckdb_count: number;
}

/** Reads Parquet files with pyarrow and DuckDB (test/support/check_parquet.py). */
export function checkParquet(paths: string[]): ParquetCheck {
  const out = execFileSync(referencePython(), [resolve('test/support/check_parquet.py')], {
    input: paths.join('\n'),
    maxBuffer: 1 << 30,
  });
  return JSON.parse(out.toString()) as ParquetCheck;
}

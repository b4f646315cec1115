import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The reference-reader Python (pyarrow, duckdb) that `scripts/services up pyref` installs. */
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
  duckdb_read: { distinct_ids: number; time_min_us: number; time_max_us: number; value_sum: number | null; geometry_bytes: number } | null;
}

/** Reads Parquet files with pyarrow and DuckDB (test/support/check_parquet.py). */
export function checkParquet(paths: string[]): ParquetCheck {
  const out = execFileSync(referencePython(), [resolve('test/support/check_parquet.py')], {
    input: paths.join('\n'),
    maxBuffer: 1 << 30,
  });
  return JSON.parse(out.toString()) as ParquetCheck;
}

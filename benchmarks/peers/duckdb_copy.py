"""The file-replay peer of `npm run bench`: DuckDB's own NDJSON → Parquet (zstd) on the same input.

Usage: duckdb_copy.py INPUT.ndjson OUTPUT.parquet. Prints one JSON line: the COPY's wall seconds,
the rows it wrote, the output's bytes and this process's peak RSS (KiB).
"""
import json
import os
import resource
import sys
import time

import duckdb

source, out = sys.argv[1], sys.argv[2]
started = time.perf_counter()
duckdb.sql(f"COPY (SELECT * FROM read_json_auto('{source}')) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
seconds = time.perf_counter() - started
rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
print(json.dumps({"seconds": seconds, "rows": rows, "bytes": os.path.getsize(out), "maxRssKiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))

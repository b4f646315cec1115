"""Compressed bytes per column (summed over files and row groups), from the Parquet footers.

Usage: parquet_columns.py FILE…  Prints one JSON object: column path → bytes.
"""
import json
import sys

import pyarrow.parquet as pq

sizes = {}
for path in sys.argv[1:]:
    meta = pq.ParquetFile(path).metadata
    for r in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            chunk = meta.row_group(r).column(c)
            sizes[chunk.path_in_schema] = sizes.get(chunk.path_in_schema, 0) + chunk.total_compressed_size
print(json.dumps(sizes))

"""Reference reader for earth-memory's Parquet output: pyarrow and DuckDB, not our own code.

Reads the files named on stdin (one path per line) and prints one JSON document: for each file
its schema, GeoParquet `geo` metadata checks, row ids and how each column is stored (encodings,
compressed bytes); plus what DuckDB reads from all files together (it decodes every column).
"""
import json
import math
import os
import struct
import sys

import duckdb
import pyarrow.parquet as pq

GEOMETRY_TYPES = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"}


def wkb_bbox(buf):
    """Bounding box of a little/big-endian 2D/Z WKB geometry, by walking it."""
    xs, ys = [], []

    def read(off):
        order = "<" if buf[off] == 1 else ">"
        gtype = struct.unpack_from(order + "I", buf, off + 1)[0]
        dims = 3 if gtype > 1000 else 2
        base = gtype % 1000
        off += 5

        def pts(off, n):
            for _ in range(n):
                x, y = struct.unpack_from(order + "dd", buf, off)
                xs.append(x)
                ys.append(y)
                off += 8 * dims
            return off

        if base == 1:
            return pts(off, 1), base
        n = struct.unpack_from(order + "I", buf, off)[0]
        off += 4
        if base == 2:
            return pts(off, n), base
        if base == 3:
            for _ in range(n):
                m = struct.unpack_from(order + "I", buf, off)[0]
                off = pts(off + 4, m)
            return off, base
        for _ in range(n):
            off, _ = read(off)
        return off, base

    end, base = read(0)
    assert end == len(buf), f"WKB has {len(buf) - end} trailing bytes"
    return min(xs), min(ys), max(xs), max(ys)


def check_file(path):
    f = pq.ParquetFile(path)
    schema = f.schema_arrow
    table = f.read()
    meta = f.metadata
    problems = []
    geo_raw = (schema.metadata or {}).get(b"geo")
    if geo_raw is None:
        problems.append("no geo metadata")
        geo = {}
    else:
        geo = json.loads(geo_raw)
        if geo.get("version") not in ("1.0.0", "1.1.0"):
            problems.append(f"geo.version {geo.get('version')}")
        if geo.get("primary_column") != "geometry":
            problems.append("primary_column is not geometry")
        col = geo.get("columns", {}).get("geometry", {})
        if col.get("encoding") != "WKB":
            problems.append("encoding is not WKB")
        types = col.get("geometry_types")
        if not isinstance(types, list) or not all(t.replace(" Z", "") in GEOMETRY_TYPES for t in types):
            problems.append(f"bad geometry_types {types}")
        crs = col.get("crs")
        if crs is not None and crs.get("id") != {"authority": "OGC", "code": "CRS84"}:
            problems.append("crs is not OGC:CRS84")
        bbox = col.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4):
            problems.append("bbox missing")
        else:
            for i, g in enumerate(table.column("geometry").to_pylist()):
                x0, y0, x1, y1 = wkb_bbox(g)
                if x0 < bbox[0] or y0 < bbox[1] or x1 > bbox[2] or y1 > bbox[3]:
                    problems.append(f"row {i} geometry outside file bbox")
                    break
    if "lon" in schema.names:
        for g, lon, lat in zip(table.column("geometry").to_pylist(), table.column("lon").to_pylist(), table.column("lat").to_pylist()):
            x0, y0, _, _ = wkb_bbox(g)
            if (x0, y0) != (lon, lat):
                problems.append("point WKB differs from lon/lat")
                break
    time_type = str(schema.field("time").type)
    if time_type != "timestamp[us, tz=UTC]":
        problems.append(f"time is {time_type}")
    chunks = [meta.row_group(r).column(c) for r in range(meta.num_row_groups) for c in range(meta.num_columns)]
    codecs = sorted({chunk.compression for chunk in chunks})
    columns = {}
    for chunk in chunks:
        column = columns.setdefault(chunk.path_in_schema, {"encodings": set(), "compressed_bytes": 0})
        column["encodings"].update(chunk.encodings)
        column["compressed_bytes"] += chunk.total_compressed_size
    for column in columns.values():
        column["encodings"] = sorted(column["encodings"])
    return {
        "path": path,
        "rows": table.num_rows,
        "row_groups": meta.num_row_groups,
        "bytes": os.path.getsize(path),
        "codecs": codecs,
        "columns": columns,
        "schema": {n: str(t) for n, t in zip(schema.names, schema.types)},
        "geo": geo,
        "problems": problems,
        "ids": table.column("id").to_pylist(),
        "time_min_us": table.column("time").cast("int64").to_pylist() and min(table.column("time").cast("int64").to_pylist()),
    }


def main():
    paths = [line.strip() for line in sys.stdin if line.strip()]
    files = [check_file(p) for p in paths]
    count, read = 0, None
    if paths:
        count = duckdb.sql(f"SELECT count(*) FROM read_parquet({json.dumps(paths)}, union_by_name=true)").fetchone()[0]
        # Aggregates over every row of id, time, value and geometry, so DuckDB decodes their pages.
        ids, tmin, tmax, value_sum, geometry_bytes = duckdb.sql(
            "SELECT count(DISTINCT id), epoch_us(min(time)), epoch_us(max(time)), sum(value), sum(octet_length(geometry))"
            f" FROM read_parquet({json.dumps(paths)}, union_by_name=true)"
        ).fetchone()
        # JSON has no NaN or Infinity (a sum of huge values overflows): those go as text.
        if value_sum is not None and not math.isfinite(value_sum):
            value_sum = str(value_sum)
        read = {"distinct_ids": ids, "time_min_us": tmin, "time_max_us": tmax, "value_sum": value_sum, "geometry_bytes": geometry_bytes}
    json.dump({"files": files, "duckdb_count": count, "duckdb_read": read}, sys.stdout)


main()

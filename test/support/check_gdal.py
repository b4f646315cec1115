"""Reference reader for earth-memory's GeoParquet through GDAL (the pyogrio wheel's GDAL 3.12).

No wheel on PyPI ships GDAL's own Parquet driver (it needs Arrow C++), so this opens each file
with GDAL's ADBC driver over DuckDB's ADBC entry point (in the duckdb wheel): DuckDB decodes the
Parquet pages, and GDAL reads the GeoParquet `geo` metadata itself (geometry column and type,
CRS, extent) and hands out OGR features.

Reads the paths on stdin (one per line) and prints one JSON document: the GDAL version, and per
file the driver, layer, geometry column and type, CRS (WKT), feature count, extent, and each
feature's id with its geometry as WKB (hex) as GDAL returns it.
"""
import importlib.util
import json
import sys

import pyogrio
from pyogrio import raw

# The DuckDB library that `import duckdb` loads; it exports `duckdb_adbc_init`, which GDAL's ADBC
# driver picks from "duckdb" in the driver's path.
DUCKDB = importlib.util.find_spec("_duckdb").origin


def check_file(path):
    name = "ADBC:" + path
    info = pyogrio.read_info(name, ADBC_DRIVER=DUCKDB)
    meta, _, geometries, fields = raw.read(name, ADBC_DRIVER=DUCKDB, columns=["id"])
    return {
        "path": path,
        "driver": info["driver"],
        "layer": info["layer_name"],
        "geometry_name": info["geometry_name"],
        "geometry_type": info["geometry_type"],
        "crs": info["crs"],
        "features": info["features"],
        "total_bounds": list(info["total_bounds"]),
        "fields": list(info["fields"]),
        "rows": [[i, g.hex()] for i, g in zip(fields[0].tolist(), geometries)],
    }


def main():
    paths = [line.strip() for line in sys.stdin if line.strip()]
    json.dump({"gdal": pyogrio.__gdal_version_string__, "files": [check_file(p) for p in paths]}, sys.stdout)


main()

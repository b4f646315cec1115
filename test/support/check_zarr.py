"""Opens a Zarr store with xarray and zarr-python (the reference readers); prints JSON.

argv: store path. Reports dims, coordinates, decoded times, the variables with their masked
values (NaN → null) and what zarr-python sees (format, arrays, shapes, attributes).
"""
import json
import math
import sys
import warnings

import numpy as np
import xarray as xr
import zarr

warnings.simplefilter("ignore")
path = sys.argv[1]
out = {}
group = zarr.open_group(path, mode="r")
out["zarr_format"] = group.metadata.zarr_format
out["zarr_arrays"] = {name: {"shape": list(a.shape), "dtype": str(a.dtype), "attrs": dict(a.attrs)} for name, a in group.arrays()}
out["group_attrs"] = dict(group.attrs)
ds = xr.open_zarr(path)
out["dims"] = {k: int(v) for k, v in ds.sizes.items()}
out["coords"] = sorted(ds.coords)
out["data_vars"] = sorted(ds.data_vars)
out["attrs"] = {k: (v if isinstance(v, (str, int, float)) else str(v)) for k, v in ds.attrs.items()}
out["time_dtype"] = str(ds["time"].dtype)
out["time"] = [str(t) for t in ds["time"].values.astype("datetime64[us]")]
if "station_name" in ds:
    out["station_name"] = [str(s) for s in ds["station_name"].values]
    out["lon"] = [float(v) for v in ds["lon"].values]
    out["lat"] = [float(v) for v in ds["lat"].values]
out["values"] = {}
for name in ds.data_vars:
    v = ds[name].values
    rows = np.atleast_2d(v)  # a 0-d variable (a grid mapping) is one row of one value
    out["values"][name] = {"dims": list(ds[name].dims), "dtype": str(v.dtype), "data": [[None if (isinstance(x, float) and math.isnan(x)) else float(x) for x in row] for row in rows.reshape(rows.shape[0], -1)] if v.ndim <= 2 else None, "attrs": {k: str(val) for k, val in ds[name].attrs.items()}}
    if v.ndim == 3:
        # Per leading index (time): the count of values that are set, and their sum.
        flat = v.reshape(v.shape[0], -1).astype("float64")
        out["values"][name]["per_step"] = [[int(np.count_nonzero(~np.isnan(r))), float(np.nansum(r))] for r in flat]
print(json.dumps(out))

"""COG checks with rasterio and rio-cogeo (the reference venv: EARTHMEM_PYTHON).

stdin: JSON list of cases {tif, raw, width, height, bands, dtype, geotransform, epsg, nodata
("nan" for NaN, or null), resampling, compression, predictor, levels: [[w, h], ...] without full resolution}.
`raw` holds the full-resolution pixels as written: row-major, bands interleaved, little-endian.
stdout: JSON list of {tif, problems: [...], info: {...}}; no problem means every check passed:
  rio-cogeo's cog_validate(strict=True) (what `rio cogeo validate --strict` runs);
  size, band count, dtype, nodata, EPSG code, geotransform within 1e-9;
  full-resolution pixels bit-exact against `raw`;
  each overview's size, and its pixels bit-exact against this file's own numpy reduction of the
  level above (the writer's documented rule: 2x2 nearest = top-left, average = mean of the valid
  pixels, integers rounded half up).
"""
import json
import math
import sys
import warnings

import numpy as np
import rasterio
from rio_cogeo.cogeo import cog_validate

warnings.simplefilter("ignore")


def reduce(a, mode, nodata, is_float):
    h, w, b = a.shape
    oh, ow = max(1, h // 2), max(1, w // 2)
    if mode == "nearest":
        return a[0 : 2 * oh : 2, 0 : 2 * ow : 2].copy()
    x = a.astype(np.float64)
    total = np.zeros((oh, ow, b))
    count = np.zeros((oh, ow, b))
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        part = np.zeros((oh, ow, b))
        present = np.zeros((oh, ow, b), dtype=bool)
        ys = np.arange(oh) * 2 + dy
        xs = np.arange(ow) * 2 + dx
        yok, xok = ys < h, xs < w
        sub = x[np.ix_(ys[yok], xs[xok])]
        part[np.ix_(yok, xok)] = sub
        present[np.ix_(yok, xok)] = True
        valid = present.copy()
        if is_float:
            valid &= ~np.isnan(part)
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            valid &= part != nodata
        total = total + np.where(valid, part, 0.0)
        count += valid
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        if not is_float:
            mean = np.floor(mean + 0.5)
    empty = nodata if nodata is not None else float("nan")
    mean = np.where(count == 0, empty, mean)
    return mean.astype(a.dtype)


def same_bits(a, b):
    return a.shape == b.shape and a.tobytes() == b.tobytes()


cases = json.load(sys.stdin)
results = []
for case in cases:
    problems = []
    info = {}
    tif = case["tif"]
    try:
        valid, errors, warns = cog_validate(tif, strict=True, quiet=True)
        info["rio_cogeo"] = {"valid": valid, "errors": errors, "warnings": warns}
        if not valid or errors or warns:
            problems.append("rio-cogeo strict: errors %s warnings %s" % (errors, warns))
        dtype = np.dtype(case["dtype"]).newbyteorder("<")
        h, w, b = case["height"], case["width"], case["bands"]
        raw = np.fromfile(case["raw"], dtype=dtype).reshape(h, w, b)
        nodata = case["nodata"]
        if nodata == "nan":
            nodata = float("nan")
        stored_nodata = None if nodata is None else float(np.array(nodata).astype(dtype))
        is_float = dtype.kind == "f"
        with rasterio.open(tif) as src:
            info["profile"] = {k: str(v) for k, v in src.profile.items()}
            if (src.width, src.height, src.count) != (w, h, b):
                problems.append("size %s" % ((src.width, src.height, src.count),))
            if any(str(d) != case["dtype"] for d in src.dtypes):
                problems.append("dtypes %s" % (src.dtypes,))
            epsg = src.crs.to_epsg() if src.crs else None
            info["epsg"] = epsg
            if epsg != case["epsg"]:
                problems.append("EPSG %s, expected %s" % (epsg, case["epsg"]))
            gt = src.transform.to_gdal()
            if any(abs(p - q) > 1e-9 for p, q in zip(gt, case["geotransform"])):
                problems.append("geotransform %s, expected %s" % (gt, case["geotransform"]))
            got_nd = src.nodata
            if nodata is None:
                if got_nd is not None:
                    problems.append("nodata %s, expected none" % got_nd)
            elif got_nd is None or not (got_nd in (nodata, stored_nodata) or (math.isnan(got_nd) and math.isnan(nodata))):
                # GDAL reads a float32 band's nodata as float32, e.g. 0.1 as 0.10000000149011612.
                problems.append("nodata %s, expected %s" % (got_nd, nodata))
            full = np.moveaxis(src.read(), 0, -1)
            if not same_bits(full, raw):
                diff = int(np.sum(full.view(np.uint8) != raw.view(np.uint8))) if full.shape == raw.shape else -1
                problems.append("full-resolution pixels differ (%d bytes)" % diff)
            ovr_sizes = []
            expected = raw
            for i, (ow, oh) in enumerate(case["levels"]):
                with rasterio.open(tif, OVERVIEW_LEVEL=i) as ovr:
                    ovr_sizes.append([ovr.width, ovr.height])
                    expected = reduce(expected, case["resampling"], stored_nodata, is_float)
                    got = np.moveaxis(ovr.read(), 0, -1)
                    if not same_bits(got, expected):
                        problems.append("overview %d (%dx%d) pixels differ" % (i, ow, oh))
            info["overviews"] = ovr_sizes
            if ovr_sizes != case["levels"]:
                problems.append("overview sizes %s, expected %s" % (ovr_sizes, case["levels"]))
            if len(src.overviews(1)) != len(case["levels"]):
                problems.append("rasterio sees %d overviews" % len(src.overviews(1)))
            md = src.tags(ns="IMAGE_STRUCTURE")
            info["image_structure"] = md
            if md.get("LAYOUT") != "COG":
                problems.append("IMAGE_STRUCTURE LAYOUT=%s" % md.get("LAYOUT"))
            want = None if case["compression"] == "NONE" else case["compression"]
            if md.get("COMPRESSION") != want:
                problems.append("COMPRESSION=%s, expected %s" % (md.get("COMPRESSION"), want))
            want = None if case["predictor"] == 1 else str(case["predictor"])
            if md.get("PREDICTOR") != want:
                problems.append("PREDICTOR=%s, expected %s" % (md.get("PREDICTOR"), want))
    except Exception as e:
        problems.append("exception: %r" % (e,))
    results.append({"tif": tif, "problems": problems, "info": info})
json.dump(results, sys.stdout)

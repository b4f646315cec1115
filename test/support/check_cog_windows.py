"""Windows of a (large) COG read with rasterio, compared bit-exact with expected pixels.

stdin: JSON {tif, windows: [{overview (null = full resolution), col_off, row_off, width,
height, raw}]} where `raw` holds the expected pixels (row-major, bands interleaved,
little-endian, the file's dtype). Also runs rio-cogeo's cog_validate(strict=True).
stdout: JSON {problems: [...], overviews: [[w, h]...]}.
"""
import json
import sys

import numpy as np
import rasterio
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

case = json.load(sys.stdin)
problems = []
valid, errors, warns = cog_validate(case["tif"], strict=True, quiet=True)
if not valid or errors or warns:
    problems.append("rio-cogeo strict: errors %s warnings %s" % (errors, warns))
with rasterio.open(case["tif"]) as src:
    overviews = []
    for i in range(len(src.overviews(1))):
        with rasterio.open(case["tif"], OVERVIEW_LEVEL=i) as o:
            overviews.append([o.width, o.height])
    for w in case["windows"]:
        opts = {} if w["overview"] is None else {"OVERVIEW_LEVEL": w["overview"]}
        with rasterio.open(case["tif"], **opts) as ds:
            got = np.moveaxis(ds.read(window=Window(w["col_off"], w["row_off"], w["width"], w["height"])), 0, -1)
            want = np.fromfile(w["raw"], dtype=np.dtype(ds.dtypes[0]).newbyteorder("<")).reshape(got.shape)
            if got.tobytes() != want.tobytes():
                problems.append("window %s differs" % (w,))
json.dump({"problems": problems, "overviews": overviews}, sys.stdout)

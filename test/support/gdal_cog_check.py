"""COG checks with Debian's GDAL (run by /usr/bin/python3 with python3-gdal; no venv).

stdin: JSON list of {path, cog_blocksize, checksum (default true)}. stdout: JSON list, per file:
  validator: GDAL's own validate_cloud_optimized_geotiff.py (from python3-gdal's osgeo_utils
             samples), full check (block leaders and trailers): its warnings and errors;
  gdalinfo:  the gdalinfo binary with -checksum (decodes every tile of every level): whether it
             reports LAYOUT=COG, and anything it wrote to stderr (warnings, errors);
  gdal_cog_overviews: when cog_blocksize is set, the overview sizes GDAL's own COG driver makes
             for this raster with that BLOCKSIZE (to compare the writer's overview count).
"""
import json
import subprocess
import sys

from osgeo import gdal
from osgeo_utils.samples import validate_cloud_optimized_geotiff as vcog

gdal.UseExceptions()
out = []
for item in json.load(sys.stdin):
    path = item["path"]
    entry = {"path": path, "gdal_version": gdal.VersionInfo("RELEASE_NAME")}
    try:
        warnings, errors, _ = vcog.validate(path, full_check=True)
        entry["validator"] = {"warnings": warnings, "errors": errors}
    except Exception as e:  # the validator raises for files it cannot open
        entry["validator"] = {"warnings": [], "errors": ["exception: %s" % e]}
    args = ["gdalinfo", "-checksum", path] if item.get("checksum", True) else ["gdalinfo", path]
    info = subprocess.run(args, capture_output=True, text=True)
    entry["gdalinfo"] = {
        "rc": info.returncode,
        "layout_cog": "LAYOUT=COG" in info.stdout,
        "stderr": info.stderr.strip(),
    }
    if item.get("cog_blocksize"):
        gdal.Translate("/vsimem/ref.tif", path, format="COG",
                       creationOptions=["BLOCKSIZE=%d" % item["cog_blocksize"], "COMPRESS=NONE", "OVERVIEW_RESAMPLING=NEAREST"])
        ds = gdal.Open("/vsimem/ref.tif")
        band = ds.GetRasterBand(1)
        entry["gdal_cog_overviews"] = [[band.GetOverview(i).XSize, band.GetOverview(i).YSize] for i in range(band.GetOverviewCount())]
        ds = None
        gdal.Unlink("/vsimem/ref.tif")
    out.append(entry)
json.dump(out, sys.stdout)

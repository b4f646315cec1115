"""GDAL's view of a Zarr array (multidimensional API, as gdalmdiminfo): run with /usr/bin/python3.

argv: store path, array name. Prints JSON: dims, the array's CRS (EPSG code), and the geotransform
of its classic (y, x) view of the first time step.
"""
import json
import sys

from osgeo import gdal

gdal.UseExceptions()
path, name = sys.argv[1], sys.argv[2]
ds = gdal.OpenEx(path, gdal.OF_MULTIDIM_RASTER)
array = ds.GetRootGroup().OpenMDArray(name)
srs = array.GetSpatialRef()
view = array.GetView("[0,...]") if array.GetDimensionCount() == 3 else array
classic = view.AsClassicDataset(1, 0)
print(json.dumps({
    "dims": [[d.GetName(), d.GetSize()] for d in array.GetDimensions()],
    "epsg": srs.GetAuthorityCode(None) if srs is not None else None,
    "geotransform": list(classic.GetGeoTransform()),
    "nodata": array.GetNoDataValueAsDouble(),
    "first_pixel": classic.GetRasterBand(1).ReadAsArray(0, 0, 1, 1).tolist()[0][0],
}))

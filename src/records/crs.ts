/**
 * The CRSs a raster tile may be in, and their inverse projections to WGS 84 lon/lat (what
 * classify's bbox and the catalog use). No PROJ here: the three families that cover our
 * producers are implemented directly — EPSG:4326 (identity), EPSG:3857 (spherical Mercator
 * inverse) and WGS 84 / UTM 326xx/327xx (Krüger's transverse Mercator series inverse, the one PROJ
 * uses, sub-millimetre within thousands of km). Anything else is `unknown_crs` at decode time.
 */
import { parseWktIdentity } from '../encoders/cog/geokeys.js';

export interface ResolvedCrs {
  epsg: number;
  /** Projected x/y (CRS units, GDAL geotransform axis order) → [lon, lat] in degrees. */
  toLonLat(x: number, y: number): [number, number];
  /** True when lon/lat are monotonic in x/y separately, so the corners of a box bound it. */
  separable: boolean;
}

const A = 6378137;
const F = 1 / 298.257223563;
const DEG = 180 / Math.PI;

/**
 * An EPSG code, "EPSG:n", or WKT 1/2 whose root names an EPSG code → a converter to lon/lat;
 * throws an Error saying why when the CRS is not one of the supported families.
 */
export function resolveCrs(crs: number | string): ResolvedCrs {
  let epsg: number;
  if (typeof crs === 'number') epsg = crs;
  else {
    const id = /^\s*EPSG:(\d+)\s*$/i.exec(crs);
    epsg = id ? Number(id[1]) : parseWktIdentity(crs).epsg;
  }
  if (!Number.isInteger(epsg)) throw new Error(`CRS ${String(crs)} is not an EPSG code`);
  if (epsg === 4326) return { epsg, separable: true, toLonLat: (x, y) => [x, y] };
  if (epsg === 3857) {
    return {
      epsg,
      separable: true,
      toLonLat: (x, y) => [(x / A) * DEG, (2 * Math.atan(Math.exp(y / A)) - Math.PI / 2) * DEG],
    };
  }
  if ((epsg >= 32601 && epsg <= 32660) || (epsg >= 32701 && epsg <= 32760)) {
    const zone = epsg % 100;
    const south = epsg > 32700;
    const utm = transverseMercatorInverse(zone * 6 - 183, 0.9996, 500000, south ? 10000000 : 0);
    return { epsg, separable: false, toLonLat: utm };
  }
  throw new Error(`EPSG:${epsg} is not a CRS this decoder can convert to WGS 84 (supported: 4326, 3857, 32601–32660, 32701–32760)`);
}

/** WGS 84 transverse Mercator inverse after Krüger (Karney 2011, eqs. 11–15, series to n^6). */
function transverseMercatorInverse(lon0: number, k0: number, falseEasting: number, falseNorthing: number) {
  const n = F / (2 - F);
  const n2 = n * n, n3 = n2 * n, n4 = n3 * n, n5 = n4 * n, n6 = n5 * n;
  const rectifying = (A / (1 + n)) * (1 + n2 / 4 + n4 / 64 + n6 / 256);
  const beta = [
    n / 2 - (2 / 3) * n2 + (37 / 96) * n3 - (1 / 360) * n4 - (81 / 512) * n5 + (96199 / 604800) * n6,
    (1 / 48) * n2 + (1 / 15) * n3 - (437 / 1440) * n4 + (46 / 105) * n5 - (1118711 / 3870720) * n6,
    (17 / 480) * n3 - (37 / 840) * n4 - (209 / 4480) * n5 + (5569 / 90720) * n6,
    (4397 / 161280) * n4 - (11 / 504) * n5 - (830251 / 7257600) * n6,
    (4583 / 161280) * n5 - (108847 / 3991680) * n6,
    (20648693 / 638668800) * n6,
  ];
  const e = Math.sqrt(F * (2 - F));
  return (x: number, y: number): [number, number] => {
    const xi = (y - falseNorthing) / (k0 * rectifying);
    const eta = (x - falseEasting) / (k0 * rectifying);
    let xi1 = xi, eta1 = eta;
    for (let j = 1; j <= 6; j++) {
      const b = beta[j - 1]!;
      xi1 -= b * Math.sin(2 * j * xi) * Math.cosh(2 * j * eta);
      eta1 -= b * Math.cos(2 * j * xi) * Math.sinh(2 * j * eta);
    }
    const lon = lon0 + Math.atan2(Math.sinh(eta1), Math.cos(xi1)) * DEG;
    // Conformal latitude τ' = tan χ, then geodetic τ = tan φ by Newton (Karney 2011, eqs. 7–9, 19–21).
    const tauPrime = Math.sin(xi1) / Math.hypot(Math.sinh(eta1), Math.cos(xi1));
    let tau = tauPrime / (1 - e * e);
    for (let i = 0; i < 8; i++) {
      const s = Math.sinh(e * Math.atanh((e * tau) / Math.hypot(1, tau)));
      const tp = tau * Math.hypot(1, s) - s * Math.hypot(1, tau);
      const dtau = ((tauPrime - tp) / Math.hypot(1, tp)) * ((1 + (1 - e * e) * tau * tau) / ((1 - e * e) * Math.hypot(1, tau)));
      tau += dtau;
      if (Math.abs(dtau) < 1e-15 * Math.max(1, Math.abs(tau))) break;
    }
    return [lon, Math.atan(tau) * DEG];
  };
}

/**
 * The WGS 84 bounds of a box in the CRS: its corners when the projection is separable, else 21
 * points per edge (as GDAL's transform_bounds densifies), since a UTM box's edges curve in lon/lat.
 */
export function lonLatBounds(crs: ResolvedCrs, box: [number, number, number, number]): [number, number, number, number] {
  const [x0, y0, x1, y1] = box;
  const steps = crs.separable ? 1 : 20;
  let minLon = Infinity, minLat = Infinity, maxLon = -Infinity, maxLat = -Infinity;
  const add = (x: number, y: number) => {
    const [lon, lat] = crs.toLonLat(x, y);
    if (lon < minLon) minLon = lon;
    if (lon > maxLon) maxLon = lon;
    if (lat < minLat) minLat = lat;
    if (lat > maxLat) maxLat = lat;
  };
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    add(x0 + (x1 - x0) * t, y0);
    add(x0 + (x1 - x0) * t, y1);
    add(x0, y0 + (y1 - y0) * t);
    add(x1, y0 + (y1 - y0) * t);
  }
  return [minLon, minLat, maxLon, maxLat];
}

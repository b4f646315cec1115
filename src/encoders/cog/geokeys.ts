/**
 * GeoTIFF keys for a CRS named by an EPSG code. GeoTIFF stores an EPSG CRS as a model type
 * (projected or geographic) plus the code, so the writer must know which kind the code is: WKT
 * says so by its root keyword; a bare number is accepted for the codes listed here.
 */
export type CrsKind = 'projected' | 'geographic';

export interface GeoKeys {
  epsg: number;
  kind: CrsKind;
  /** [keyId, value] pairs, all SHORT values stored in the directory itself, sorted by key. */
  keys: [number, number][];
}

const GT_MODEL_TYPE = 1024;
const GT_RASTER_TYPE = 1025;
const GEOGRAPHIC_TYPE = 2048;
const PROJECTED_CS_TYPE = 3072;
const MODEL_PROJECTED = 1;
const MODEL_GEOGRAPHIC = 2;
const RASTER_PIXEL_IS_AREA = 1;

/** Geographic 2D CRSs in common use (WGS 84, ETRS89, NAD83, NAD27, GDA94, GDA2020, NZGD2000, SIRGAS 2000, CGCS2000, JGD2011). */
const GEOGRAPHIC = new Set([4326, 4258, 4269, 4267, 4283, 7844, 4167, 4674, 4490, 6668]);

function knownProjected(code: number): boolean {
  return (
    code === 3857 || // WGS 84 / Pseudo-Mercator
    code === 3395 || // WGS 84 / World Mercator
    (code >= 32601 && code <= 32660) || // WGS 84 / UTM north
    (code >= 32701 && code <= 32760) || // WGS 84 / UTM south
    (code >= 25828 && code <= 25838) || // ETRS89 / UTM
    (code >= 26901 && code <= 26923) || // NAD83 / UTM
    [3035, 3031, 3413, 3976, 2154, 27700, 28992, 31370, 3577, 5070, 6933, 32661, 32761].includes(code)
  );
}

export function crsKindOfCode(code: number): CrsKind | undefined {
  if (GEOGRAPHIC.has(code)) return 'geographic';
  if (knownProjected(code)) return 'projected';
  return undefined;
}

export function crsGeoKeys(crs: number | string): GeoKeys {
  let epsg: number;
  let kind: CrsKind | undefined;
  if (typeof crs === 'number') {
    epsg = crs;
    kind = crsKindOfCode(crs);
    if (Number.isInteger(crs) && kind === undefined) {
      throw new Error(`EPSG:${crs} is not one the writer knows the kind of; give the CRS as WKT (its root keyword says projected or geographic)`);
    }
  } else if (typeof crs === 'string') {
    const id = /^\s*EPSG:(\d+)\s*$/i.exec(crs);
    if (id) return crsGeoKeys(Number(id[1]));
    ({ epsg, kind } = parseWktIdentity(crs));
  } else {
    throw new Error('expected an EPSG code or a WKT string');
  }
  if (!Number.isInteger(epsg) || epsg < 1024 || epsg > 32766) {
    throw new Error(`EPSG code ${epsg} does not fit a GeoTIFF key (1024–32766)`);
  }
  const keys: [number, number][] =
    kind === 'projected'
      ? [[GT_MODEL_TYPE, MODEL_PROJECTED], [GT_RASTER_TYPE, RASTER_PIXEL_IS_AREA], [PROJECTED_CS_TYPE, epsg]]
      : [[GT_MODEL_TYPE, MODEL_GEOGRAPHIC], [GT_RASTER_TYPE, RASTER_PIXEL_IS_AREA], [GEOGRAPHIC_TYPE, epsg]];
  return { epsg, kind: kind!, keys };
}

const PROJECTED_ROOTS = new Set(['PROJCRS', 'PROJECTEDCRS', 'PROJCS']);
const GEOGRAPHIC_ROOTS = new Set(['GEOGCRS', 'GEOGRAPHICCRS', 'GEOGCS']);

interface WktNode {
  keyword: string;
  /** Direct children: quoted strings and bare numbers/words as strings, nested nodes as nodes. */
  items: (string | WktNode)[];
}

/**
 * The kind (from the root keyword) and the EPSG code of the root's own ID["EPSG",code] (WKT2)
 * or AUTHORITY["EPSG","code"] (WKT1) — not the IDs of nested elements such as the base CRS.
 */
export function parseWktIdentity(wkt: string): { epsg: number; kind: CrsKind } {
  const root = parseWkt(wkt);
  const keyword = root.keyword.toUpperCase();
  const kind: CrsKind | undefined = PROJECTED_ROOTS.has(keyword) ? 'projected' : GEOGRAPHIC_ROOTS.has(keyword) ? 'geographic' : undefined;
  if (!kind) throw new Error(`WKT root ${root.keyword} is not a projected or geographic 2D CRS`);
  const ids = root.items.filter(
    (i): i is WktNode => typeof i !== 'string' && (i.keyword.toUpperCase() === 'ID' || i.keyword.toUpperCase() === 'AUTHORITY'),
  );
  const epsgId = ids.find((i) => typeof i.items[0] === 'string' && i.items[0].toUpperCase() === 'EPSG');
  const code = epsgId && typeof epsgId.items[1] === 'string' ? Number(epsgId.items[1]) : NaN;
  if (!Number.isInteger(code)) throw new Error(`WKT ${root.keyword}["${String(root.items[0])}"] has no outer EPSG identifier`);
  return { epsg: code, kind };
}

function parseWkt(text: string): WktNode {
  let at = 0;
  const fail = (message: string): never => {
    throw new Error(`WKT: ${message} at character ${at}`);
  };
  const space = () => {
    while (at < text.length && /\s/.test(text[at]!)) at++;
  };
  const node = (): WktNode => {
    space();
    const start = at;
    while (at < text.length && /[A-Za-z0-9_]/.test(text[at]!)) at++;
    const keyword = text.slice(start, at);
    if (!keyword) fail('expected a keyword');
    space();
    const open = text[at];
    if (open !== '[' && open !== '(') fail(`expected [ after ${keyword}`);
    const close = open === '[' ? ']' : ')';
    at++;
    const items: (string | WktNode)[] = [];
    for (;;) {
      space();
      const c = text[at];
      if (c === undefined) fail('unterminated element');
      if (c === '"') {
        let value = '';
        at++;
        for (;;) {
          const q = text.indexOf('"', at);
          if (q < 0) fail('unterminated string');
          value += text.slice(at, q);
          at = q + 1;
          if (text[at] === '"') {
            value += '"';
            at++;
          } else break;
        }
        items.push(value);
      } else {
        const start2 = at;
        while (at < text.length && !/[\s,\[\]()"]/.test(text[at]!)) at++;
        const word = text.slice(start2, at);
        space();
        if (text[at] === '[' || text[at] === '(') {
          at = start2;
          items.push(node());
        } else if (word) items.push(word);
        else fail('expected a value');
      }
      space();
      if (text[at] === ',') {
        at++;
        continue;
      }
      if (text[at] === close) {
        at++;
        return { keyword, items };
      }
      fail(`expected , or ${close}`);
    }
  };
  const root = node();
  space();
  if (at !== text.length) fail('trailing characters after the CRS');
  return root;
}

const rfc3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|([+-])(\d{2}):(\d{2}))$/;

/**
 * Microseconds since the epoch from an RFC 3339 string or epoch milliseconds;
 * undefined when unparseable. Keeps microsecond precision (Date.parse would drop it).
 */
export function parseTimeUs(input: unknown): number | undefined {
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) return undefined;
    const us = Math.round(input * 1000);
    return Number.isSafeInteger(us) ? us : undefined;
  }
  if (typeof input !== 'string') return undefined;
  return fastUtc(input) ?? parseRfc3339(input);
}

const dayCache = new Map<string, number>();

/** `YYYY-MM-DDThh:mm:ss[.fff]Z`, the common shape, by char codes; day starts memoized. */
function fastUtc(s: string): number | undefined {
  const n = s.length;
  if ((n !== 20 && n !== 24) || s.charCodeAt(n - 1) !== 90 /* Z */ || s.charCodeAt(10) !== 84 /* T */) return undefined;
  const day = s.slice(0, 10);
  let dayMs = dayCache.get(day);
  if (dayMs === undefined) {
    const parsed = parseRfc3339(`${day}T00:00:00Z`);
    if (parsed === undefined) return undefined;
    dayMs = parsed / 1000;
    if (dayCache.size > 50_000) dayCache.clear();
    dayCache.set(day, dayMs);
  }
  const d = (i: number) => s.charCodeAt(i) - 48;
  if (s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return undefined;
  const digits = n === 24 ? [11, 12, 14, 15, 17, 18, 20, 21, 22] : [11, 12, 14, 15, 17, 18];
  for (const i of digits) if (d(i) < 0 || d(i) > 9) return undefined;
  if (n === 24 && s.charCodeAt(19) !== 46) return undefined;
  const hour = d(11) * 10 + d(12);
  const minute = d(14) * 10 + d(15);
  const second = d(17) * 10 + d(18);
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const ms = n === 24 ? d(20) * 100 + d(21) * 10 + d(22) : 0;
  const us = (dayMs + ((hour * 60 + minute) * 60 + second) * 1000 + ms) * 1000;
  // Outside ±2^53 µs the product may be rounded: parseRfc3339 refuses such times.
  return Number.isSafeInteger(us) ? us : undefined;
}

function parseRfc3339(input: string): number | undefined {
  const m = rfc3339.exec(input);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number, number, number, number, number, number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 60) {
    return undefined;
  }
  const fraction = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1e6 + 1e-6) : 0;
  let offsetMinutes = 0;
  if (m[9]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  // Not Date.UTC: it reads years 0–99 as 1900–1999.
  const seconds = (daysFromCivil(year, month, day) * 24 + hour) * 3600 + minute * 60 + Math.min(second, 59) - offsetMinutes * 60;
  const us = seconds * 1_000_000 + fraction;
  // Times are µs in a double, exact only within ±2^53 (1684-07-28T00:12:25.259009Z …
  // 2255-06-05T23:47:34.740991Z), like epoch milliseconds; the catalog refuses to read others back.
  return Number.isSafeInteger(us) ? us : undefined;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

export function formatTimeUs(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString();
  const micros = us - ms * 1000;
  return micros === 0 ? iso : `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}

/** RFC 3339 UTC, always with six fraction digits (`2024-03-01T12:00:00.000000Z`): one width for every row of a CSV or GeoJSON file. */
export function formatTimeMicros(timeUs: number): string {
  const ms = Math.floor(timeUs / 1000);
  const micros = timeUs - ms * 1000;
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}

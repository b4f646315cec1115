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
  return (dayMs + ((hour * 60 + minute) * 60 + second) * 1000 + ms) * 1000;
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
  const ms = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59)) - offsetMinutes * 60_000;
  return ms * 1000 + fraction;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

export function formatTimeUs(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString();
  const micros = us - ms * 1000;
  return micros === 0 ? iso : `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}

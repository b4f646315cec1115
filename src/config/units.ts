/** Parsers for the human units pipeline files use: sizes ("64MiB", "50GB") and durations ("5s", "30 days"). */
const sizeUnits: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, pb: 1e15,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40, pib: 2 ** 50,
  k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40,
};

export function parseSize(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? Math.floor(input) : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  if (!match) return undefined;
  const unit = sizeUnits[(match[2] || 'b').toLowerCase()];
  return unit === undefined ? undefined : Math.floor(Number(match[1]) * unit);
}

const durationUnits: Record<string, number> = {
  ms: 1, millisecond: 1, milliseconds: 1,
  s: 1e3, sec: 1e3, second: 1e3, seconds: 1e3,
  m: 60e3, min: 60e3, minute: 60e3, minutes: 60e3,
  h: 3600e3, hour: 3600e3, hours: 3600e3,
  d: 86400e3, day: 86400e3, days: 86400e3,
  w: 7 * 86400e3, week: 7 * 86400e3, weeks: 7 * 86400e3,
  y: 365 * 86400e3, year: 365 * 86400e3, years: 365 * 86400e3,
};

/** Milliseconds; a bare number means seconds. */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input * 1000 : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*(?:ago)?\s*$/.exec(input);
  if (!match) return undefined;
  const unit = durationUnits[(match[2] || 's').toLowerCase()];
  return unit === undefined ? undefined : Number(match[1]) * unit;
}

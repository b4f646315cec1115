/**
 * Time periods of the record tables' partitions, in UTC: the period a microsecond time falls in,
 * its bounds as timestamptz literals, and a partition name derived from it.
 */
export type PartitionInterval = 'day' | 'week' | 'month';

const dayMs = 86_400_000;

export interface Period {
  /** Inclusive lower bound. */
  start: Date;
  /** Exclusive upper bound. */
  end: Date;
}

/** The period holding `timeUs`: a UTC day, an ISO week (from Monday), or a calendar month. */
export function periodOf(timeUs: number, interval: PartitionInterval): Period {
  const at = new Date(Math.floor(timeUs / 1000));
  const year = at.getUTCFullYear();
  const month = at.getUTCMonth();
  const day = Date.UTC(year, month, at.getUTCDate());
  switch (interval) {
    case 'day':
      return { start: new Date(day), end: new Date(day + dayMs) };
    case 'week': {
      const monday = day - ((at.getUTCDay() + 6) % 7) * dayMs;
      return { start: new Date(monday), end: new Date(monday + 7 * dayMs) };
    }
    case 'month':
      return { start: new Date(Date.UTC(year, month, 1)), end: new Date(Date.UTC(year, month + 1, 1)) };
  }
}

/** The distinct periods of a batch's times, oldest first. */
export function periodsOf(timesUs: Iterable<number>, interval: PartitionInterval): Period[] {
  const byStart = new Map<number, Period>();
  for (const timeUs of timesUs) {
    const period = periodOf(timeUs, interval);
    byStart.set(period.start.getTime(), period);
  }
  return [...byStart.values()].sort((a, b) => a.start.getTime() - b.start.getTime());
}

/** `<table>_p2026_01` (month), `_p2026_01_05` (day), `_w2026_01_05` (week from that Monday). */
export function partitionName(table: string, period: Period, interval: PartitionInterval): string {
  const [date] = period.start.toISOString().split('T') as [string];
  const [year, month, day] = date.replace(/^\+/, '').split('-');
  if (interval === 'month') return `${table}_p${year}_${month}`;
  return `${table}_${interval === 'week' ? 'w' : 'p'}${year}_${month}_${day}`;
}

/** A timestamptz literal of a microsecond time, exact: `2026-01-01T00:00:00.123456Z`. */
export function timestampLiteral(timeUs: number): string {
  const ms = Math.floor(timeUs / 1000);
  const micros = timeUs - ms * 1000;
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}

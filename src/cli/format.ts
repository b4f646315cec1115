import type { PipelineStats, RunSummary } from '../pipeline/run.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');

export function progressLine(s: PipelineStats): string {
  const rate = s.elapsedMs > 0 ? (s.recordsRead / s.elapsedMs) * 1000 : 0;
  return `${int(rate)} records/s | read ${int(s.recordsRead)} | written ${int(s.recordsWritten)} | dead-lettered ${int(
    s.deadLettered,
  )} | ${int(s.objects)} objects, ${formatBytes(s.bytesWritten)} | in flight ${int(s.inFlight)}`;
}

export function summaryText(s: RunSummary): string {
  const seconds = s.elapsedMs / 1000;
  const reasons = Object.entries(s.deadLetterReasons)
    .sort()
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
  const lines = [
    `records in:     ${int(s.recordsRead)} (${formatBytes(s.payloadBytesRead)})`,
    `written:        ${int(s.recordsWritten)}`,
    `dead-lettered:  ${int(s.deadLettered)}${reasons ? ` (${reasons})` : ''}`,
    `objects:        ${int(s.objects)}, ${formatBytes(s.bytesWritten)}`,
    `elapsed:        ${seconds.toFixed(2)} s, ${int(seconds > 0 ? s.recordsRead / seconds : 0)} records/s`,
    `output:`,
    ...s.tiers.map(
      (t) =>
        `  ${t.name.padEnd(8)} ${t.uri}  (${int(t.objects)} objects, ${formatBytes(t.bytes)})  ${t.layout}` +
        (t.memoryTypes.length > 0 ? `: ${t.memoryTypes.join(', ')}` : ''),
    ),
    `  catalog  ${s.catalog}`,
    `  dead letter ${s.deadLetter}`,
  ];
  for (const warning of s.warnings) lines.push(`warning: ${warning}`);
  if (!s.complete) lines.push(`WARNING: ${int(s.inFlight)} records were read but not acknowledged`);
  return lines.join('\n');
}

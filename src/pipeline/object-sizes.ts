import type { FlushReason } from '../core/batch.js';
import type { CompiledTemplate } from '../stages/object-key.js';

/** Objects with fewer rows than this are "small": per-object overheads dominate reads and listings. */
export const SMALL_OBJECT_ROWS = 1_000;
/** A tier warns once it wrote at least this many objects and most of them are small. */
const MIN_OBJECTS_TO_WARN = 20;
/** Distinct values kept per path segment: enough to tell a splitting segment, bounded in memory. */
const MAX_VALUES_PER_SEGMENT = 10_000;

interface LayoutSizes {
  tier: string;
  template: CompiledTemplate;
  objects: number;
  small: number;
  rows: number;
  /** Distinct values seen at each path segment. */
  values: Set<string>[];
  /** Why the small objects were flushed. */
  smallReasons: Map<FlushReason, number>;
}

/**
 * Counts the objects a run writes per tier and layout, and explains a run that scatters its data
 * into many small objects (the small-files problem): which `file_organization` segment splits
 * them, or which batch limit flushes them early, and what to change.
 */
export class ObjectSizeReport {
  private readonly layouts = new Map<string, LayoutSizes>();

  record(tier: string, template: CompiledTemplate, partitionPath: string, rows: number, reason: FlushReason): void {
    const id = `${tier}\u0000${template.source}`;
    let sizes = this.layouts.get(id);
    if (sizes === undefined) {
      sizes = { tier, template, objects: 0, small: 0, rows: 0, values: template.segments.map(() => new Set()), smallReasons: new Map() };
      this.layouts.set(id, sizes);
    }
    sizes.objects++;
    sizes.rows += rows;
    if (rows >= SMALL_OBJECT_ROWS) return;
    sizes.small++;
    sizes.smallReasons.set(reason, (sizes.smallReasons.get(reason) ?? 0) + 1);
    const parts = partitionPath.split('/');
    for (let i = 0; i < sizes.values.length; i++) {
      const seen = sizes.values[i]!;
      if (seen.size < MAX_VALUES_PER_SEGMENT) seen.add(parts[i] ?? '');
    }
  }

  /** One warning per tier layout where most objects hold fewer than SMALL_OBJECT_ROWS rows. */
  warnings(): string[] {
    const out: string[] = [];
    for (const s of this.layouts.values()) {
      if (s.objects < MIN_OBJECTS_TO_WARN || s.small * 2 <= s.objects) continue;
      const head =
        `tier ${s.tier} wrote ${int(s.objects)} objects and ${int(s.small)} of them hold fewer than ${int(SMALL_OBJECT_ROWS)} rows ` +
        `(${int(s.rows / s.objects)} rows on average): `;
      out.push(head + this.cause(s));
    }
    return out;
  }

  private cause(s: LayoutSizes): string {
    // The segment with the most distinct values among the small objects is the one that splits them.
    let split = -1;
    for (let i = 0; i < s.values.length; i++) if (split === -1 || s.values[i]!.size > s.values[split]!.size) split = i;
    const distinct = split === -1 ? 0 : s.values[split]!.size;
    if (distinct * 4 >= s.small && distinct > 1) {
      const segment = s.template.segments[split]!;
      const rest = s.template.segments.filter((_, i) => i !== split);
      const suggestion = rest.length > 0 ? rest.join('/') : 'year/month/dataset';
      return (
        `file_organization "${s.template.source}" splits them by its segment ${segment} (${int(distinct)}${distinct >= MAX_VALUES_PER_SEGMENT ? '+' : ''} values in this run). ` +
        `Drop that segment, e.g. file_organization: "${suggestion}": rows are sorted by station, variable and time inside each object, so filters on them stay cheap.`
      );
    }
    let reason: FlushReason = 'end';
    let most = 0;
    for (const [r, n] of s.smallReasons) if (n > most) [reason, most] = [r, n];
    switch (reason) {
      case 'age':
        return 'batch.max_age flushes batches before they fill; raise it (and batch.max_rows) so each object holds more rows.';
      case 'memory':
        return 'batch.max_open_bytes flushes the largest open batch early; raise it, or route fewer partitions to this tier.';
      case 'rows':
      case 'bytes':
        return 'batch.max_rows or batch.max_bytes is below the object size you want; raise it.';
      default:
        return `the input is spread thin over "${s.template.source}"; a coarser file_organization gives fewer, larger objects.`;
    }
  }
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');

import type { CoveredRange } from '../catalog/catalog.js';
import type { SourcePosition } from '../core/record.js';

export type CoverageDecision =
  /** No catalogued object holds this record: batch it normally. */
  | { action: 'batch' }
  /** The record is the first of a catalogued object: rebuild that object, ending at `end`. */
  | { action: 'rebuild'; end: number }
  /** Inside a catalogued object that is being rebuilt: add to that batch. */
  | { action: 'continue' }
  /** Inside a catalogued object not being rebuilt (redelivered mid-object): it is durable, skip it. */
  | { action: 'skip' };

/**
 * Which redelivered records are already durable. Loaded per source partition from the catalog
 * when the partition is assigned (objects ending at or after the committed offset); an object
 * holds every record of its batch id between its first and last offset, so membership is a
 * range test. A replay or redelivery thus rebuilds whole objects (same key, same bytes) or skips
 * records it cannot rebuild whole: never a second copy.
 */
export class CoverageIndex {
  /** `${partition}\0${source}` → batch id → ranges by first offset. */
  private readonly partitions = new Map<string, Map<string, CoveredRange[]>>();

  private static partitionKey(source: string, partition: number): string {
    return `${partition}\u0000${source}`;
  }

  /** Replaces what is known of one source partition. `idOf` maps a range to its batch id. */
  load(source: string, partition: number, ranges: readonly CoveredRange[], idOf: (range: CoveredRange) => string): void {
    const byId = new Map<string, CoveredRange[]>();
    for (const range of ranges) {
      const id = idOf(range);
      let list = byId.get(id);
      if (list === undefined) byId.set(id, (list = []));
      list.push(range);
    }
    for (const list of byId.values()) list.sort((a, b) => a.firstOffset - b.firstOffset);
    if (byId.size === 0) this.partitions.delete(CoverageIndex.partitionKey(source, partition));
    else this.partitions.set(CoverageIndex.partitionKey(source, partition), byId);
  }

  drop(source: string, partition: number): void {
    this.partitions.delete(CoverageIndex.partitionKey(source, partition));
  }

  get empty(): boolean {
    return this.partitions.size === 0;
  }

  /**
   * `alignedStart`: first offset of the rebuild batch open under this id, if any. `tier`: where the
   * record is routed now. An object that has since moved to another tier (a migration, or a change
   * of routing) is durable there: its records are skipped, never rebuilt into a second copy.
   */
  decide(id: string, position: SourcePosition, alignedStart: number | undefined, tier: string): CoverageDecision {
    const ranges = this.partitions.get(CoverageIndex.partitionKey(position.source, position.partition))?.get(id);
    if (ranges === undefined) return { action: 'batch' };
    const offset = position.offset;
    // Ranges of one id never overlap; few are open per partition, so a scan is enough.
    for (const range of ranges) {
      if (offset < range.firstOffset) break;
      if (offset > range.lastOffset) continue;
      if (range.tier !== tier) return { action: 'skip' };
      if (offset === range.firstOffset) return { action: 'rebuild', end: range.lastOffset };
      return alignedStart === range.firstOffset ? { action: 'continue' } : { action: 'skip' };
    }
    return { action: 'batch' };
  }
}

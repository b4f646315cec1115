import type { SourcePosition } from './record.js';

interface PartitionState {
  source: string;
  partition: number;
  /** Tracked offsets not yet committable, ascending; `head` indexes the first live one. */
  pending: number[];
  /** 1 where the pending offset at the same index is acked. */
  acked: number[];
  head: number;
  /** Just after the last acked index: a batch acks its records in ascending order, so the next is usually here. */
  hint: number;
  /** Highest offset tracked so far (-1 before any). */
  lastTracked: number;
  /** Next offset to commit (Kafka convention: last fully handled offset + 1); -1 if none yet. */
  commitOffset: number;
}

export interface Committable {
  source: string;
  partition: number;
  /** Commit this: every tracked offset below it is acknowledged. */
  offset: number;
}

/**
 * End-to-end acknowledgement bookkeeping. A source position is tracked when read and acked when
 * its record is durable (in a tier with its catalog row committed, or in the dead letter).
 * A partition may be committed only up to the highest offset below which every tracked record
 * is acked — the contiguous acked prefix. Nothing is acknowledged on receipt.
 */
export class OffsetTracker {
  /** By source, then partition: a lookup per record builds no key string (sources share one string). */
  private readonly partitions = new Map<string, Map<number, PartitionState>>();
  private readonly dirty = new Set<PartitionState>();

  /** The partition of the last lookup: a batch's or chunk's records share one, so most lookups are this. */
  private last: PartitionState | undefined;

  private state(source: string, partition: number): PartitionState | undefined {
    const last = this.last;
    if (last !== undefined && last.partition === partition && last.source === source) return last;
    const state = this.partitions.get(source)?.get(partition);
    if (state !== undefined) this.last = state;
    return state;
  }

  private *states(): Iterable<PartitionState> {
    for (const bySource of this.partitions.values()) yield* bySource.values();
  }

  /**
   * Registers a position read from the source. Returns false for a redelivery of an offset
   * already tracked or committed (the caller drops it: it is already on its way or done).
   */
  track(position: SourcePosition): boolean {
    let state = this.state(position.source, position.partition);
    if (state === undefined) {
      state = { source: position.source, partition: position.partition, pending: [], acked: [], head: 0, hint: 0, lastTracked: -1, commitOffset: -1 };
      let bySource = this.partitions.get(position.source);
      if (bySource === undefined) this.partitions.set(position.source, (bySource = new Map()));
      bySource.set(position.partition, state);
    }
    if (position.offset <= state.lastTracked) return false;
    state.lastTracked = position.offset;
    state.pending.push(position.offset);
    state.acked.push(0);
    return true;
  }

  /** Marks a tracked position durable. Acks for untracked (revoked) partitions are ignored. */
  ack(position: SourcePosition): void {
    this.ackOffset(position.source, position.partition, position.offset);
  }

  /** `ack` of a position given as its parts (a column batch's rows have no position objects). */
  ackOffset(source: string, partition: number, offset: number): void {
    const state = this.state(source, partition);
    if (state === undefined || offset > state.lastTracked) return;
    // Pending offsets ascend: the hint, else binary search instead of hashing every offset.
    if (state.hint >= state.head && state.pending[state.hint] === offset) {
      state.acked[state.hint] = 1;
      state.hint += 1;
    } else {
      let lo = state.head;
      let hi = state.pending.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        const at = state.pending[mid]!;
        if (at === offset) {
          state.acked[mid] = 1;
          state.hint = mid + 1;
          break;
        }
        if (at < offset) lo = mid + 1;
        else hi = mid - 1;
      }
    }
    let advanced = false;
    while (state.head < state.pending.length && state.acked[state.head] === 1) {
      state.commitOffset = state.pending[state.head]! + 1;
      state.head += 1;
      advanced = true;
    }
    if (state.head > 4096 && state.head * 2 > state.pending.length) {
      state.pending = state.pending.slice(state.head);
      state.acked = state.acked.slice(state.head);
      state.hint = Math.max(0, state.hint - state.head);
      state.head = 0;
    }
    if (advanced) this.dirty.add(state);
  }

  ackAll(positions: Iterable<SourcePosition>): void {
    for (const position of positions) this.ack(position);
  }

  /** Partitions whose committable offset moved since the last call. */
  takeCommittable(): Committable[] {
    const out: Committable[] = [];
    for (const state of this.dirty) out.push({ source: state.source, partition: state.partition, offset: state.commitOffset });
    this.dirty.clear();
    return out;
  }

  /** Next offset to commit for a partition, or undefined if nothing is committable yet. */
  committed(source: string, partition: number): number | undefined {
    const state = this.state(source, partition);
    return state === undefined || state.commitOffset < 0 ? undefined : state.commitOffset;
  }

  /** Per partition with records not yet acknowledged: the first of them and how many (for stall reports). */
  unacked(): { source: string; partition: number; firstOffset: number; count: number }[] {
    const out: { source: string; partition: number; firstOffset: number; count: number }[] = [];
    for (const state of this.states()) {
      let count = 0;
      for (let i = state.head; i < state.pending.length; i++) if (state.acked[i] === 0) count++;
      if (count === 0) continue;
      out.push({ source: state.source, partition: state.partition, firstOffset: state.pending[state.head]!, count });
    }
    return out;
  }

  /** Tracked records not yet acknowledged, across all partitions. */
  inFlight(): number {
    let n = 0;
    for (const state of this.states()) n += state.pending.length - state.head;
    return n;
  }

  /** Forgets a partition (revoked in a rebalance): later acks for it are ignored. */
  revoke(source: string, partition: number): void {
    const state = this.state(source, partition);
    if (state === undefined) return;
    this.partitions.get(source)!.delete(partition);
    this.dirty.delete(state);
    if (this.last === state) this.last = undefined;
  }
}

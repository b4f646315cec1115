import type { Committable } from '../../src/core/offset-tracker.js';

export const partitionKey = (topic: string, partition: number) => `${topic}:${partition}`;

/**
 * The source's one commit state, per assigned partition: the offset the pipeline asked to commit
 * (its offset tracker decides what is committable) and what the broker last said the group
 * stores. A commit is done only once the broker's answer shows it: kafkajs can resolve a commit
 * it never sent while its run loop restarts.
 */
export class GroupCommits {
  private readonly partitions = new Map<string, { wanted: Committable | undefined; stored: number }>();

  private entry(key: string) {
    let entry = this.partitions.get(key);
    if (entry === undefined) this.partitions.set(key, (entry = { wanted: undefined, stored: -1 }));
    return entry;
  }

  /** The pipeline's latest committable offset for a partition. */
  want(offset: Committable): void {
    this.entry(partitionKey(offset.source, offset.partition)).wanted = offset;
  }

  /**
   * What a read of the group's offsets says is stored. Overwritten, not maxed: a commit that
   * timed out may land later with older offsets (kafkajs retries it after a broker restart), and
   * the offsets it moved back must be committed again.
   */
  stored(topic: string, partition: number, offset: number): void {
    this.entry(partitionKey(topic, partition)).stored = offset;
  }

  /** A partition revoked: nothing of it is committed any more. */
  forget(key: string): void {
    this.partitions.delete(key);
  }

  /** True when the pipeline asked for any commit (so stored offsets are worth verifying). */
  get wanted(): boolean {
    for (const entry of this.partitions.values()) if (entry.wanted !== undefined) return true;
    return false;
  }

  /** Wanted offsets the broker does not store yet. */
  unconfirmed(): Committable[] {
    const out: Committable[] = [];
    for (const { wanted, stored } of this.partitions.values()) if (wanted !== undefined && stored < wanted.offset) out.push(wanted);
    return out;
  }
}

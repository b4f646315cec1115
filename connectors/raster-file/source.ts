import { basename } from 'node:path';
import { SourceError } from '../../src/core/errors.js';
import type { RawChunk, Source, SourceHooks } from '../../src/core/source.js';
import { resolveFiles, sourceName } from '../local-file/source.js';
import type { RasterFileSourceConfig } from './config.js';
import { geotiffTiles, timeFromName } from './tiles.js';


/**
 * Replays GeoTIFFs as raster tile envelopes, in file-name order: each file is a partition
 * (source = the file, partition 0) whose offsets are its tiles' 1-based row-major indexes, so a
 * replay is deterministic and what is already catalogued is skipped as for NDJSON lines.
 */
export class RasterFileSource implements Source {
  readonly bounded = true;
  readonly shared = false;
  readonly payloadFormat = 'raster_tile';
  readonly name: string;
  private hooks: SourceHooks | undefined;
  private readonly timePattern: RegExp;
  private readonly scenePattern: RegExp | undefined;

  constructor(private readonly config: RasterFileSourceConfig) {
    this.name = `raster_file:${config.path}`;
    this.timePattern = new RegExp(config.time_pattern);
    this.scenePattern = config.scene_id_pattern === undefined ? undefined : new RegExp(config.scene_id_pattern);
  }

  attach(hooks: SourceHooks): void {
    this.hooks = hooks;
  }

  async *chunks(signal: AbortSignal): AsyncGenerator<RawChunk> {
    for (const file of await resolveFiles(this.config.path)) {
      if (signal.aborted) return;
      const source = sourceName(file);
      // Checked before the file is announced: a bad name fails the run naming the file.
      const time = timeFromName(file, this.timePattern);
      const sceneId = this.sceneId(file);
      await this.hooks?.assigned([{ source, partition: 0, startOffset: 0 }]);
      const tiles = geotiffTiles(file, { dataset: this.config.dataset, variable: this.config.variable, time, tileSize: this.config.tile_size, sceneId });
      for await (const tile of tiles) {
        // One tile a chunk: a tile is up to max_tile_bytes, the in-flight budget paces the reads.
        yield { payloads: [tile.envelope], positions: [{ source, partition: 0, offset: tile.index }] };
        if (signal.aborted) {
          await tiles.return(undefined);
          return;
        }
      }
    }
  }

  private sceneId(file: string): string | undefined {
    if (!this.scenePattern) return undefined;
    const match = this.scenePattern.exec(basename(file));
    if (!match || !match[1]) {
      throw new SourceError(`${file}: scene_id_pattern ${this.scenePattern.source} does not match the file name (its first group gives the scene id)`, {
        context: { connector: 'raster_file', file },
      });
    }
    return match[1];
  }

  async commit(): Promise<void> {
    // A file replay has nothing to commit: re-running it rewrites the same keys.
  }

  async close(): Promise<void> {}
}

import { writeFileSync } from 'node:fs';
import { Kafka, logLevel, CompressionTypes } from 'kafkajs';
import { encodeRasterTile, type RasterTileHeader } from '../../src/records/raster.js';
import type { Dtype, PixelArray } from '../../src/encoders/cog/scene.js';
import { brokers } from './kafka.js';
import { makePixels, prng, shuffled } from './cog.js';

export interface TestScene {
  sceneId: string;
  width: number;
  height: number;
  dtype: Dtype;
  nodata: number | null;
  crs: number;
  geotransform: [number, number, number, number, number, number];
  dataset: string;
  variable: string;
  time: string;
}

export const UTM_SCENE = (over: Partial<TestScene> = {}): TestScene => ({
  sceneId: 'S2A_T33UUP',
  width: 700,
  height: 530,
  dtype: 'float32',
  nodata: -9999,
  crs: 32633,
  geotransform: [500000, 10, 0, 5300000, 0, -10],
  dataset: 'sentinel2',
  variable: 'ndvi',
  time: '2024-03-01T10:30:00Z',
  ...over,
});

/** The whole scene's pixels (deterministic from `seed`) and its raw little-endian bytes. */
export function scenePixels(scene: TestScene, seed = 7): { pixels: PixelArray; bytes: Uint8Array } {
  const pixels = makePixels(scene.dtype, scene.width, scene.height, 1, scene.nodata, seed);
  return { pixels, bytes: new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength) };
}

/** The scene cut into tiles of `tile` px (not aligned to COG blocks unless asked), as envelopes, shuffled. */
export async function sceneTiles(scene: TestScene, bytes: Uint8Array, tile: [number, number], seed = 3, compression: 'none' | 'zstd' | 'deflate' = 'zstd'): Promise<{ x: number; y: number; envelope: Uint8Array }[]> {
  const sample = bytes.byteLength / (scene.width * scene.height);
  const out: { x: number; y: number; envelope: Uint8Array }[] = [];
  for (let y = 0; y < scene.height; y += tile[1]) {
    for (let x = 0; x < scene.width; x += tile[0]) {
      const w = Math.min(tile[0], scene.width - x);
      const h = Math.min(tile[1], scene.height - y);
      const px = new Uint8Array(w * h * sample);
      for (let r = 0; r < h; r++) px.set(bytes.subarray(((y + r) * scene.width + x) * sample, ((y + r) * scene.width + x + w) * sample), r * w * sample);
      const header: RasterTileHeader = {
        dataset: scene.dataset, variable: scene.variable, time: scene.time, crs: scene.crs, scene_id: scene.sceneId,
        scene_width: scene.width, scene_height: scene.height, geotransform: scene.geotransform,
        x, y, width: w, height: h, dtype: scene.dtype, nodata: scene.nodata === null ? null : Number.isNaN(scene.nodata) ? 'nan' : scene.nodata,
      };
      out.push({ x, y, envelope: await encodeRasterTile(header, px, compression) });
    }
  }
  return shuffled(out, prng(seed));
}

/** Sends envelopes round-robin over the topic's partitions (in the order given). */
export async function produceTiles(topic: string, envelopes: Uint8Array[], partitions: number): Promise<void> {
  const producer = new Kafka({ brokers: brokers().split(','), clientId: 'earthmem-raster-test', logLevel: logLevel.NOTHING }).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    // Requests under the broker's 1 MiB limit.
    let group: { value: Buffer; partition: number }[] = [];
    let bytes = 0;
    const flush = async () => {
      if (group.length > 0) await producer.send({ topic, acks: -1, compression: CompressionTypes.None, messages: group });
      group = [];
      bytes = 0;
    };
    for (const [i, value] of envelopes.entries()) {
      if (bytes + value.byteLength > 700_000) await flush();
      group.push({ value: Buffer.from(value), partition: i % partitions });
      bytes += value.byteLength;
    }
    await flush();
  } finally {
    await producer.disconnect();
  }
}

export function writeRaw(path: string, bytes: Uint8Array): string {
  writeFileSync(path, bytes);
  return path;
}

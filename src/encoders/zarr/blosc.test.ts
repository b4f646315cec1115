import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { referencePython } from '../../../test/support/python.js';
import { seededRandom } from '../../records/sample.js';
import { bloscDecode, bloscEncode, shuffle, unshuffle } from './blosc.js';

/** Cases: sizes around the block size and the typesize, smooth and random data, every typesize the arrays use. */
function cases(): { name: string; bytes: Uint8Array; typesize: number }[] {
  const random = seededRandom(7);
  const out: { name: string; bytes: Uint8Array; typesize: number }[] = [];
  for (const typesize of [1, 2, 4, 8]) {
    for (const size of [0, 1, 3, 4096, 100_003, 262_144, 262_144 * 2 + 17, 1_000_000]) {
      const n = size - (size % typesize);
      const smooth = new Uint8Array(n);
      const view = new DataView(smooth.buffer);
      for (let i = 0; i + typesize <= n; i += typesize) {
        if (typesize === 8) view.setFloat64(i, 1000 + Math.sin(i / 800), true);
        else if (typesize === 4) view.setFloat32(i, 20 + Math.sin(i / 400), true);
        else if (typesize === 2) view.setUint16(i, 500 + (i % 97), true);
        else smooth[i] = i % 13;
      }
      const noise = new Uint8Array(n);
      for (let i = 0; i < n; i++) noise[i] = Math.floor(random() * 256);
      out.push({ name: `smooth ${n} B typesize ${typesize}`, bytes: smooth, typesize }, { name: `noise ${n} B typesize ${typesize}`, bytes: noise, typesize });
    }
  }
  return out;
}

test('blosc: shuffle and unshuffle are inverse, remainder bytes kept in place', () => {
  const src = Uint8Array.from({ length: 23 }, (_, i) => i);
  assert.deepEqual([...shuffle(src, 4).subarray(0, 6)], [0, 4, 8, 12, 16, 1]);
  assert.deepEqual([...shuffle(src, 4).subarray(20)], [20, 21, 22]);
  for (const ts of [1, 2, 3, 4, 8]) assert.deepEqual(unshuffle(shuffle(src, ts), ts), src);
});

test('blosc frames round-trip here, and numcodecs (c-blosc) decodes every one byte for byte', async () => {
  const all = cases();
  const frames = await Promise.all(all.map((c) => bloscEncode(c.bytes, c.typesize, 5)));
  for (const [i, c] of all.entries()) assert.deepEqual(await bloscDecode(frames[i]!), c.bytes, c.name);
  // The smooth data compresses; noise is stored (memcpyed) rather than grown.
  for (const [i, c] of all.entries()) if (c.bytes.length > 0 && c.name.startsWith('noise')) assert.ok(frames[i]!.length <= c.bytes.length + 16, c.name);
  const script = `
import sys, json, base64, hashlib
from numcodecs import Blosc
out = []
for line in sys.stdin:
    case = json.loads(line)
    raw = Blosc().decode(base64.b64decode(case["frame"]))
    out.append(hashlib.sha256(bytes(raw)).hexdigest())
print(json.dumps(out))`;
  // c-blosc cannot decode an empty frame, its own neither: chunks are never empty.
  const checked = all.map((c, i) => ({ c, frame: frames[i]! })).filter(({ c }) => c.bytes.length > 0);
  const input = checked.map(({ frame }) => JSON.stringify({ frame: Buffer.from(frame).toString('base64') })).join('\n');
  const digests = JSON.parse(execFileSync(referencePython(), ['-c', script], { input, maxBuffer: 1 << 28 }).toString()) as string[];
  const { createHash } = await import('node:crypto');
  assert.equal(digests.length, checked.length);
  for (const [i, { c }] of checked.entries()) assert.equal(digests[i], createHash('sha256').update(c.bytes).digest('hex'), c.name);
});

test('blosc frames numcodecs writes (its defaults: lz4, byte shuffle, split streams; zstd, zlib) decode here', async () => {
  const script = `
import sys, json, base64, numpy as np
from numcodecs import Blosc
out = []
data = (np.arange(200_000, dtype="<f4") * 0.25).tobytes()
for cname in ("lz4", "zstd", "zlib"):
    for shuffle in (Blosc.NOSHUFFLE, Blosc.SHUFFLE):
        for blocksize in (0, 4096):
            out.append({"name": f"{cname} shuffle={shuffle} blocksize={blocksize}", "frame": base64.b64encode(Blosc(cname=cname, clevel=5, shuffle=shuffle, blocksize=blocksize).encode(data)).decode()})
print(json.dumps(out))`;
  const frames = JSON.parse(execFileSync(referencePython(), ['-c', script], { maxBuffer: 1 << 28 }).toString()) as { name: string; frame: string }[];
  const expected = new Uint8Array(new Float32Array(Array.from({ length: 200_000 }, (_, i) => i * 0.25)).buffer);
  for (const f of frames) assert.deepEqual(await bloscDecode(Buffer.from(f.frame, 'base64')), expected, f.name);
});

test('blosc: a cut frame or an unread codec is a clear error', async () => {
  const frame = await bloscEncode(new Uint8Array(new Float32Array(10_000).fill(3).buffer), 4, 5);
  await assert.rejects(bloscDecode(frame.subarray(0, 10)), /shorter than its header/);
  await assert.rejects(bloscDecode(frame.subarray(0, frame.length - 3)), /it says \d+ bytes/);
  const blosclz = Uint8Array.from(frame);
  blosclz[2] = (blosclz[2]! & 0x1f) | (0 << 5);
  await assert.rejects(bloscDecode(blosclz), /codec blosclz is not read here/);
});

import type { Body } from './backend.js';

/** Bytes of a body; a stream is read to the end. */
export async function collectBody(body: Body): Promise<Uint8Array> {
  if (body instanceof Uint8Array) return body;
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const part of body) {
    parts.push(part);
    size += part.byteLength;
  }
  return concat(parts, size);
}

/**
 * Re-chunks a body into parts of exactly `partSize` bytes (the last may be shorter), for
 * multipart and block uploads. A small in-memory body comes out as one part.
 */
export async function* partsOf(body: Body, partSize: number): AsyncGenerator<Uint8Array> {
  if (body instanceof Uint8Array) {
    for (let at = 0; at < body.byteLength || at === 0; at += partSize) {
      yield body.subarray(at, Math.min(at + partSize, body.byteLength));
      if (body.byteLength === 0) return;
    }
    return;
  }
  let pending: Uint8Array[] = [];
  let pendingSize = 0;
  let emitted = false;
  for await (const chunk of body) {
    let rest = chunk;
    while (pendingSize + rest.byteLength >= partSize) {
      const take = partSize - pendingSize;
      pending.push(rest.subarray(0, take));
      rest = rest.subarray(take);
      yield concat(pending, partSize);
      emitted = true;
      pending = [];
      pendingSize = 0;
    }
    if (rest.byteLength > 0) {
      pending.push(rest);
      pendingSize += rest.byteLength;
    }
  }
  if (pendingSize > 0 || !emitted) yield concat(pending, pendingSize);
}

/** The parts as one array of `size` bytes (the part itself when there is one). */
export function concat(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

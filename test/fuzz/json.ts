/**
 * The fuzz oracle's own readers, written from the standards and not from src/records: a strict
 * UTF-8 decoder (Unicode 15, table 3-7) and an RFC 8259 JSON parser. The parser keeps every
 * member of an object in order, duplicates included, so the oracle decides what a duplicate
 * means; and it is iterative, so a record nested 30,000 levels deep is no problem for it.
 */

export type Json =
  | { t: 'object'; entries: [string, Json][] }
  | { t: 'array'; items: Json[] }
  | { t: 'string'; value: string }
  | { t: 'number'; text: string; value: number }
  | { t: 'true' }
  | { t: 'false' }
  | { t: 'null' };

/** The text of well-formed UTF-8 bytes, or undefined (overlongs, surrogates, > U+10FFFF, truncated, stray bytes). */
export function decodeUtf8(b: Uint8Array): string | undefined {
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    let n: number;
    if (c < 0x80) {
      n = 1;
    } else {
      // Lead byte → length and the allowed range of the second byte.
      let lo = 0x80, hi = 0xbf;
      if (c >= 0xc2 && c <= 0xdf) n = 2;
      else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c === 0xe0) lo = 0xa0; // overlong
        if (c === 0xed) hi = 0x9f; // surrogates
      } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c === 0xf0) lo = 0x90; // overlong
        if (c === 0xf4) hi = 0x8f; // beyond U+10FFFF
      } else return undefined;
      if (i + n > b.length) return undefined;
      const second = b[i + 1]!;
      if (second < lo || second > hi) return undefined;
      for (let k = 2; k < n; k++) if ((b[i + k]! & 0xc0) !== 0x80) return undefined;
    }
    i += n;
  }
  // Validated above; turning well-formed UTF-8 into a string leaves no choice to make.
  return textOf.decode(b);
}

const textOf = new TextDecoder('utf-8', { ignoreBOM: true });

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;
const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** RFC 8259 JSON text → a Json tree, or undefined when it is not JSON. */
export function parseJson(text: string): Json | undefined {
  let i = 0;
  const n = text.length;
  const space = () => {
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    }
  };
  const string = (): string | undefined => {
    if (text.charCodeAt(i) !== 0x22) return undefined;
    i++;
    let s = '';
    let start = i;
    for (;;) {
      if (i >= n) return undefined;
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        s += text.slice(start, i);
        i++;
        return s;
      }
      if (c < 0x20) return undefined;
      if (c !== 0x5c) {
        i++;
        continue;
      }
      s += text.slice(start, i);
      const e = text[i + 1];
      if (e !== undefined && Object.hasOwn(simple, e)) {
        s += simple[e];
        i += 2;
      } else if (e === 'u' && HEX4.test(text.slice(i + 2, i + 6))) {
        s += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16)); // lone surrogates included: valid JSON text
        i += 6;
      } else return undefined;
      start = i;
    }
  };
  const member = (): string | undefined => {
    const key = string();
    if (key === undefined) return undefined;
    space();
    if (text[i] !== ':') return undefined;
    i++;
    space();
    return key;
  };
  type Frame = { node: Extract<Json, { t: 'object' }>; key: string } | { node: Extract<Json, { t: 'array' }>; key: undefined };
  const stack: Frame[] = [];
  space();
  for (;;) {
    let value: Json;
    const c = text[i];
    if (c === '{') {
      i++;
      space();
      const node: Extract<Json, { t: 'object' }> = { t: 'object', entries: [] };
      if (text[i] === '}') {
        i++;
        value = node;
      } else {
        const key = member();
        if (key === undefined) return undefined;
        stack.push({ node, key });
        continue;
      }
    } else if (c === '[') {
      i++;
      space();
      const node: Extract<Json, { t: 'array' }> = { t: 'array', items: [] };
      if (text[i] === ']') {
        i++;
        value = node;
      } else {
        stack.push({ node, key: undefined });
        continue;
      }
    } else if (c === '"') {
      const s = string();
      if (s === undefined) return undefined;
      value = { t: 'string', value: s };
    } else if (text.startsWith('true', i)) {
      i += 4;
      value = { t: 'true' };
    } else if (text.startsWith('false', i)) {
      i += 5;
      value = { t: 'false' };
    } else if (text.startsWith('null', i)) {
      i += 4;
      value = { t: 'null' };
    } else {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (m === null) return undefined;
      i += m[0].length;
      value = { t: 'number', text: m[0], value: Number(m[0]) };
    }
    // Hand the value to its container; close every container that ends here.
    for (;;) {
      const top = stack[stack.length - 1];
      space();
      if (top === undefined) return i === n ? value : undefined;
      if (top.key !== undefined) top.node.entries.push([top.key, value]);
      else top.node.items.push(value);
      const d = text[i];
      if (d === ',') {
        i++;
        space();
        if (top.key !== undefined) {
          const key = member();
          if (key === undefined) return undefined;
          top.key = key;
        }
        break;
      }
      if (d !== (top.key !== undefined ? '}' : ']')) return undefined;
      i++;
      stack.pop();
      value = top.node;
    }
  }
}

/** An object's members as JSON.parse semantics give them: the last duplicate wins. */
export function members(o: Extract<Json, { t: 'object' }>): Map<string, Json> {
  return new Map(o.entries);
}

/** The values a JSON.parse'd container holds: an object's earlier duplicates are gone. */
function children(node: Json): Json[] {
  if (node.t === 'object') return [...members(node).values()];
  return node.t === 'array' ? node.items : [];
}

/** Nesting depth as JSON.parse leaves it: a scalar is 0, a container 1 more than its deepest child. Iterative. */
export function depthOf(root: Json): number {
  let max = 0;
  const stack: [Json, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [node, d] = stack.pop()!;
    if (node.t !== 'object' && node.t !== 'array') continue;
    max = Math.max(max, d + 1);
    for (const child of children(node)) stack.push([child, d + 1]);
  }
  return max;
}

/**
 * A canonical text of a JSON value as a JSON.parse'd value means it: object keys deduplicated
 * (last wins) and sorted, numbers as the double they denote (-0 as 0, as JSON text has it).
 * Two texts with the same canonical form hold the same data.
 */
export function canonical(root: Json): string {
  // Recursion is fine here: only values within the kept-depth limit are canonicalized.
  const walk = (node: Json): string => {
    switch (node.t) {
      case 'object': {
        const m = members(node);
        return `{${[...m.keys()].sort().map((k) => `${JSON.stringify(k)}:${walk(m.get(k)!)}`).join(',')}}`;
      }
      case 'array': return `[${node.items.map(walk).join(',')}]`;
      case 'string': return JSON.stringify(node.value);
      case 'number': return Object.is(node.value, -0) ? '0' : String(node.value);
      default: return node.t;
    }
  };
  return walk(root);
}

/** Does a JSON.parse'd value hold a number that is not finite as a double (1e400)? Iterative. */
export function hasNonFinite(root: Json): boolean {
  const stack: Json[] = [root];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (node.t === 'number' && !Number.isFinite(node.value)) return true;
    for (const child of children(node)) stack.push(child);
  }
  return false;
}

/**
 * A memo keyed by up to six strings or numbers, as nested Maps: a lookup builds no key string
 * (records' low-cardinality strings are interned, so each Map reuses their cached hash). It is
 * the per-record lookup of classification and routing. Bounded: cleared when it holds `limit`.
 */
export class TupleMemo<V> {
  private root = new Map<unknown, unknown>();
  private size = 0;

  constructor(private readonly limit = 100_000) {}

  /** The value under (a…f), made by `make(x, y)` on a miss (no closure per lookup). */
  get<X, Y>(a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown, make: (x: X, y: Y) => V, x: X, y: Y): V {
    const m1 = this.level(this.root, a);
    const m2 = this.level(m1, b);
    const m3 = this.level(m2, c);
    const m4 = this.level(m3, d);
    const m5 = this.level(m4, e);
    if (m5.has(f)) return m5.get(f) as V;
    const value = make(x, y);
    if (this.size >= this.limit) {
      this.root = new Map();
      this.size = 0;
      return value;
    }
    this.size++;
    m5.set(f, value);
    return value;
  }

  private level(map: Map<unknown, unknown>, key: unknown): Map<unknown, unknown> {
    let next = map.get(key) as Map<unknown, unknown> | undefined;
    if (next === undefined) {
      next = new Map();
      map.set(key, next);
    }
    return next;
  }
}

// Structural sharing for refreshed answers: an item equal to the one before
// keeps its old object, so memoized components (a graph node, a row) do not
// render again when nothing about them changed.

function sameJSON(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!sameJSON((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

/** next, with each item equal (by value) to the item of prev with the same key replaced by that item. */
export function reuseEqual<T>(prev: T[] | undefined, next: T[], key: (t: T) => string): T[] {
  if (!prev || prev.length === 0) return next;
  const old = new Map<string, T>();
  for (const p of prev) old.set(key(p), p);
  let changed = prev.length !== next.length;
  const out = next.map((n, i) => {
    const p = old.get(key(n));
    if (p !== undefined && sameJSON(p, n)) {
      if (prev[i] !== p) changed = true;
      return p;
    }
    changed = true;
    return n;
  });
  return changed ? out : prev;
}

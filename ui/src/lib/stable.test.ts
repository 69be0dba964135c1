import { describe, expect, it } from 'vitest';
import { reuseEqual } from './stable';

describe('reuseEqual', () => {
  const a = { key: 'a', status: { fresh: 1, missing: 0 } };
  const b = { key: 'b', status: { fresh: 0, missing: 2 } };
  it('keeps the old objects of unchanged items, and the old array when nothing changed', () => {
    const prev = [a, b];
    const same = reuseEqual(prev, JSON.parse(JSON.stringify(prev)) as typeof prev, (x) => x.key);
    expect(same).toBe(prev);
  });
  it('takes the new object of a changed item only', () => {
    const prev = [a, b];
    const next = [{ key: 'a', status: { fresh: 1, missing: 0 } }, { key: 'b', status: { fresh: 1, missing: 1 } }];
    const out = reuseEqual(prev, next, (x) => x.key);
    expect(out).not.toBe(prev);
    expect(out[0]).toBe(a);
    expect(out[1]).toBe(next[1]);
  });
  it('follows added, removed and reordered items', () => {
    const c = { key: 'c', status: { fresh: 0, missing: 0 } };
    expect(reuseEqual([a, b], [b, a], (x) => x.key)).toEqual([b, a]);
    expect(reuseEqual([a, b], [a], (x) => x.key)).toEqual([a]);
    expect(reuseEqual([a], [a, c], (x) => x.key)[1]).toBe(c);
  });
});

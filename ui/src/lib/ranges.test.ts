import { describe, expect, it } from 'vitest';
import type { PartitionRange } from '../api/types';
import { clampView, countByHealth, describeKeys, describeSpan, indexAtX, indexRanges, panView, rangeAt, stripRects, zoomView } from './ranges';

const r = (start: string, end: string, status: PartitionRange['status'], count: number): PartitionRange => ({ start, end, status, count });

const example = indexRanges([
  r('2026-01-01', '2026-01-07', 'FRESH', 7),
  r('2026-01-08', '2026-01-08', 'FAILED', 1),
  r('2026-01-09', '2026-01-10', 'STALE', 2),
  r('2026-01-11', '2026-01-20', 'MISSING', 10),
]);

describe('indexRanges and rangeAt', () => {
  it('places each range after the one before it', () => {
    expect(example.total).toBe(20);
    expect(example.ranges.map((x) => [x.from, x.to, x.health])).toEqual([
      [0, 7, 'fresh'],
      [7, 8, 'failed'],
      [8, 10, 'stale'],
      [10, 20, 'missing'],
    ]);
  });
  it('finds the range of any index by binary search', () => {
    expect(rangeAt(example.ranges, 0)).toBe(0);
    expect(rangeAt(example.ranges, 6)).toBe(0);
    expect(rangeAt(example.ranges, 7)).toBe(1);
    expect(rangeAt(example.ranges, 19)).toBe(3);
    expect(rangeAt(example.ranges, 20)).toBe(-1);
    expect(rangeAt(example.ranges, -1)).toBe(-1);
    expect(rangeAt([], 0)).toBe(-1);
  });
  it('counts partitions per status', () => {
    expect(countByHealth(example.ranges)).toEqual({ fresh: 7, failed: 1, stale: 2, missing: 10, running: 0 });
  });
});

describe('stripRects', () => {
  it('draws one rectangle per range when each is wider than a pixel', () => {
    const rects = stripRects(example.ranges, { from: 0, to: 20 }, 200);
    expect(rects).toEqual([
      { x: 0, w: 70, health: 'fresh' },
      { x: 70, w: 10, health: 'failed' },
      { x: 80, w: 20, health: 'stale' },
      { x: 100, w: 100, health: 'missing' },
    ]);
  });
  it('lets the worst status win a shared pixel, so one failure in 100,000 shows', () => {
    const big = indexRanges([r('a', 'b', 'FRESH', 50_000), r('c', 'c', 'FAILED', 1), r('d', 'e', 'FRESH', 49_999)]);
    expect(big.total).toBe(100_000);
    const rects = stripRects(big.ranges, { from: 0, to: big.total }, 1000);
    expect(rects.filter((x) => x.health === 'failed')).toEqual([{ x: 500, w: 1, health: 'failed' }]);
    expect(rects.reduce((a, x) => a + x.w, 0)).toBe(1000);
  });
  it('draws only what is in the view', () => {
    const rects = stripRects(example.ranges, { from: 7, to: 9 }, 100);
    expect(rects).toEqual([
      { x: 0, w: 50, health: 'failed' },
      { x: 50, w: 50, health: 'stale' },
    ]);
    expect(stripRects(example.ranges, { from: 0, to: 20 }, 0)).toEqual([]);
  });
  it('stays cheap with 100,000 one-partition ranges', () => {
    const many = indexRanges(Array.from({ length: 100_000 }, (_, i) => r(String(i), String(i), i % 2 ? 'FRESH' : 'MISSING', 1)));
    const t = performance.now();
    const rects = stripRects(many.ranges, { from: 0, to: many.total }, 1200);
    expect(performance.now() - t).toBeLessThan(200);
    expect(rects.every((x) => x.health === 'missing')).toBe(true);
  });
});

describe('views', () => {
  it('zooms around the partition under the pointer', () => {
    const v = zoomView({ from: 0, to: 100 }, 50, 0.5, 100);
    expect(v).toEqual({ from: 25, to: 75 });
    const edge = zoomView({ from: 0, to: 100 }, 0, 0.1, 100);
    expect(edge).toEqual({ from: 0, to: 10 });
  });
  it('never zooms past the ends or below the minimum span', () => {
    expect(zoomView({ from: 0, to: 100 }, 50, 4, 100)).toEqual({ from: 0, to: 100 });
    expect(zoomView({ from: 40, to: 60 }, 50, 0.01, 100, 10)).toEqual({ from: 45, to: 55 });
    expect(clampView({ from: -5, to: 3 }, 100, 10)).toEqual({ from: 0, to: 10 });
    expect(clampView({ from: 0, to: 50 }, 4, 10)).toEqual({ from: 0, to: 4 });
  });
  it('pans and stops at the ends', () => {
    expect(panView({ from: 10, to: 20 }, 5, 100)).toEqual({ from: 15, to: 25 });
    expect(panView({ from: 10, to: 20 }, 500, 100)).toEqual({ from: 90, to: 100 });
    expect(panView({ from: 10, to: 20 }, -500, 100)).toEqual({ from: 0, to: 10 });
  });
  it('maps a pixel to a partition index', () => {
    expect(indexAtX({ from: 0, to: 20 }, 200, 0)).toBe(0);
    expect(indexAtX({ from: 0, to: 20 }, 200, 75)).toBe(7);
    expect(indexAtX({ from: 0, to: 20 }, 200, 200)).toBe(19);
    expect(indexAtX({ from: 10, to: 12 }, 100, 60)).toBe(11);
  });
});

describe('describeKeys', () => {
  it('says a list of keys briefly', () => {
    expect(describeKeys([])).toBe('');
    expect(describeKeys([''])).toBe('(unpartitioned)');
    expect(describeKeys(['2026-01-01'])).toBe('2026-01-01');
    expect(describeKeys(['2026-01-01', '2026-01-02', '2026-01-03'])).toBe('2026-01-01 … 2026-01-03 (3)');
  });
});

describe('describeSpan', () => {
  it('words a span of partitions as describeKeys words their list', () => {
    expect(describeSpan('', '', 0)).toBe('');
    expect(describeSpan('', '', 1)).toBe('(unpartitioned)');
    expect(describeSpan('2026-01-01', '2026-01-01', 1)).toBe('2026-01-01');
    expect(describeSpan('2026-01-01', '2026-01-31', 31)).toBe('2026-01-01 … 2026-01-31 (31)');
    expect(describeSpan('2026-01-01', '2026-03-31', 12000)).toBe(describeKeys(['2026-01-01', ...Array<string>(11998).fill('x'), '2026-03-31']));
  });
});

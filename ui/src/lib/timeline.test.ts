import { describe, expect, it } from 'vitest';
import type { Step } from '../api/types';
import { buildTimeline } from './timeline';

const step = (id: string, asset: string, start: string | null, end: string | null, status: Step['status'] = 'SUCCEEDED'): Step => ({
  id,
  asset,
  partitions: [id],
  status,
  attempt: 1,
  maxAttempts: 1,
  startedAt: start ? `2026-01-01T00:00:${start}Z` : null,
  finishedAt: end ? `2026-01-01T00:00:${end}Z` : null,
  error: null,
});

describe('buildTimeline', () => {
  it('puts each asset on a row and each step where it ran, in lanes when steps overlap', () => {
    const t = buildTimeline(
      [step('a1', 'a', '00', '04'), step('a2', 'a', '02', '06'), step('a3', 'a', '05', '08'), step('b1', 'b', '08', '10'), step('b2', 'b', null, null, 'PENDING')],
      Date.parse('2026-01-01T00:00:10Z'),
    );
    expect(t.rows.map((r) => [r.asset, r.bars.length, r.lanes, r.waiting])).toEqual([
      ['a', 3, 2, 0],
      ['b', 1, 1, 1],
    ]);
    const a = t.rows[0]!.bars;
    expect(a.map((b) => [b.step.id, b.lane])).toEqual([
      ['a1', 0],
      ['a2', 1],
      ['a3', 0],
    ]);
    expect(a[0]!.left).toBe(0);
    expect(a[0]!.width).toBeCloseTo(0.4);
    expect(t.rows[1]!.bars[0]!.left).toBeCloseTo(0.8);
  });
  it('draws a running step up to now', () => {
    const t = buildTimeline([step('r', 'a', '00', null, 'RUNNING')], Date.parse('2026-01-01T00:00:05Z'));
    expect(t.end - t.start).toBe(5000);
    expect(t.rows[0]!.bars[0]!.width).toBe(1);
  });
  it('lists steps that have not started without drawing them', () => {
    const t = buildTimeline([step('p', 'a', null, null, 'PENDING')], 0);
    expect(t.rows).toEqual([{ asset: 'a', bars: [], lanes: 1, waiting: 1 }]);
  });
});

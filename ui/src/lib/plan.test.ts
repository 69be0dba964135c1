import { describe, expect, it } from 'vitest';
import { summarizePlan } from './plan';

describe('summarizePlan', () => {
  it('groups steps per asset, in plan order, and blocked partitions per asset and reason', () => {
    const s = summarizePlan({
      steps: [
        { asset: 'sales/raw_orders', partitions: ['2026-01-01'], status: 'MISSING', causes: [] },
        { asset: 'sales/raw_orders', partitions: ['2026-01-02'], status: 'MISSING', causes: [] },
        {
          asset: 'sales/orders_clean',
          partitions: ['2026-01-02'],
          status: 'STALE',
          causes: [{ kind: 'UPSTREAM_CHANGED', asset: 'sales/raw_orders', partition: '2026-01-02' }],
        },
        { asset: 'sales/weekly', partitions: ['2026-01-05', '2026-01-12'], status: 'MISSING', causes: [] },
      ],
      blocked: [
        { asset: 'sales/daily_report', partition: '2026-01-01', reason: 'no observation' },
        { asset: 'sales/daily_report', partition: '2026-01-02', reason: 'no observation' },
        { asset: 'sales/daily_report', partition: '2026-01-03', reason: 'waiting for upstream window' },
      ],
    });
    expect(s.steps).toBe(4);
    expect(s.partitions).toBe(5);
    expect(s.assets.map((a) => [a.asset, a.steps, a.partitions.length])).toEqual([
      ['sales/raw_orders', 2, 2],
      ['sales/orders_clean', 1, 1],
      ['sales/weekly', 1, 2],
    ]);
    expect(s.assets[1]!.causes).toEqual({ UPSTREAM_CHANGED: 1 });
    expect(s.assets[1]!.examples).toEqual(['UPSTREAM_CHANGED sales/raw_orders 2026-01-02']);
    expect(s.assets[0]!.statuses).toEqual({ MISSING: 2 });
    expect(s.blockedPartitions).toBe(3);
    expect(s.blocked.map((b) => [b.reason, b.partitions])).toEqual([
      ['no observation', ['2026-01-01', '2026-01-02']],
      ['waiting for upstream window', ['2026-01-03']],
    ]);
  });
  it('says nothing for an empty plan', () => {
    expect(summarizePlan({ steps: [], blocked: [] })).toEqual({ assets: [], blocked: [], steps: 0, partitions: 0, blockedPartitions: 0 });
  });
});

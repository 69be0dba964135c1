import { describe, expect, it } from 'vitest';
import type { AssetStatus } from '../api/types';
import { assetHealth, partitionHealth, runHealth, statusShares, statusSummary, stepHealth, freshnessTone } from './status';

const zero: AssetStatus = { fresh: 0, stale: 0, missing: 0, failed: 0, running: 0, queued: 0, total: 0 };
const st = (s: Partial<AssetStatus>): AssetStatus => {
  const v = { ...zero, ...s };
  return { ...v, total: s.total ?? v.fresh + v.stale + v.missing };
};

describe('assetHealth', () => {
  it('is fresh only when every partition is', () => {
    expect(assetHealth(st({ fresh: 328 }))).toBe('fresh');
    expect(assetHealth(st({ fresh: 327, missing: 1 }))).toBe('missing');
  });
  it('ranks running over failed over stale over missing', () => {
    expect(assetHealth(st({ fresh: 5, stale: 1, missing: 3 }))).toBe('stale');
    expect(assetHealth(st({ fresh: 5, stale: 1, failed: 1 }))).toBe('failed');
    expect(assetHealth(st({ fresh: 5, stale: 1, failed: 1, running: 1 }))).toBe('running');
    expect(assetHealth(st({ missing: 3, queued: 2 }))).toBe('running');
  });
  it('calls an asset with no partition yet missing', () => {
    expect(assetHealth(zero)).toBe('missing');
  });
});

describe('statusSummary and statusShares', () => {
  it('lists the non-zero counts, worst first', () => {
    expect(statusSummary(st({ fresh: 1200, stale: 3, missing: 0, failed: 2 }))).toBe('2 failed · 3 stale · 1,200 fresh');
    expect(statusSummary(zero)).toBe('no partitions yet');
  });
  it('gives shares of fresh, stale and missing that add up to one', () => {
    const shares = statusShares(st({ fresh: 2, stale: 1, missing: 1 }));
    expect(shares.map((s) => s.health)).toEqual(['fresh', 'stale', 'missing']);
    expect(shares.reduce((a, s) => a + s.share, 0)).toBeCloseTo(1);
    expect(statusShares(zero)).toEqual([]);
  });
});

describe('status mappings', () => {
  it('map every API status to the five health colours', () => {
    expect(partitionHealth('FRESH')).toBe('fresh');
    expect(partitionHealth('STALE')).toBe('stale');
    expect(partitionHealth('MISSING')).toBe('missing');
    expect(partitionHealth('FAILED')).toBe('failed');
    expect(partitionHealth('RUNNING')).toBe('running');
    expect(runHealth('SUCCEEDED')).toBe('fresh');
    expect(runHealth('QUEUED')).toBe('running');
    expect(runHealth('CANCELED')).toBe('missing');
    expect(stepHealth('SKIPPED_FRESH')).toBe('fresh');
    expect(stepHealth('UPSTREAM_FAILED')).toBe('failed');
    expect(stepHealth('PENDING')).toBe('missing');
    expect(freshnessTone('FAIL')).toBe('bad');
    expect(freshnessTone('WARN')).toBe('warn');
    expect(freshnessTone('UNKNOWN')).toBe('neutral');
  });
});

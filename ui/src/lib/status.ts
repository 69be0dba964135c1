// One vocabulary of status for the whole UI: every status the API reports maps
// to one of five health states, each with one colour (fresh green, stale amber,
// missing grey, failed red, running blue), so a colour means the same thing on
// the graph, the partition strip, the runs and the timeline.
import type { AssetStatus, FreshnessStatus, PartitionStatus, RunStatus, StepStatus } from '../api/types';

export type Health = 'fresh' | 'stale' | 'missing' | 'failed' | 'running';

export const HEALTH_COLOR: Record<Health, string> = {
  fresh: '#16a34a',
  stale: '#d97706',
  missing: '#9ca3af',
  failed: '#dc2626',
  running: '#2563eb',
};

export const HEALTH_LABEL: Record<Health, string> = {
  fresh: 'Fresh',
  stale: 'Stale',
  missing: 'Missing',
  failed: 'Failed',
  running: 'Running',
};

/** How bad a health state is, for "worst wins" (a failed partition beats a thousand fresh ones). */
export const HEALTH_RANK: Record<Health, number> = { fresh: 0, missing: 1, stale: 2, running: 3, failed: 4 };

export const HEALTH_BY_RANK: Health[] = ['fresh', 'missing', 'stale', 'running', 'failed'];

/**
 * The one status of an asset, from its partition counts: running when a step is
 * running or queued for it, else failed when its latest attempt failed somewhere,
 * else stale when any partition is stale, else missing when any is missing
 * (or none exists yet), else fresh.
 */
export function assetHealth(s: AssetStatus): Health {
  if (s.running > 0 || s.queued > 0) return 'running';
  if (s.failed > 0) return 'failed';
  if (s.stale > 0) return 'stale';
  if (s.missing > 0 || s.total === 0) return 'missing';
  return 'fresh';
}

/** Counts in words, in a fixed order, leaving out zeros: "320 fresh · 8 missing". */
export function statusSummary(s: AssetStatus): string {
  if (s.total === 0) return 'no partitions yet';
  const parts: string[] = [];
  if (s.running > 0) parts.push(`${fmtCount(s.running)} running`);
  if (s.queued > 0) parts.push(`${fmtCount(s.queued)} queued`);
  if (s.failed > 0) parts.push(`${fmtCount(s.failed)} failed`);
  if (s.stale > 0) parts.push(`${fmtCount(s.stale)} stale`);
  if (s.missing > 0) parts.push(`${fmtCount(s.missing)} missing`);
  if (s.fresh > 0) parts.push(`${fmtCount(s.fresh)} fresh`);
  return parts.join(' · ');
}

/** The shares of fresh, stale and missing partitions (they add up to total), for a bar. */
export function statusShares(s: AssetStatus): { health: Health; share: number; count: number }[] {
  if (s.total <= 0) return [];
  const out: { health: Health; share: number; count: number }[] = [];
  for (const [health, count] of [
    ['fresh', s.fresh],
    ['stale', s.stale],
    ['missing', s.missing],
  ] as const) {
    if (count > 0) out.push({ health, share: count / s.total, count });
  }
  return out;
}

export function partitionHealth(s: PartitionStatus): Health {
  switch (s) {
    case 'FRESH':
      return 'fresh';
    case 'STALE':
      return 'stale';
    case 'MISSING':
      return 'missing';
    case 'FAILED':
      return 'failed';
    case 'RUNNING':
      return 'running';
  }
}

export function runHealth(s: RunStatus): Health {
  switch (s) {
    case 'SUCCEEDED':
      return 'fresh';
    case 'FAILED':
      return 'failed';
    case 'RUNNING':
    case 'QUEUED':
      return 'running';
    case 'CANCELED':
      return 'missing';
  }
}

export function stepHealth(s: StepStatus): Health {
  switch (s) {
    case 'SUCCEEDED':
    case 'SKIPPED_FRESH':
      return 'fresh';
    case 'FAILED':
    case 'UPSTREAM_FAILED':
      return 'failed';
    case 'RUNNING':
      return 'running';
    case 'READY':
    case 'PENDING':
    case 'CANCELED':
      return 'missing';
  }
}

export function isRunFinished(s: RunStatus): boolean {
  return s === 'SUCCEEDED' || s === 'FAILED' || s === 'CANCELED';
}

export function isBackfillFinished(s: string): boolean {
  return s === 'SUCCEEDED' || s === 'FAILED' || s === 'CANCELED';
}

export type Tone = 'good' | 'warn' | 'bad' | 'neutral' | 'info';

export function freshnessTone(s: FreshnessStatus | string): Tone {
  switch (s) {
    case 'PASS':
      return 'good';
    case 'WARN':
      return 'warn';
    case 'FAIL':
      return 'bad';
    default:
      return 'neutral';
  }
}

export const FRESHNESS_RANK: Record<string, number> = { FAIL: 0, WARN: 1, UNKNOWN: 2, PASS: 3 };

export function healthTone(h: Health): Tone {
  switch (h) {
    case 'fresh':
      return 'good';
    case 'stale':
      return 'warn';
    case 'failed':
      return 'bad';
    case 'running':
      return 'info';
    case 'missing':
      return 'neutral';
  }
}

/** 1,234,567: fast (toLocaleString costs a lot on a thousand nodes). */
export function fmtCount(n: number): string {
  const s = String(n);
  if (n > -1000 && n < 1000) return s;
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

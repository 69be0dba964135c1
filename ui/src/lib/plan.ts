// A plan preview in a few lines per asset, whatever its size (the plan of a
// whole catalog can hold tens of thousands of steps).
import type { Plan } from '../api/types';

export interface AssetPlan {
  asset: string;
  steps: number;
  partitions: string[];
  /** Steps per status (MISSING, STALE, FORCED). */
  statuses: Record<string, number>;
  /** Cause kinds with how many steps name them. */
  causes: Record<string, number>;
  /** Up to three causes naming an upstream, as examples. */
  examples: string[];
}

export interface BlockedGroup {
  asset: string;
  reason: string;
  partitions: string[];
}

export interface PlanSummary {
  assets: AssetPlan[];
  blocked: BlockedGroup[];
  steps: number;
  partitions: number;
  blockedPartitions: number;
}

export function summarizePlan(plan: Plan): PlanSummary {
  const byAsset = new Map<string, AssetPlan>();
  let partitions = 0;
  for (const s of plan.steps) {
    let a = byAsset.get(s.asset);
    if (!a) {
      a = { asset: s.asset, steps: 0, partitions: [], statuses: {}, causes: {}, examples: [] };
      byAsset.set(s.asset, a);
    }
    a.steps++;
    for (const p of s.partitions) a.partitions.push(p);
    partitions += s.partitions.length;
    a.statuses[s.status] = (a.statuses[s.status] ?? 0) + 1;
    const kinds = new Set<string>();
    for (const c of s.causes) {
      kinds.add(c.kind);
      if (c.asset && a.examples.length < 3) {
        const ex = `${c.kind} ${c.asset}${c.partition ? ` ${c.partition}` : ''}`;
        if (!a.examples.includes(ex)) a.examples.push(ex);
      }
    }
    for (const k of kinds) a.causes[k] = (a.causes[k] ?? 0) + 1;
  }
  const blockedBy = new Map<string, BlockedGroup>();
  for (const b of plan.blocked) {
    const k = `${b.asset}\u0000${b.reason}`;
    let g = blockedBy.get(k);
    if (!g) {
      g = { asset: b.asset, reason: b.reason, partitions: [] };
      blockedBy.set(k, g);
    }
    g.partitions.push(b.partition);
  }
  return {
    assets: [...byAsset.values()],
    blocked: [...blockedBy.values()],
    steps: plan.steps.length,
    partitions,
    blockedPartitions: plan.blocked.length,
  };
}

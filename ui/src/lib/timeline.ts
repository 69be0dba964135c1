// The run's step timeline (a Gantt chart): one row per asset, in the order the
// plan lists them, each step a bar from its start to its end (or now), stacked
// in lanes where steps of one asset ran at the same time.
import type { Step } from '../api/types';

export interface Bar {
  step: Step;
  /** Share of the time axis, 0–1. */
  left: number;
  width: number;
  lane: number;
}

export interface TimelineRow {
  asset: string;
  bars: Bar[];
  lanes: number;
  /** Steps of the asset not started yet (not drawn). */
  waiting: number;
}

export interface Timeline {
  rows: TimelineRow[];
  start: number;
  end: number;
}

export function buildTimeline(steps: Step[], now: number, runStart?: string | null, runEnd?: string | null): Timeline {
  let start = Infinity;
  let end = -Infinity;
  for (const s of steps) {
    if (!s.startedAt) continue;
    const a = Date.parse(s.startedAt);
    const b = s.finishedAt ? Date.parse(s.finishedAt) : now;
    if (a < start) start = a;
    if (b > end) end = b;
  }
  if (runStart) start = Math.min(start, Date.parse(runStart));
  if (runEnd) end = Math.max(end, Date.parse(runEnd));
  if (!Number.isFinite(start)) return { rows: groupWaiting(steps), start: now, end: now };
  if (end <= start) end = start + 1000;
  const span = end - start;

  const rows = new Map<string, TimelineRow>();
  const laneEnds = new Map<string, number[]>();
  const ordered = [...steps].sort((x, y) => (x.startedAt && y.startedAt ? Date.parse(x.startedAt) - Date.parse(y.startedAt) : 0));
  for (const s of steps) {
    if (!rows.has(s.asset)) rows.set(s.asset, { asset: s.asset, bars: [], lanes: 1, waiting: 0 });
  }
  for (const s of ordered) {
    const row = rows.get(s.asset)!;
    if (!s.startedAt) {
      row.waiting++;
      continue;
    }
    const a = Date.parse(s.startedAt);
    const b = s.finishedAt ? Date.parse(s.finishedAt) : now;
    const ends = laneEnds.get(s.asset) ?? [];
    let lane = ends.findIndex((e) => e <= a);
    if (lane < 0) {
      lane = ends.length;
      ends.push(b);
    } else {
      ends[lane] = b;
    }
    laneEnds.set(s.asset, ends);
    row.lanes = Math.max(row.lanes, ends.length);
    row.bars.push({ step: s, left: (a - start) / span, width: Math.max(b - a, 0) / span, lane });
  }
  return { rows: [...rows.values()], start, end };
}

function groupWaiting(steps: Step[]): TimelineRow[] {
  const rows = new Map<string, TimelineRow>();
  for (const s of steps) {
    const r = rows.get(s.asset) ?? { asset: s.asset, bars: [], lanes: 1, waiting: 0 };
    r.waiting++;
    rows.set(s.asset, r);
  }
  return [...rows.values()];
}

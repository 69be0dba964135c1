// Run-length partition ranges ({start, end, status, count}, in partition order,
// as partitionStatus returns them), placed on an index axis and painted into
// pixel columns. Nothing here is per partition: 100,000 partitions in a few
// ranges cost a few ranges.
import type { PartitionRange } from '../api/types';
import { HEALTH_BY_RANK, HEALTH_RANK, fmtCount, partitionHealth, type Health } from './status';

export interface IndexedRange {
  start: string;
  end: string;
  health: Health;
  count: number;
  /** Index of the first partition of the range; the range is [from, to). */
  from: number;
  to: number;
}

/** Places ranges on the index axis: each starts where the one before ends. */
export function indexRanges(ranges: PartitionRange[]): { ranges: IndexedRange[]; total: number } {
  const out: IndexedRange[] = new Array<IndexedRange>(ranges.length);
  let at = 0;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    out[i] = { start: r.start, end: r.end, health: partitionHealth(r.status), count: r.count, from: at, to: at + r.count };
    at += r.count;
  }
  return { ranges: out, total: at };
}

/** The position in ranges of the range holding partition index i (-1: none). */
export function rangeAt(ranges: IndexedRange[], i: number): number {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid]!;
    if (i < r.from) hi = mid - 1;
    else if (i >= r.to) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** A window of the index axis: partitions [from, to). */
export interface View {
  from: number;
  to: number;
}

/** Keeps a view inside [0, total) and at least minSpan wide (or all of it). */
export function clampView(v: View, total: number, minSpan = 10): View {
  if (total <= 0) return { from: 0, to: 0 };
  let span = Math.max(Math.min(v.to - v.from, total), Math.min(minSpan, total));
  let from = Math.max(0, Math.min(v.from, total - span));
  if (!Number.isFinite(from)) from = 0;
  span = Math.min(span, total - from);
  return { from, to: from + span };
}

/**
 * Zooms a view by factor (< 1 zooms in) around anchor, a partition index that
 * stays under the pointer.
 */
export function zoomView(v: View, anchor: number, factor: number, total: number, minSpan = 10): View {
  const span = v.to - v.from;
  const next = Math.max(Math.min(span * factor, total), Math.min(minSpan, total));
  const ratio = span > 0 ? (anchor - v.from) / span : 0;
  const from = anchor - ratio * next;
  return clampView({ from, to: from + next }, total, minSpan);
}

/** Moves a view by delta partitions, stopping at the ends. */
export function panView(v: View, delta: number, total: number): View {
  return clampView({ from: v.from + delta, to: v.to + delta }, total, v.to - v.from);
}

/** The partition index under x, of a strip width pixels wide showing view. */
export function indexAtX(v: View, width: number, x: number): number {
  if (width <= 0) return Math.floor(v.from);
  const i = Math.floor(v.from + (x / width) * (v.to - v.from));
  return Math.min(Math.max(i, Math.floor(v.from)), Math.ceil(v.to) - 1);
}

export interface Rect {
  x: number;
  w: number;
  health: Health;
}

/**
 * The rectangles to paint for a strip width pixels wide showing view. Wide
 * ranges become one rectangle each; where several ranges share a pixel column,
 * the worst status wins it, so one failed partition among 100,000 stays
 * visible. O(ranges in view + width).
 */
export function stripRects(ranges: IndexedRange[], v: View, width: number): Rect[] {
  const span = v.to - v.from;
  if (width <= 0 || span <= 0 || ranges.length === 0) return [];
  const scale = width / span;
  const cols = new Int8Array(Math.ceil(width)).fill(-1);
  let first = rangeAt(ranges, Math.floor(v.from));
  if (first < 0) first = 0;
  for (let k = first; k < ranges.length; k++) {
    const r = ranges[k]!;
    if (r.from >= v.to) break;
    if (r.to <= v.from) continue;
    const x0 = (Math.max(r.from, v.from) - v.from) * scale;
    const x1 = (Math.min(r.to, v.to) - v.from) * scale;
    const c0 = Math.floor(x0);
    const c1 = Math.min(cols.length, Math.max(c0 + 1, Math.ceil(x1)));
    const rank = HEALTH_RANK[r.health];
    for (let c = c0; c < c1; c++) {
      if (cols[c]! < rank) cols[c] = rank;
    }
  }
  const out: Rect[] = [];
  let c = 0;
  while (c < cols.length) {
    const rank = cols[c]!;
    let e = c + 1;
    while (e < cols.length && cols[e] === rank) e++;
    if (rank >= 0) out.push({ x: c, w: e - c, health: HEALTH_BY_RANK[rank]! });
    c = e;
  }
  return out;
}

/** Partitions per health state over all ranges. */
export function countByHealth(ranges: IndexedRange[]): Record<Health, number> {
  const out: Record<Health, number> = { fresh: 0, stale: 0, missing: 0, failed: 0, running: 0 };
  for (const r of ranges) out[r.health] += r.count;
  return out;
}

/**
 * A list of partition keys in words: "2026-01-01" or "2026-01-01 … 2026-01-07 (7)".
 * The keys come in partition order, as the API lists them.
 */
export function describeKeys(keys: string[]): string {
  return describeSpan(keys[0] ?? '', keys[keys.length - 1] ?? '', keys.length);
}

/**
 * A span of count partitions from first to last in words, as describeKeys
 * words their list: "2026-01-01", "2026-01-01 … 2026-01-07 (7)".
 */
export function describeSpan(first: string, last: string, count: number): string {
  if (count <= 0) return '';
  if (count === 1) return first === '' ? '(unpartitioned)' : first;
  return `${first} … ${last} (${fmtCount(count)})`;
}

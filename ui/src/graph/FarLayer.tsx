import { useLayoutEffect, useRef } from 'react';
import { useStore, type ReactFlowState } from '@xyflow/react';
import type { AssetEdge, GraphNode } from '../api/types';
import { HEALTH_COLOR, assetHealth, type Health } from '../lib/status';
import { NODE_HEIGHT, NODE_WIDTH, type Layout } from './geometry';

const transformOf = (s: ReactFlowState) => s.transform;
const sizeOf = (s: ReactFlowState) => `${s.width}x${s.height}`;

export interface FarHit {
  key: string;
  /** Where the pointer is, in the canvas's pixels. */
  x: number;
  y: number;
}

/**
 * The asset under a point of the graph's coordinates, if any, counting slack
 * units around each block (a pixel or two on screen); the nearest wins.
 */
export function hitTest(nodes: GraphNode[], layout: Layout, fx: number, fy: number, slack = 0): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const n of nodes) {
    const p = layout.positions.get(n.key);
    if (!p) continue;
    const dx = Math.max(p.x - fx, 0, fx - (p.x + NODE_WIDTH));
    const dy = Math.max(p.y - fy, 0, fy - (p.y + NODE_HEIGHT));
    if (dx > slack || dy > slack) continue;
    const d = dx + dy;
    if (d < bestD) {
      best = n.key;
      bestD = d;
      if (d === 0) break;
    }
  }
  return best;
}

/**
 * The graph zoomed far out, drawn on one canvas: each asset a block in its
 * status colour, each edge a curve. Hundreds or thousands of assets cost one
 * element and a few milliseconds per frame, where as many React Flow nodes
 * would cost a DOM element each. It follows React Flow's viewport; the pane
 * below it gets the clicks (AssetGraphView hit-tests them).
 */
export function FarLayer({
  nodes,
  edges,
  layout,
  selected,
  matches,
  hover,
}: {
  nodes: GraphNode[];
  edges: AssetEdge[];
  layout: Layout;
  selected: string | undefined;
  matches: Set<string>;
  hover: string | undefined;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [tx, ty, zoom] = useStore(transformOf);
  const size = useStore(sizeOf);

  useLayoutEffect(() => {
    const c = canvas.current;
    const parent = c?.parentElement;
    if (!c || !parent) return;
    const t0 = performance.now();
    const dpr = window.devicePixelRatio || 1;
    const w = parent.clientWidth;
    const h = parent.clientHeight;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
      c.style.width = `${w}px`;
      c.style.height = `${h}px`;
    }
    const ctx = c.getContext('2d');
    if (!ctx) return;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, c.width, c.height);
    ctx.setTransform(dpr * zoom, 0, 0, dpr * zoom, dpr * tx, dpr * ty);
    // The part of the graph on screen, in its coordinates.
    const x0 = -tx / zoom;
    const y0 = -ty / zoom;
    const x1 = x0 + w / zoom;
    const y1 = y0 + h / zoom;
    const visible = (x: number, y: number) => x + NODE_WIDTH >= x0 && x <= x1 && y + NODE_HEIGHT >= y0 && y <= y1;

    const drawEdges = (list: AssetEdge[], color: string, width: number) => {
      ctx.beginPath();
      for (const e of list) {
        const a = layout.positions.get(e.from);
        const b = layout.positions.get(e.to);
        if (!a || !b) continue;
        const sx = a.x + NODE_WIDTH;
        const sy = a.y + NODE_HEIGHT / 2;
        const ex = b.x;
        const ey = b.y + NODE_HEIGHT / 2;
        if (Math.max(sx, ex) < x0 || Math.min(sx, ex) > x1 || Math.max(sy, ey) < y0 || Math.min(sy, ey) > y1) continue;
        const cx = (sx + ex) / 2;
        ctx.moveTo(sx, sy);
        ctx.bezierCurveTo(cx, sy, cx, ey, ex, ey);
      }
      ctx.strokeStyle = color;
      ctx.lineWidth = width / zoom;
      ctx.stroke();
    };
    drawEdges(edges, '#c3c9d2', 1);
    if (selected) drawEdges(edges.filter((e) => e.from === selected || e.to === selected), '#0e7490', 2.5);

    // Nodes, one fill colour at a time.
    const byHealth = new Map<Health, { x: number; y: number }[]>();
    let drawn = 0;
    for (const n of nodes) {
      const p = layout.positions.get(n.key);
      if (!p || !visible(p.x, p.y)) continue;
      const hh = assetHealth(n.status);
      let list = byHealth.get(hh);
      if (!list) byHealth.set(hh, (list = []));
      list.push(p);
      drawn++;
    }
    for (const [hh, list] of byHealth) {
      ctx.fillStyle = HEALTH_COLOR[hh];
      for (const p of list) ctx.fillRect(p.x, p.y, NODE_WIDTH, NODE_HEIGHT);
    }
    const outline = (key: string, color: string, px: number) => {
      const p = layout.positions.get(key);
      if (!p) return;
      ctx.strokeStyle = color;
      ctx.lineWidth = px / zoom;
      ctx.strokeRect(p.x - px / zoom / 2, p.y - px / zoom / 2, NODE_WIDTH + px / zoom, NODE_HEIGHT + px / zoom);
    };
    for (const k of matches) outline(k, '#facc15', 4);
    if (hover) outline(hover, '#111827', 2);
    if (selected) outline(selected, '#0e7490', 4);
    c.dataset.nodes = String(drawn);
    c.dataset.drawMs = (performance.now() - t0).toFixed(1);
  }, [nodes, edges, layout, selected, matches, hover, tx, ty, zoom, size]);

  return <canvas ref={canvas} className="far-layer" data-testid="graph-far-layer" aria-hidden="true" />;
}

// A rough layout, computed in a few milliseconds (O(nodes + edges)): each asset
// in the layer of its longest path from a source, ordered within its layer by
// the mean position of its upstreams. ELK starts from it for graphs of some
// size (layout.ts), and the page draws it at once for very large graphs while
// ELK works in its worker; the nodes then move to their final places.
import { LAYER_GAP, NODE_GAP, NODE_HEIGHT, NODE_WIDTH, type Layout, type LayoutInput } from './geometry';

export function quickLayout(input: LayoutInput): Layout {
  const t0 = performance.now();
  const index = new Map<string, number>();
  input.nodes.forEach((k, i) => index.set(k, i));
  const n = input.nodes.length;
  const ups: number[][] = Array.from({ length: n }, () => []);
  const downs: number[][] = Array.from({ length: n }, () => []);
  const indegree = new Int32Array(n);
  for (const e of input.edges) {
    const a = index.get(e.from);
    const b = index.get(e.to);
    if (a === undefined || b === undefined || a === b) continue;
    downs[a]!.push(b);
    ups[b]!.push(a);
    indegree[b]!++;
  }
  // Longest path from a source, in topological order (Kahn).
  const layer = new Int32Array(n);
  const queue: number[] = [];
  for (let i = 0; i < n; i++) if (indegree[i] === 0) queue.push(i);
  for (let q = 0; q < queue.length; q++) {
    const a = queue[q]!;
    for (const b of downs[a]!) {
      if (layer[a]! + 1 > layer[b]!) layer[b] = layer[a]! + 1;
      if (--indegree[b]! === 0) queue.push(b);
    }
  }
  // (A cycle would leave nodes unvisited: they stay in layer 0.)
  const layers: number[][] = [];
  for (let i = 0; i < n; i++) (layers[layer[i]!] ??= []).push(i);
  // Order each layer by the mean slot of its upstreams (one sweep, left to right).
  const slot = new Float64Array(n);
  layers.forEach((members, l) => {
    if (l > 0) {
      const key = new Map<number, number>();
      for (const m of members) {
        const u = ups[m]!;
        key.set(m, u.length ? u.reduce((s, x) => s + slot[x]!, 0) / u.length : Number.MAX_SAFE_INTEGER);
      }
      members.sort((a, b) => key.get(a)! - key.get(b)! || a - b);
    }
    members.forEach((m, i) => (slot[m] = i));
  });
  const tallest = Math.max(0, ...layers.map((m) => m?.length ?? 0));
  const height = tallest * (NODE_HEIGHT + NODE_GAP) - NODE_GAP;
  const positions = new Map<string, { x: number; y: number }>();
  layers.forEach((members, l) => {
    const top = (height - (members.length * (NODE_HEIGHT + NODE_GAP) - NODE_GAP)) / 2;
    members.forEach((m, i) => positions.set(input.nodes[m]!, { x: l * (NODE_WIDTH + LAYER_GAP), y: top + i * (NODE_HEIGHT + NODE_GAP) }));
  });
  return {
    positions,
    width: layers.length * (NODE_WIDTH + LAYER_GAP) - LAYER_GAP,
    height: Math.max(height, 0),
    ms: performance.now() - t0,
  };
}

// The graph's layout, computed by ELK (layered, left to right) in a Web Worker,
// off the main thread: elkjs's own worker script runs the algorithm, and the
// page only posts the graph's shape and reads back positions. On the graph page
// the worker starts as the page loads (boot.ts), so its 1.6 MB script is
// compiled while the graph's query is still on its way.
import ELK from 'elkjs/lib/elk-api.js';
import type { ELK as ElkInstance, ElkNode, LayoutOptions } from 'elkjs/lib/elk-api.js';
import elkWorkerURL from 'elkjs/lib/elk-worker.min.js?url';
import { LAYER_GAP, NODE_GAP, NODE_HEIGHT, NODE_WIDTH, type Layout, type LayoutInput } from './geometry';
import { quickLayout } from './quickLayout';

export { NODE_HEIGHT, NODE_WIDTH, type Layout, type LayoutInput } from './geometry';

/** From this many assets on, ELK starts from a layering of ours (see optionsFor). */
const SEEDED_FROM = 300;

let elk: ElkInstance | null = null;

function instance(): ElkInstance {
  if (!elk) {
    elk = new ELK({ workerFactory: () => new Worker(elkWorkerURL) });
  }
  return elk;
}

/** Starts the worker now (it loads and compiles ELK, 1.6 MB, before any layout is asked for). */
export function startLayoutWorker(): void {
  if (typeof Worker !== 'undefined') instance();
}

/**
 * Starts the worker and runs a small synthetic graph through the fast options,
 * so that the JavaScript engine has compiled the layout code by the time the
 * real graph arrives (it lays out a large graph about a third faster warm).
 */
export function prewarmLayout(): void {
  if (typeof Worker === 'undefined') return;
  const layers = 5;
  const perLayer = 12;
  const children: ElkNode[] = [];
  const edges: { id: string; sources: string[]; targets: string[] }[] = [];
  for (let l = 0; l < layers; l++) {
    for (let i = 0; i < perLayer; i++) {
      children.push({ id: `w${l}_${i}`, width: NODE_WIDTH, height: NODE_HEIGHT, x: l * (NODE_WIDTH + LAYER_GAP), y: i * (NODE_HEIGHT + NODE_GAP) });
      if (l > 0) {
        edges.push({ id: `a${l}_${i}`, sources: [`w${l - 1}_${(i * 7) % perLayer}`], targets: [`w${l}_${i}`] });
        if (i % 2) edges.push({ id: `b${l}_${i}`, sources: [`w${l - 1}_${(i * 5 + 3) % perLayer}`], targets: [`w${l}_${i}`] });
      }
    }
  }
  void instance()
    .layout({ id: 'warm', layoutOptions: optionsFor(SEEDED_FROM), children, edges })
    .catch(() => undefined);
}

/**
 * The options. Small graphs get ELK's careful defaults (network simplex
 * layering, Brandes-Köpf placement). Larger ones start from our linear-time
 * layering (quickLayout: each asset one layer right of its deepest upstream, its
 * order by its upstreams'), which ELK takes as given ("interactive" layering
 * and cycle breaking), then one sweep of crossing minimisation and the simple
 * placement: 1,000 assets in well under a second, 10,000 in a few, where the
 * network simplex would take longer and, at several thousand assets, overflow
 * the worker's stack.
 */
function optionsFor(n: number): LayoutOptions {
  const common: LayoutOptions = {
    'elk.algorithm': 'layered',
    'elk.direction': 'RIGHT',
    'elk.spacing.nodeNode': String(NODE_GAP),
    'elk.layered.spacing.nodeNodeBetweenLayers': String(LAYER_GAP),
    'elk.edgeRouting': 'POLYLINE',
  };
  if (n < SEEDED_FROM) {
    return { ...common, 'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF' };
  }
  return {
    ...common,
    'elk.separateConnectedComponents': 'false',
    'elk.layered.cycleBreaking.strategy': 'INTERACTIVE',
    'elk.layered.layering.strategy': 'INTERACTIVE',
    'elk.layered.crossingMinimization.strategy': 'LAYER_SWEEP',
    'elk.layered.thoroughness': '1',
    'elk.layered.nodePlacement.strategy': 'SIMPLE',
  };
}

/** A string that changes only when the graph's shape does (not its statuses). */
export function shapeKey(input: LayoutInput): string {
  return `${input.nodes.join('\n')}\u0000${input.edges.map((e) => `${e.from}>${e.to}`).join('\n')}`;
}

/** The layout input of a graph: node keys and edges, in the API's order. */
export function layoutInputOf(nodes: { key: string }[], edges: { from: string; to: string }[]): LayoutInput {
  return { nodes: nodes.map((n) => n.key), edges: edges.map((e) => ({ from: e.from, to: e.to })) };
}

// Layouts asked for or done, by shape: a page that asks again for the same
// shape (boot.ts starts the graph's layout before the app renders) gets the
// same answer.
const layouts = new Map<string, Promise<Layout>>();
const KEEP_LAYOUTS = 4;

export function computeLayout(input: LayoutInput): Promise<Layout> {
  const key = shapeKey(input);
  let p = layouts.get(key);
  if (!p) {
    p = runLayout(input);
    p.catch(() => layouts.delete(key));
    layouts.set(key, p);
    while (layouts.size > KEEP_LAYOUTS) layouts.delete(layouts.keys().next().value!);
  }
  return p;
}

async function runLayout(input: LayoutInput): Promise<Layout> {
  const t0 = performance.now();
  const known = new Set(input.nodes);
  const seed = input.nodes.length >= SEEDED_FROM ? quickLayout(input).positions : null;
  const graph: ElkNode = {
    id: 'root',
    layoutOptions: optionsFor(input.nodes.length),
    children: input.nodes.map((id) => ({ id, width: NODE_WIDTH, height: NODE_HEIGHT, ...seed?.get(id) })),
    edges: input.edges
      .filter((e) => known.has(e.from) && known.has(e.to))
      .map((e, i) => ({ id: `e${i}`, sources: [e.from], targets: [e.to] })),
  };
  const out = await instance().layout(graph);
  const positions = new Map<string, { x: number; y: number }>();
  for (const c of out.children ?? []) positions.set(c.id, { x: c.x ?? 0, y: c.y ?? 0 });
  return { positions, width: out.width ?? 0, height: out.height ?? 0, ms: performance.now() - t0 };
}

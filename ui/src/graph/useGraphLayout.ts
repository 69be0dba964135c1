import { useEffect, useMemo, useState } from 'react';
import type { AssetEdge, GraphNode } from '../api/types';
import { computeLayout, layoutInputOf, shapeKey, type Layout, type LayoutInput } from './layout';
import { quickLayout } from './quickLayout';

/** From this many assets on, a rough layout is drawn while ELK works. */
export const QUICK_LAYOUT_FROM = 2000;

export interface GraphLayoutState {
  /** The layout to draw: ELK's, or until it is done (large graphs) the rough one. */
  layout: Layout | null;
  /** layout is ELK's. */
  final: boolean;
  error: string | undefined;
  shape: string;
  /** Something to say about the layout shown. */
  note: string | undefined;
}

/**
 * The layout of the nodes and edges shown, computed by ELK in its worker
 * again only when the graph's shape changes, never because a status did. A
 * large graph is drawn at once with a rough layout (quickLayout), then moves to
 * ELK's.
 */
export function useGraphLayout(nodes: GraphNode[] | undefined, edges: AssetEdge[] | undefined): GraphLayoutState {
  const input = useMemo<LayoutInput | null>(() => (nodes && edges ? layoutInputOf(nodes, edges) : null), [nodes, edges]);
  const shape = useMemo(() => (input ? shapeKey(input) : ''), [input]);
  const rough = useMemo(() => (input && input.nodes.length >= QUICK_LAYOUT_FROM ? quickLayout(input) : null), [shape]);
  const [state, setState] = useState<{ shape: string; layout: Layout | null; error: string | undefined }>({ shape: '', layout: null, error: undefined });

  useEffect(() => {
    if (!input || shape === state.shape) return;
    let live = true;
    performance.mark('freshet:graph-data');
    computeLayout(input).then(
      (layout) => {
        performance.mark('freshet:graph-layout');
        if (live) setState({ shape, layout, error: undefined });
      },
      (e: unknown) => live && setState({ shape, layout: null, error: e instanceof Error ? e.message : String(e) }),
    );
    return () => {
      live = false;
    };
  }, [shape]); // input changes with every refetch; shape only with the graph's shape

  const done = state.shape === shape;
  if (!done) return { layout: rough, final: false, error: undefined, shape, note: undefined };
  // A large graph keeps its rough layout when ELK fails on it.
  if (state.error && rough) return { layout: rough, final: true, error: undefined, shape, note: `ELK could not lay this graph out (${state.error}): a simple layered layout is shown.` };
  return { layout: state.layout, final: state.layout !== null, error: state.error, shape, note: undefined };
}

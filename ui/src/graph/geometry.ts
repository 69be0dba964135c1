// The sizes and shapes the graph's layouts share.

export const NODE_WIDTH = 236;
export const NODE_HEIGHT = 78;
/** Space between layers (columns) and between the nodes of a layer. */
export const LAYER_GAP = 90;
export const NODE_GAP = 28;

export interface LayoutInput {
  nodes: string[];
  edges: { from: string; to: string }[];
}

export interface Layout {
  positions: Map<string, { x: number; y: number }>;
  width: number;
  height: number;
  /** How long it took, in ms. */
  ms: number;
}

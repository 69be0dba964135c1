import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type MouseEvent as ReactMouseEvent } from 'react';
import {
  Background,
  Controls,
  MiniMap,
  Position,
  ReactFlow,
  useReactFlow,
  useStore,
  type Edge,
  type NodeHandle,
  type NodeMouseHandler,
  type ReactFlowState,
  type Viewport,
} from '@xyflow/react';
import type { AssetEdge, GraphNode } from '../api/types';
import { HEALTH_COLOR, assetHealth, statusSummary } from '../lib/status';
import { AssetNode, type AssetFlowNode, type AssetNodeData } from './AssetNode';
import { FarLayer, hitTest } from './FarLayer';
import { NODE_HEIGHT, NODE_WIDTH, type Layout } from './geometry';

const nodeTypes = { asset: AssetNode };

// Where the edges attach (left and right middle), given up front so that edges
// are drawn in the same pass as the nodes, before React Flow has measured them.
const handles: NodeHandle[] = [
  { type: 'target', position: Position.Left, x: -1, y: NODE_HEIGHT / 2 - 1, width: 2, height: 2 },
  { type: 'source', position: Position.Right, x: NODE_WIDTH - 1, y: NODE_HEIGHT / 2 - 1, width: 2, height: 2 },
];

/**
 * Below this zoom the graph is drawn on one canvas (FarLayer): node text would
 * be unreadable anyway, and a thousand DOM nodes cost far more to draw.
 */
export const FAR_ZOOM = 0.3;
const isFar = (s: ReactFlowState) => s.transform[2] < FAR_ZOOM;
const noNodes: AssetFlowNode[] = [];
const noEdges: Edge[] = [];

export interface AssetGraphViewProps {
  nodes: GraphNode[];
  edges: AssetEdge[];
  layout: Layout;
  /** layout is ELK's (not the rough one drawn while ELK works). */
  final: boolean;
  selected: string | undefined;
  matches: Set<string>;
  /** A key to bring into view (search), with a counter so the same key can be asked again. */
  focus: { key: string; n: number } | null;
  onSelect: (key: string | undefined) => void;
}

const MIN_ZOOM = 0.005;
const MAX_FIT_ZOOM = 1.1;

/** The viewport that fits the whole layout in the canvas, with a margin. */
export function fitViewport(layout: { width: number; height: number }, size: { width: number; height: number }, padding = 0.06): Viewport {
  const w = Math.max(layout.width, 1);
  const h = Math.max(layout.height, 1);
  const zoom = Math.max(MIN_ZOOM, Math.min(size.width / (w * (1 + 2 * padding)), size.height / (h * (1 + 2 * padding)), MAX_FIT_ZOOM));
  return { x: (size.width - w * zoom) / 2, y: (size.height - h * zoom) / 2, zoom };
}

/**
 * The asset graph: every asset a node coloured by its status, edges labelled
 * with their partition mapping when it is not the plain time overlap; pan,
 * zoom, fit, a minimap. Zoomed far out it is drawn on a canvas instead.
 */
export function AssetGraphView({ nodes, edges, layout, final, selected, matches, focus, onSelect }: AssetGraphViewProps) {
  const flow = useReactFlow();
  // Until React Flow has applied the initial viewport its store says zoom 1:
  // go by the initial viewport's zoom, so that a large graph is never first
  // rendered as DOM nodes only to be replaced by the canvas.
  const [ready, setReady] = useState(false);
  const storeFar = useStore(isFar);
  const [hover, setHover] = useState<{ key: string; x: number; y: number } | null>(null);

  // Node objects are kept while their asset, selection and match are unchanged,
  // so a status refresh re-renders only the nodes whose status moved.
  const cache = useRef(new Map<string, AssetFlowNode>());
  const flowNodes = useMemo(() => {
    const next = new Map<string, AssetFlowNode>();
    const out: AssetFlowNode[] = [];
    for (const a of nodes) {
      const pos = layout.positions.get(a.key) ?? { x: 0, y: 0 };
      const isSelected = a.key === selected;
      const isMatch = matches.has(a.key);
      const prev = cache.current.get(a.key);
      let n: AssetFlowNode;
      if (prev && prev.data.asset === a && prev.data.selected === isSelected && prev.data.match === isMatch && prev.position.x === pos.x && prev.position.y === pos.y) {
        n = prev;
      } else {
        const data: AssetNodeData = { asset: a, selected: isSelected, match: isMatch };
        n = { id: a.key, type: 'asset', position: pos, data, width: NODE_WIDTH, height: NODE_HEIGHT, handles, draggable: false, connectable: false };
      }
      next.set(a.key, n);
      out.push(n);
    }
    cache.current = next;
    return out;
  }, [nodes, layout, selected, matches]);

  // Likewise edges: a new selection re-renders only the edges it touches.
  const edgeCache = useRef(new Map<string, Edge>());
  const flowEdges = useMemo<Edge[]>(() => {
    const next = new Map<string, Edge>();
    const out = edges.map((e) => {
      const id = `${e.from}->${e.to}`;
      const className = selected !== undefined && (e.from === selected || e.to === selected) ? 'edge-active' : undefined;
      const prev = edgeCache.current.get(id);
      const labelled = e.mapping !== 'time' && e.mapping !== 'identity';
      const edge: Edge =
        prev && prev.className === className && prev.data?.mapping === e.mapping
          ? prev
          : {
              id,
              source: e.from,
              target: e.to,
              className,
              label: labelled ? e.mapping : undefined,
              labelBgPadding: [4, 2],
              labelBgBorderRadius: 3,
              data: { mapping: e.mapping },
              focusable: false,
              interactionWidth: 0,
            };
      next.set(id, edge);
      return edge;
    });
    edgeCache.current = next;
    return out;
  }, [edges, selected]);

  // The whole graph fits the canvas from the first paint: the canvas is
  // measured before React Flow renders anything, so nothing is drawn at another
  // zoom first (this component is mounted anew for each graph shape).
  const box = useRef<HTMLDivElement>(null);
  const [initialViewport, setInitialViewport] = useState<Viewport | null>(null);
  useLayoutEffect(() => {
    const el = box.current;
    if (el) setInitialViewport(fitViewport(layout, { width: el.clientWidth, height: el.clientHeight }));
    // Only once: later, React Flow keeps the viewport.
  }, []);
  const far = ready ? storeFar : (initialViewport?.zoom ?? 1) < FAR_ZOOM;
  const fit = useCallback(() => {
    const el = box.current;
    if (el) void flow.setViewport(fitViewport(layout, { width: el.clientWidth, height: el.clientHeight }), { duration: 200 });
  }, [flow, layout]);

  // When ELK's layout replaces the rough one, fit it, unless the user has
  // already moved around.
  const userMoved = useRef(false);
  const firstLayout = useRef(layout);
  useEffect(() => {
    const el = box.current;
    if (layout === firstLayout.current || userMoved.current || !el) return;
    void flow.setViewport(fitViewport(layout, { width: el.clientWidth, height: el.clientHeight }));
  }, [layout, flow]);

  useEffect(() => {
    if (!focus) return;
    const p = layout.positions.get(focus.key);
    if (p) void flow.setCenter(p.x + NODE_WIDTH / 2, p.y + NODE_HEIGHT / 2, { zoom: Math.max(flow.getZoom(), 0.9), duration: 300 });
  }, [focus, layout, flow]);

  const onNodeClick = useCallback<NodeMouseHandler<AssetFlowNode>>((_, node) => onSelect(node.id), [onSelect]);
  const keyAt = (e: ReactMouseEvent) => {
    const p = flow.screenToFlowPosition({ x: e.clientX, y: e.clientY }, { snapToGrid: false });
    return hitTest(nodes, layout, p.x, p.y, 2 / flow.getZoom()); // a block's edge pixels count too
  };
  const onPaneClick = (e: ReactMouseEvent) => onSelect(far ? keyAt(e) : undefined);
  const onPaneMouseMove = (e: ReactMouseEvent) => {
    if (!far) return;
    const key = keyAt(e);
    const rect = box.current?.getBoundingClientRect();
    setHover(key && rect ? { key, x: e.clientX - rect.left, y: e.clientY - rect.top } : null);
  };
  useEffect(() => {
    if (!far) setHover(null);
  }, [far]);
  const hovered = hover ? nodes.find((n) => n.key === hover.key) : undefined;

  return (
    <div
      className={`graph-canvas${hover ? ' over-node' : ''}`}
      ref={box}
      data-testid="asset-graph"
      data-nodes={nodes.length}
      data-mode={far ? 'far' : 'near'}
      data-layout={final ? 'done' : 'rough'}
      data-layout-ms={Math.round(layout.ms)}
    >
      {initialViewport && (
        <ReactFlow<AssetFlowNode>
          nodes={far ? noNodes : flowNodes}
          edges={far ? noEdges : flowEdges}
          nodeTypes={nodeTypes}
          onNodeClick={onNodeClick}
          onPaneClick={onPaneClick}
          onPaneMouseMove={onPaneMouseMove}
          onPaneMouseLeave={() => setHover(null)}
          onInit={() => setReady(true)}
          onMoveStart={(event) => {
            if (event) userMoved.current = true;
          }}
          nodesDraggable={false}
          nodesConnectable={false}
          elementsSelectable={false}
          onlyRenderVisibleElements={nodes.length > 200}
          minZoom={MIN_ZOOM}
          maxZoom={2}
          defaultViewport={initialViewport}
          proOptions={{ hideAttribution: true }}
        >
          <Background gap={24} size={1} />
          {far && <FarLayer nodes={nodes} edges={edges} layout={layout} selected={selected} matches={matches} hover={hover?.key} />}
          <Controls showInteractive={false} position="bottom-left" onFitView={fit} />
          {!far && nodes.length > 30 && (
            <MiniMap
              pannable
              zoomable
              position="bottom-right"
              nodeColor={(n) => HEALTH_COLOR[assetHealth((n.data as AssetNodeData).asset.status)]}
              nodeStrokeWidth={0}
              maskColor="rgba(240, 242, 245, 0.7)"
            />
          )}
        </ReactFlow>
      )}
      {hover && hovered && (
        <div className="graph-tooltip" style={{ left: hover.x + 14, top: hover.y + 14 }} role="tooltip">
          <strong className="mono">{hovered.key}</strong>
          <div className="muted small">{statusSummary(hovered.status)}</div>
        </div>
      )}
    </div>
  );
}

import { useCallback, useMemo, useRef, useState } from 'react';
import { useSearchParams } from 'react-router';
import { ReactFlowProvider } from '@xyflow/react';
import { useQuery, useSubscription } from '../api/hooks';
import { ASSET_EVENTS, GRAPH_QUERY } from '../api/queries';
import type { AssetGraph } from '../api/types';
import { PageHeader } from '../components/PageHeader';
import { EmptyState, ErrorState, Loading } from '../components/States';
import { MaterializeDialog } from '../materialize/MaterializeDialog';
import { BackfillDialog } from '../backfills/BackfillDialog';
import { assetHealth, fmtCount, type Health } from '../lib/status';
import { reuseEqual } from '../lib/stable';
import { useThrottled } from '../lib/useThrottle';
import { AssetGraphView } from './AssetGraphView';
import { AssetPanel } from './AssetPanel';
import { GraphToolbar } from './GraphToolbar';
import { Legend } from './Legend';
import { useGraphLayout } from './useGraphLayout';

/** The selection to act on: what the filters show. */
function effectiveSelection(select: string, group: string, shownKeys: string[]): string | undefined {
  if (!group) return select || undefined;
  if (!select) return `group:${group}`;
  return shownKeys.join(' ');
}

type Dialog = { kind: 'materialize'; selection: string | undefined; scope: string } | { kind: 'backfill'; selection: string | undefined } | null;

/**
 * The asset graph page. Its URL holds the selection (?select=), the group
 * (?group=), the search (?q=) and the asset in the side panel (?asset=).
 */
export function GraphPage() {
  const [params, setParams] = useSearchParams();
  const select = params.get('select') ?? '';
  const group = params.get('group') ?? '';
  const search = params.get('q') ?? '';
  const selected = params.get('asset') ?? undefined;
  const [dialog, setDialog] = useState<Dialog>(null);
  const [focus, setFocus] = useState<{ key: string; n: number } | null>(null);
  const [version, setVersion] = useState(0);

  const setParam = useCallback(
    (name: string, value: string | undefined) => {
      // Another selection or group draws another graph: the search's last jump
      // to a node must not be replayed on it (it would pan away from where the
      // user is about to click).
      if (name === 'select' || name === 'group') setFocus(null);
      setParams(
        (p) => {
          const next = new URLSearchParams(p);
          if (value) next.set(name, value);
          else next.delete(name);
          return next;
        },
        { replace: name === 'q' },
      );
    },
    [setParams],
  );

  const graph = useQuery<{ assetGraph: AssetGraph }>(GRAPH_QUERY, { selection: select || null }, { pollMs: 15_000 });
  const refresh = useThrottled(() => {
    graph.refetch();
    setVersion((v) => v + 1);
  }, 1000);
  useSubscription(ASSET_EVENTS, { selection: select || null }, refresh);

  // A refresh keeps the objects of unchanged assets: only the nodes whose status
  // moved render again.
  const kept = useRef<AssetGraph | undefined>(undefined);
  const all = useMemo(() => {
    const next = graph.data?.assetGraph;
    if (!next) return undefined;
    const prev = kept.current;
    const nodes = reuseEqual(prev?.nodes, next.nodes, (n) => n.key);
    const edges = reuseEqual(prev?.edges, next.edges, (e) => `${e.from}>${e.to}`);
    kept.current = prev && nodes === prev.nodes && edges === prev.edges ? prev : { nodes, edges };
    return kept.current;
  }, [graph.data]);
  const mappings = useMemo(() => new Map((all?.edges ?? []).map((e) => [`${e.from}>${e.to}`, e.mapping])), [all]);
  const groups = useMemo(() => [...new Set((all?.nodes ?? []).map((n) => n.group).filter(Boolean))].sort(), [all]);
  const shown = useMemo(() => {
    if (!all) return undefined;
    if (!group) return all;
    const nodes = all.nodes.filter((n) => n.group === group);
    const keep = new Set(nodes.map((n) => n.key));
    return { nodes, edges: all.edges.filter((e) => keep.has(e.from) && keep.has(e.to)) };
  }, [all, group]);
  const { layout, final, error: layoutError, shape, note: layoutNote } = useGraphLayout(shown?.nodes, shown?.edges);

  const matches = useMemo(() => {
    const q = search.trim().toLowerCase();
    if (!q || !shown) return new Set<string>();
    return new Set(shown.nodes.filter((n) => n.key.toLowerCase().includes(q)).map((n) => n.key));
  }, [search, shown]);
  const counts = useMemo(() => {
    const c: Record<Health, number> = { fresh: 0, stale: 0, missing: 0, failed: 0, running: 0 };
    for (const n of shown?.nodes ?? []) c[assetHealth(n.status)]++;
    return c;
  }, [shown]);

  const onSelect = useCallback((key: string | undefined) => setParam('asset', key), [setParam]);
  const focusFirstMatch = () => {
    const first = [...matches][0];
    if (!first) return;
    setParam('asset', first);
    setFocus((f) => ({ key: first, n: (f?.n ?? 0) + 1 }));
  };
  const sel = effectiveSelection(select, group, shown?.nodes.map((n) => n.key) ?? []);

  let body;
  if (graph.error && !all) body = <ErrorState title="The graph could not be loaded" message={graph.error} onRetry={graph.refetch} />;
  else if (!shown) body = <Loading what="Loading the asset graph" />;
  else if (shown.nodes.length === 0)
    body = (
      <EmptyState title={select || group ? 'No asset matches these filters' : 'No assets yet'}>
        {select || group ? 'Change the selection or the group.' : 'Add assets to the definitions (freshet.yaml) and reload.'}
      </EmptyState>
    );
  else if (layoutError) body = <ErrorState title="The layout failed" message={layoutError} />;
  else if (!layout) body = <Loading what={`Laying out ${fmtCount(shown.nodes.length)} assets`} />;
  else
    body = (
      <ReactFlowProvider key={shape}>
        <AssetGraphView nodes={shown.nodes} edges={shown.edges} layout={layout} final={final} selected={selected} matches={matches} focus={focus} onSelect={onSelect} />
      </ReactFlowProvider>
    );

  return (
    <div className="page page-graph">
      <PageHeader
        title="Assets"
        subtitle={
          shown ? (
            <span>
              {fmtCount(shown.nodes.length)} assets, {fmtCount(shown.edges.length)} edges
              {layout && !final && <span className="muted"> · laying out…</span>}
              {layoutNote && <span className="muted"> · {layoutNote}</span>}
              {graph.error && <span className="inline-error"> · refresh failed: {graph.error}</span>}
            </span>
          ) : undefined
        }
        actions={
          <>
            <button type="button" className="btn" onClick={() => setDialog({ kind: 'backfill', selection: sel })}>
              Backfill…
            </button>
            <button type="button" className="btn btn-primary" onClick={() => setDialog({ kind: 'materialize', selection: sel, scope: sel ?? 'all assets' })}>
              Materialize stale
            </button>
          </>
        }
      />
      <GraphToolbar
        selection={select}
        group={group}
        groups={groups}
        search={search}
        matchCount={matches.size}
        onSelection={(s) => setParam('select', s)}
        onGroup={(g) => setParam('group', g)}
        onSearch={(q) => setParam('q', q)}
        onSearchEnter={focusFirstMatch}
      />
      <Legend counts={shown ? counts : undefined} />
      <div className="graph-area">
        <div className="graph-main">
          {body}
        </div>
        {selected && (
          <AssetPanel
            key={selected}
            assetKey={selected}
            version={version}
            mappings={mappings}
            onSelect={(k) => {
              setParam('asset', k);
              setFocus((f) => ({ key: k, n: (f?.n ?? 0) + 1 }));
            }}
            onClose={() => onSelect(undefined)}
            onMaterialize={(k) => setDialog({ kind: 'materialize', selection: k, scope: k })}
          />
        )}
      </div>
      {dialog?.kind === 'materialize' && <MaterializeDialog selection={dialog.selection} scope={dialog.scope} onClose={() => setDialog(null)} />}
      {dialog?.kind === 'backfill' && <BackfillDialog selection={dialog.selection} onClose={() => setDialog(null)} />}
    </div>
  );
}

import { useEffect, useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { gql, errorMessage } from '../api/client';
import { useQuery, useSubscription } from '../api/hooks';
import { ASSET_EVENTS, ASSET_QUERY, MATERIALIZATIONS_QUERY, PARTITION_STATUS_QUERY } from '../api/queries';
import type { AssetDetail, AssetRef, MaterializationEvent, PartitionRange } from '../api/types';
import { PageHeader } from '../components/PageHeader';
import { HealthBadge, HealthDot } from '../components/StatusBadge';
import { StatusBar } from '../components/StatusBar';
import { EmptyState, ErrorState, InlineError, Loading } from '../components/States';
import { FreshnessSummary } from '../freshness/FreshnessSummary';
import { BackfillDialog } from '../backfills/BackfillDialog';
import { MaterializeDialog } from '../materialize/MaterializeDialog';
import { assetHealth, fmtCount, statusSummary } from '../lib/status';
import { useThrottled } from '../lib/useThrottle';
import { PartitionStrip } from './PartitionStrip';
import { EventTable, PartitionPanel } from './PartitionPanel';

/**
 * One asset: what it is, its partitions as a strip, the selected partition
 * (?partition=), its freshness, lineage and events. It refreshes as the
 * asset's events arrive.
 */
export function AssetPage({ assetKey }: { assetKey: string }) {
  const [params, setParams] = useSearchParams();
  const partition = params.get('partition');
  const [version, setVersion] = useState(0);
  const [dialog, setDialog] = useState<'materialize' | 'backfill' | null>(null);
  const asset = useQuery<{ asset: AssetDetail | null }>(ASSET_QUERY, { key: assetKey }, { pollMs: 15_000 });
  const refresh = useThrottled(() => {
    asset.refetch();
    setVersion((v) => v + 1);
  }, 1000);
  useSubscription(ASSET_EVENTS, { selection: assetKey }, refresh);

  if (asset.error && !asset.data) return <ErrorState title="The asset could not be loaded" message={asset.error} onRetry={asset.refetch} />;
  if (!asset.data) return <Loading what={`Loading ${assetKey}`} />;
  const a = asset.data.asset;
  if (!a) return <EmptyState title={`No asset ${assetKey}`}>It is not in the definitions being served. <Link to="/assets">Back to the graph</Link></EmptyState>;

  const selectPartition = (key: string) =>
    setParams((p) => {
      const n = new URLSearchParams(p);
      n.set('partition', key);
      return n;
    });
  const shownPartition = a.partitionsDef ? partition : '';

  return (
    <div className="page page-asset">
      <PageHeader
        title={<span className="mono">{a.key}</span>}
        subtitle={
          <span className="row gap">
            <HealthBadge health={assetHealth(a.status)} />
            <span>{statusSummary(a.status)}</span>
          </span>
        }
        actions={
          <>
            <Link className="btn" to={`/assets?asset=${encodeURIComponent(a.key)}`}>
              Show in graph
            </Link>
            <Link className="btn" to={`/runs?asset=${encodeURIComponent(a.key)}`}>
              Runs
            </Link>
            {!a.isSource && (
              <>
                <button type="button" className="btn" onClick={() => setDialog('backfill')}>
                  Backfill…
                </button>
                <button type="button" className="btn btn-primary" onClick={() => setDialog('materialize')}>
                  Materialize stale
                </button>
              </>
            )}
          </>
        }
      />
      <div className="asset-grid">
        <div className="asset-main">
          <section className="card">
            <h2>Partitions</h2>
            {a.partitionsDef ? (
              <StripCard asset={a} version={version} selected={partition ?? undefined} onSelect={selectPartition} />
            ) : (
              <p className="muted">Unpartitioned: one partition.</p>
            )}
          </section>
          {shownPartition !== null && (
            <section className="card">
              <PartitionPanel key={shownPartition} assetKey={a.key} partitionKey={shownPartition} version={version} />
            </section>
          )}
          <section className="card">
            <h2>Materializations and observations</h2>
            <Materializations assetKey={a.key} version={version} onPartition={a.partitionsDef ? selectPartition : undefined} />
          </section>
        </div>
        <div className="asset-side">
          <AboutCard asset={a} />
          {a.freshness ? (
            <section className="card">
              <FreshnessSummary freshness={a.freshness} />
            </section>
          ) : (
            <section className="card">
              <h3>Freshness</h3>
              <p className="muted small">No freshness policy.</p>
            </section>
          )}
          <section className="card">
            <h3>Lineage</h3>
            <LinkList title="Upstream" assets={a.upstream} />
            <LinkList title="Downstream" assets={a.downstream} />
          </section>
        </div>
      </div>
      {dialog === 'materialize' && <MaterializeDialog selection={a.key} scope={a.key} onClose={() => setDialog(null)} />}
      {dialog === 'backfill' && <BackfillDialog selection={a.key} onClose={() => setDialog(null)} />}
    </div>
  );
}

function StripCard({ asset: a, version, selected, onSelect }: { asset: AssetDetail; version: number; selected: string | undefined; onSelect: (key: string) => void }) {
  const q = useQuery<{ asset: { partitionStatus: PartitionRange[] } | null }>(PARTITION_STATUS_QUERY, { key: a.key }, { pollMs: 15_000 });
  const { refetch } = q;
  useEffect(() => {
    if (version > 0) refetch();
  }, [version, refetch]);
  if (q.error && !q.data) return <ErrorState message={q.error} onRetry={q.refetch} />;
  if (!q.data?.asset || !a.partitionsDef) return <Loading what="Loading partition status" />;
  return <PartitionStrip assetKey={a.key} def={a.partitionsDef} ranges={q.data.asset.partitionStatus} selected={selected} onSelect={onSelect} />;
}

function AboutCard({ asset: a }: { asset: AssetDetail }) {
  return (
    <section className="card">
      <h3>About</h3>
      {a.description ? <p className="description">{a.description}</p> : <p className="muted small">No description.</p>}
      <StatusBar status={a.status} height={8} />
      <dl className="facts">
        <dt>Group</dt>
        <dd>{a.group || '—'}</dd>
        <dt>Owners</dt>
        <dd>{a.owners.length ? a.owners.map((o) => <span key={o} className="chip">{o}</span>) : '—'}</dd>
        <dt>Tags</dt>
        <dd>{a.tags.length ? a.tags.map((t) => <span key={t} className="chip">{t}</span>) : '—'}</dd>
        <dt>Code version</dt>
        <dd className="mono">{a.codeVersion || '—'}</dd>
        <dt>Compute</dt>
        <dd>{a.isSource ? 'source (observed, not built)' : a.computeKind}</dd>
        <dt>Partitions</dt>
        <dd>
          {a.partitionsDef
            ? `${a.partitionsDef.granularity}, from ${a.partitionsDef.start}${a.partitionsDef.end ? ` to ${a.partitionsDef.end}` : ''} (${a.partitionsDef.timezone})${a.partitionsDef.endOffset ? `, end offset ${a.partitionsDef.endOffset}` : ''}`
            : 'unpartitioned'}
        </dd>
        {a.partitionsDef && (
          <>
            <dt>Existing</dt>
            <dd className="mono">
              {fmtCount(a.partitionsDef.count)}
              {a.partitionsDef.firstKey && ` (${a.partitionsDef.firstKey} … ${a.partitionsDef.lastKey})`}
            </dd>
          </>
        )}
      </dl>
    </section>
  );
}

function LinkList({ title, assets }: { title: string; assets: AssetRef[] }) {
  return (
    <div className="neighbours">
      <h4>
        {title} <span className="muted">{assets.length}</span>
      </h4>
      {assets.length === 0 ? (
        <p className="muted small">none</p>
      ) : (
        <ul>
          {assets.map((n) => (
            <li key={n.key}>
              <HealthDot health={assetHealth(n.status)} /> <Link to={`/asset/${n.key}`}>{n.key}</Link>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

interface MaterializationPage {
  nodes: MaterializationEvent[];
  endCursor: string | null;
  hasNextPage: boolean;
}

function Materializations({ assetKey, version, onPartition }: { assetKey: string; version: number; onPartition: ((key: string) => void) | undefined }) {
  const first = useQuery<{ asset: { materializations: MaterializationPage } | null }>(MATERIALIZATIONS_QUERY, { key: assetKey, after: null });
  const { refetch } = first;
  const [more, setMore] = useState<MaterializationPage[]>([]);
  const [loadingMore, setLoadingMore] = useState(false);
  const [moreError, setMoreError] = useState<string | undefined>();
  useEffect(() => {
    if (version > 0) {
      refetch();
      setMore([]);
    }
  }, [version, refetch]);
  if (first.error && !first.data) return <ErrorState message={first.error} onRetry={refetch} />;
  if (!first.data?.asset) return <Loading what="Loading events" />;
  const pages = [first.data.asset.materializations, ...more];
  const last = pages[pages.length - 1]!;
  const events = pages.flatMap((p) => p.nodes);
  const loadMore = async () => {
    setLoadingMore(true);
    try {
      const res = await gql<{ asset: { materializations: MaterializationPage } | null }>(MATERIALIZATIONS_QUERY, { key: assetKey, after: last.endCursor });
      if (res.asset) setMore((m) => [...m, res.asset!.materializations]);
      setMoreError(undefined);
    } catch (e) {
      setMoreError(errorMessage(e));
    } finally {
      setLoadingMore(false);
    }
  };
  return (
    <>
      <EventTable events={events} assetKey={assetKey} onPartition={onPartition} />
      <InlineError message={moreError} />
      {last.hasNextPage && (
        <button type="button" className="btn btn-small" onClick={() => void loadMore()} disabled={loadingMore}>
          {loadingMore ? 'Loading…' : 'Older events'}
        </button>
      )}
    </>
  );
}

import { useEffect } from 'react';
import { Link } from 'react-router';
import { useQuery } from '../api/hooks';
import { ASSET_QUERY } from '../api/queries';
import type { AssetDetail } from '../api/types';
import { HealthBadge, HealthDot } from '../components/StatusBadge';
import { StatusBar } from '../components/StatusBar';
import { ErrorState, Loading } from '../components/States';
import { FreshnessSummary } from '../freshness/FreshnessSummary';
import { assetHealth, fmtCount, statusSummary } from '../lib/status';

/** The side panel of the asset clicked on the graph. */
export function AssetPanel({
  assetKey,
  version,
  mappings,
  onSelect,
  onClose,
  onMaterialize,
}: {
  assetKey: string;
  version: number;
  /** Partition mapping of each edge, by "from>to". */
  mappings: Map<string, string>;
  onSelect: (key: string) => void;
  onClose: () => void;
  onMaterialize: (key: string) => void;
}) {
  const { data, error, loading, refetch } = useQuery<{ asset: AssetDetail | null }>(ASSET_QUERY, { key: assetKey });
  useEffect(() => {
    if (version > 0) refetch();
  }, [version, refetch]);
  return (
    <aside className="side-panel" aria-label={`Asset ${assetKey}`} data-testid="asset-panel">
      <header className="side-head">
        <h2 className="mono">{assetKey}</h2>
        <button type="button" className="icon-btn" aria-label="Close panel" onClick={onClose}>
          ×
        </button>
      </header>
      {loading && !data ? (
        <Loading what="Loading the asset" />
      ) : error && !data ? (
        <ErrorState message={error} onRetry={refetch} />
      ) : !data?.asset ? (
        <ErrorState title="No such asset" message={`No asset has the key ${assetKey}.`} />
      ) : (
        <AssetPanelBody asset={data.asset} mappings={mappings} onSelect={onSelect} onMaterialize={onMaterialize} />
      )}
    </aside>
  );
}

function AssetPanelBody({
  asset: a,
  mappings,
  onSelect,
  onMaterialize,
}: {
  asset: AssetDetail;
  mappings: Map<string, string>;
  onSelect: (key: string) => void;
  onMaterialize: (key: string) => void;
}) {
  const health = assetHealth(a.status);
  return (
    <div className="side-body">
      <div className="row gap">
        <HealthBadge health={health} />
        <span className="muted">{statusSummary(a.status)}</span>
      </div>
      <StatusBar status={a.status} height={8} />
      {a.description && <p className="description">{a.description}</p>}
      <dl className="facts">
        <dt>Group</dt>
        <dd>{a.group || '—'}</dd>
        <dt>Kind</dt>
        <dd>{a.isSource ? 'source (observed)' : a.computeKind}</dd>
        <dt>Partitions</dt>
        <dd>{a.partitionsDef ? `${a.partitionsDef.granularity} from ${a.partitionsDef.start} (${a.partitionsDef.timezone}), ${fmtCount(a.partitionsDef.count)}` : 'unpartitioned'}</dd>
        <dt>Owners</dt>
        <dd>{a.owners.join(', ') || '—'}</dd>
        <dt>Code version</dt>
        <dd className="mono">{a.codeVersion || '—'}</dd>
      </dl>
      {a.freshness && <FreshnessSummary freshness={a.freshness} />}
      <NeighbourList title="Upstream" assets={a.upstream} mappingOf={(k) => mappings.get(`${k}>${a.key}`)} onSelect={onSelect} />
      <NeighbourList title="Downstream" assets={a.downstream} mappingOf={(k) => mappings.get(`${a.key}>${k}`)} onSelect={onSelect} />
      <div className="side-actions">
        <Link className="btn" to={`/asset/${a.key}`}>
          Open asset
        </Link>
        {!a.isSource && (
          <button type="button" className="btn btn-primary" onClick={() => onMaterialize(a.key)}>
            Materialize stale
          </button>
        )}
      </div>
    </div>
  );
}

function NeighbourList({
  title,
  assets,
  mappingOf,
  onSelect,
}: {
  title: string;
  assets: AssetDetail['upstream'];
  mappingOf: (key: string) => string | undefined;
  onSelect: (key: string) => void;
}) {
  return (
    <section className="neighbours">
      <h3>
        {title} <span className="muted">{assets.length}</span>
      </h3>
      {assets.length === 0 ? (
        <p className="muted small">none</p>
      ) : (
        <ul>
          {assets.map((n) => (
            <li key={n.key}>
              <button type="button" className="link-btn" onClick={() => onSelect(n.key)}>
                <HealthDot health={assetHealth(n.status)} /> {n.key}
              </button>
              {mappingOf(n.key) && (
                <span className="muted small" title="partition mapping">
                  {mappingOf(n.key)}
                </span>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

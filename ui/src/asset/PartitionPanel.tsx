import { useEffect, useState } from 'react';
import { Link } from 'react-router';
import { useQuery } from '../api/hooks';
import { PARTITION_QUERY } from '../api/queries';
import type { MaterializationEvent, PartitionDetail } from '../api/types';
import { HealthBadge } from '../components/StatusBadge';
import { ErrorState, Loading } from '../components/States';
import { TimeAbs, TimeAgo } from '../components/TimeText';
import { LogViewer } from '../runs/LogViewer';
import { shortId } from '../lib/format';
import { partitionHealth } from '../lib/status';

/** One partition: status and causes, data version, metadata, its events, and the log of its latest step. */
export function PartitionPanel({ assetKey, partitionKey, version }: { assetKey: string; partitionKey: string; version: number }) {
  const { data, error, loading, refetch } = useQuery<{ asset: { partition: PartitionDetail | null } | null }>(PARTITION_QUERY, { key: assetKey, partition: partitionKey });
  useEffect(() => {
    if (version > 0) refetch();
  }, [version, refetch]);
  if (loading && !data) return <Loading what={`Loading partition ${partitionKey || '(unpartitioned)'}`} />;
  if (error && !data) return <ErrorState message={error} onRetry={refetch} />;
  const p = data?.asset?.partition;
  if (!p) return <ErrorState title="No such partition" message={`${assetKey} has no partition ${partitionKey} (yet).`} />;
  return <PartitionDetails assetKey={assetKey} p={p} />;
}

function PartitionDetails({ assetKey, p }: { assetKey: string; p: PartitionDetail }) {
  const withLog = p.history.find((e) => e.stepId);
  const [showLog, setShowLog] = useState(false);
  return (
    <div className="partition-panel" data-testid="partition-panel" data-partition={p.key}>
      <div className="row gap">
        <h3 className="mono">{p.key || '(unpartitioned)'}</h3>
        <HealthBadge health={partitionHealth(p.status)} />
      </div>
      {p.causes.length > 0 && (
        <section>
          <h4>Why it is {p.status.toLowerCase()}</h4>
          <ul className="causes">
            {p.causes.map((c, i) => (
              <li key={i}>
                <strong>{c.kind}</strong>
                {c.asset && (
                  <>
                    {' '}
                    <Link to={`/asset/${c.asset}?partition=${encodeURIComponent(c.partition)}`} className="mono">
                      {c.asset} {c.partition}
                    </Link>
                  </>
                )}
              </li>
            ))}
          </ul>
        </section>
      )}
      <dl className="facts">
        <dt>Data version</dt>
        <dd className="mono">{p.dataVersion ?? '—'}</dd>
        <dt>Latest</dt>
        <dd>
          {p.latestMaterialization ? (
            <>
              {p.latestMaterialization.kind} <TimeAgo at={p.latestMaterialization.at} />
              {p.latestMaterialization.runId && (
                <>
                  {' '}
                  in run <Link to={`/runs/${p.latestMaterialization.runId}`}>{shortId(p.latestMaterialization.runId)}</Link>
                </>
              )}
            </>
          ) : (
            'never materialized'
          )}
        </dd>
      </dl>
      {p.metadata != null && (
        <section>
          <h4>Metadata</h4>
          <pre className="json">{JSON.stringify(p.metadata, null, 2)}</pre>
        </section>
      )}
      <section>
        <h4>Events</h4>
        <EventTable events={p.history} assetKey={assetKey} />
      </section>
      {withLog?.stepId && (
        <section>
          <div className="row gap">
            <h4>Log of the latest step</h4>
            <button type="button" className="btn btn-small" onClick={() => setShowLog((s) => !s)}>
              {showLog ? 'Hide log' : 'Show log'}
            </button>
            {withLog.runId && (
              <Link className="small" to={`/runs/${withLog.runId}?step=${withLog.stepId}`}>
                open in the run
              </Link>
            )}
          </div>
          {showLog && <LogViewer stepId={withLog.stepId} live={false} height={240} />}
        </section>
      )}
    </div>
  );
}

export function EventTable({ events, assetKey, onPartition }: { events: MaterializationEvent[]; assetKey: string; onPartition?: (key: string) => void }) {
  if (events.length === 0) return <p className="muted small">No events yet.</p>;
  return (
    <table className="table compact">
      <thead>
        <tr>
          <th>Seq</th>
          <th>Kind</th>
          {onPartition && <th>Partition</th>}
          <th>At</th>
          <th>Data version</th>
          <th>Code</th>
          <th>Run</th>
        </tr>
      </thead>
      <tbody>
        {events.map((e) => (
          <tr key={e.seq} className={e.error ? 'row-failed' : undefined}>
            <td className="mono">{e.seq}</td>
            <td>
              {e.kind}
              {e.error && <div className="inline-error small">{e.error}</div>}
            </td>
            {onPartition && (
              <td>
                <button type="button" className="link-btn mono" onClick={() => onPartition(e.partition)} title={`Show ${assetKey} ${e.partition}`}>
                  {e.partition || '(unpartitioned)'}
                </button>
              </td>
            )}
            <td>
              <TimeAbs at={e.at} />
            </td>
            <td className="mono ellipsis" title={e.dataVersion}>
              {e.dataVersion}
              {e.dataChanged && (
                <span className="changed" title="new data version">
                  {' '}
                  *
                </span>
              )}
            </td>
            <td className="mono">{e.codeVersion ?? ''}</td>
            <td>{e.runId ? <Link to={`/runs/${e.runId}${e.stepId ? `?step=${e.stepId}` : ''}`}>{shortId(e.runId)}</Link> : <span className="muted">outside</span>}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

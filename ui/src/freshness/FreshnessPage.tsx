import { useMemo } from 'react';
import { Link } from 'react-router';
import { useQuery } from '../api/hooks';
import { FRESHNESS_QUERY } from '../api/queries';
import type { FreshnessEvent, FreshnessRow } from '../api/types';
import { PageHeader } from '../components/PageHeader';
import { ToneBadge } from '../components/StatusBadge';
import { EmptyState, ErrorState, Loading } from '../components/States';
import { TimeAgo } from '../components/TimeText';
import { fmtDuration } from '../lib/format';
import { freshnessTone } from '../lib/status';

/**
 * The freshness board: every asset with a policy, worst first (the server's
 * order: FAIL, WARN, UNKNOWN, PASS, then the most late), with lag, last
 * materialization and recent status changes.
 */
export function FreshnessPage() {
  const q = useQuery<{ freshnessBoard: FreshnessRow[]; freshnessEvents: FreshnessEvent[] }>(FRESHNESS_QUERY, {}, { pollMs: 15_000 });
  const byAsset = useMemo(() => {
    const m = new Map<string, FreshnessEvent[]>();
    for (const e of q.data?.freshnessEvents ?? []) {
      const l = m.get(e.asset) ?? [];
      if (l.length < 3) l.push(e);
      m.set(e.asset, l);
    }
    return m;
  }, [q.data]);
  const totals = useMemo(() => {
    const t: Record<string, number> = { FAIL: 0, WARN: 0, UNKNOWN: 0, PASS: 0 };
    for (const r of q.data?.freshnessBoard ?? []) t[r.freshness.status] = (t[r.freshness.status] ?? 0) + 1;
    return t;
  }, [q.data]);

  return (
    <div className="page">
      <PageHeader
        title="Freshness"
        subtitle="Every asset with a freshness policy, worst first. Checked by the server every 30 seconds; changes go to the notifiers."
        actions={
          q.data && (
            <span className="row gap">
              {(['FAIL', 'WARN', 'UNKNOWN', 'PASS'] as const).map((s) => (
                <ToneBadge key={s} tone={freshnessTone(s)}>
                  {s} {totals[s]}
                </ToneBadge>
              ))}
            </span>
          )
        }
      />
      {q.error && !q.data ? (
        <ErrorState title="The freshness board could not be loaded" message={q.error} onRetry={q.refetch} />
      ) : !q.data ? (
        <Loading what="Loading the freshness board" />
      ) : q.data.freshnessBoard.length === 0 ? (
        <EmptyState title="No asset has a freshness policy">
          Add one in the definitions: <code>freshness: {'{max_lag: 26h, warn_lag: 24h}'}</code> or <code>freshness: {'{deadline: {cron: "0 9 * * *"}}'}</code>.
        </EmptyState>
      ) : (
        <>
          <div className="card flush">
            <table className="table" data-testid="freshness-board">
              <thead>
                <tr>
                  <th>Asset</th>
                  <th>Status</th>
                  <th>Lag</th>
                  <th>Policy</th>
                  <th>Last materialized</th>
                  <th>Why</th>
                  <th>Recent changes</th>
                </tr>
              </thead>
              <tbody>
                {q.data.freshnessBoard.map((r) => (
                  <tr key={r.asset.key} data-asset={r.asset.key} data-freshness={r.freshness.status}>
                    <td>
                      <Link to={`/asset/${r.asset.key}`} className="mono">
                        {r.asset.key}
                      </Link>
                    </td>
                    <td>
                      <ToneBadge tone={freshnessTone(r.freshness.status)}>{r.freshness.status}</ToneBadge>
                    </td>
                    <td className="mono">{fmtDuration(r.freshness.lagSeconds)}</td>
                    <td className="small">{r.freshness.policy}</td>
                    <td>
                      <TimeAgo at={r.freshness.lastMaterializedAt} />
                    </td>
                    <td className="small reason">{r.freshness.reason}</td>
                    <td className="small">
                      <ChangeList events={byAsset.get(r.asset.key) ?? []} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <section className="card">
            <h2>Status changes</h2>
            {q.data.freshnessEvents.length === 0 ? (
              <p className="muted small">No change recorded yet: the checker records one when an asset's status changes.</p>
            ) : (
              <table className="table compact">
                <thead>
                  <tr>
                    <th>When</th>
                    <th>Asset</th>
                    <th>Change</th>
                    <th>Lag</th>
                    <th>Reason</th>
                  </tr>
                </thead>
                <tbody>
                  {q.data.freshnessEvents.map((e) => (
                    <tr key={e.id}>
                      <td>
                        <TimeAgo at={e.at} />
                      </td>
                      <td>
                        <Link to={`/asset/${e.asset}`} className="mono">
                          {e.asset}
                        </Link>
                      </td>
                      <td>
                        {e.previous && (
                          <>
                            <ToneBadge tone={freshnessTone(e.previous)}>{e.previous}</ToneBadge> →{' '}
                          </>
                        )}
                        <ToneBadge tone={freshnessTone(e.status)}>{e.status}</ToneBadge>
                      </td>
                      <td className="mono">{fmtDuration(e.lagSeconds)}</td>
                      <td className="small">{e.reason}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
        </>
      )}
    </div>
  );
}

function ChangeList({ events }: { events: FreshnessEvent[] }) {
  if (events.length === 0) return <span className="muted">—</span>;
  return (
    <ul className="plain-list">
      {events.map((e) => (
        <li key={e.id}>
          {e.previous ?? 'new'} → <strong>{e.status}</strong> <TimeAgo at={e.at} />
        </li>
      ))}
    </ul>
  );
}

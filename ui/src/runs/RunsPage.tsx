import { useEffect, useState, type FormEvent } from 'react';
import { Link, useSearchParams } from 'react-router';
import { gql, errorMessage } from '../api/client';
import { useQuery } from '../api/hooks';
import { RUNS_QUERY } from '../api/queries';
import type { RunStatus, RunSummary } from '../api/types';
import { PageHeader } from '../components/PageHeader';
import { HealthBadge } from '../components/StatusBadge';
import { EmptyState, ErrorState, InlineError, Loading } from '../components/States';
import { TimeAgo } from '../components/TimeText';
import { elapsedBetween, fmtElapsed, shortId } from '../lib/format';
import { runHealth } from '../lib/status';

interface RunPage {
  nodes: RunSummary[];
  endCursor: string | null;
  hasNextPage: boolean;
}

const statuses: RunStatus[] = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED'];

/** Runs, newest first, filtered by status and asset (?status=, ?asset=). */
export function RunsPage() {
  const [params, setParams] = useSearchParams();
  const status = (params.get('status') ?? '') as RunStatus | '';
  const asset = params.get('asset') ?? '';
  const [assetDraft, setAssetDraft] = useState(asset);
  useEffect(() => setAssetDraft(asset), [asset]);
  const vars = { status: status || null, asset: asset || null, after: null };
  const first = useQuery<{ runs: RunPage }>(RUNS_QUERY, vars, { pollMs: 5000 });
  const [more, setMore] = useState<RunPage[]>([]);
  const [moreError, setMoreError] = useState<string | undefined>();
  const [loadingMore, setLoadingMore] = useState(false);
  useEffect(() => setMore([]), [status, asset]);

  const setParam = (name: string, value: string) =>
    setParams((p) => {
      const n = new URLSearchParams(p);
      if (value) n.set(name, value);
      else n.delete(name);
      return n;
    });
  const applyAsset = (e: FormEvent) => {
    e.preventDefault();
    setParam('asset', assetDraft.trim());
  };

  const pages = first.data ? [first.data.runs, ...more] : [];
  const runs = pages.flatMap((p) => p.nodes);
  const seen = new Set<string>();
  const unique = runs.filter((r) => (seen.has(r.id) ? false : (seen.add(r.id), true)));
  const last = pages[pages.length - 1];
  const loadMore = async () => {
    if (!last?.endCursor) return;
    setLoadingMore(true);
    try {
      const res = await gql<{ runs: RunPage }>(RUNS_QUERY, { ...vars, after: last.endCursor });
      setMore((m) => [...m, res.runs]);
      setMoreError(undefined);
    } catch (e) {
      setMoreError(errorMessage(e));
    } finally {
      setLoadingMore(false);
    }
  };

  return (
    <div className="page">
      <PageHeader title="Runs" subtitle="Newest first; refreshed every few seconds." />
      <div className="toolbar">
        <label className="toolbar-item">
          <span className="muted">Status</span>
          <select value={status} onChange={(e) => setParam('status', e.target.value)} aria-label="Status">
            <option value="">Any status</option>
            {statuses.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <form className="toolbar-item" onSubmit={applyAsset}>
          <input value={assetDraft} onChange={(e) => setAssetDraft(e.target.value)} placeholder="Asset key" aria-label="Asset" spellCheck={false} />
          <button type="submit" className="btn">
            Filter
          </button>
          {asset && (
            <button type="button" className="btn btn-ghost" onClick={() => setParam('asset', '')}>
              Clear
            </button>
          )}
        </form>
      </div>
      {first.error && !first.data ? (
        <ErrorState title="Runs could not be loaded" message={first.error} onRetry={first.refetch} />
      ) : !first.data ? (
        <Loading what="Loading runs" />
      ) : unique.length === 0 ? (
        <EmptyState title={status || asset ? 'No run matches these filters' : 'No runs yet'}>
          {status || asset ? 'Change or clear the filters.' : 'Launch one with "Materialize stale" on the assets graph, a backfill, or a schedule.'}
        </EmptyState>
      ) : (
        <div className="card flush">
          <table className="table clickable" data-testid="runs-table">
            <thead>
              <tr>
                <th>Run</th>
                <th>Status</th>
                <th>Trigger</th>
                <th>Selection</th>
                <th>Window</th>
                <th>Steps</th>
                <th>Created</th>
                <th>Duration</th>
              </tr>
            </thead>
            <tbody>
              {unique.map((r) => (
                <RunRow key={r.id} run={r} />
              ))}
            </tbody>
          </table>
          <InlineError message={moreError ?? (first.error ? `refresh failed: ${first.error}` : undefined)} />
          {last?.hasNextPage && (
            <button type="button" className="btn btn-small load-more" disabled={loadingMore} onClick={() => void loadMore()}>
              {loadingMore ? 'Loading…' : 'Older runs'}
            </button>
          )}
        </div>
      )}
    </div>
  );
}

function RunRow({ run: r }: { run: RunSummary }) {
  const d = elapsedBetween(r.startedAt ?? r.createdAt, r.finishedAt);
  const c = r.counts;
  return (
    <tr data-run={r.id} data-status={r.status}>
      <td>
        <Link to={`/runs/${r.id}`} className="mono">
          {shortId(r.id)}
        </Link>
      </td>
      <td>
        <HealthBadge health={runHealth(r.status)} label={r.status} />
      </td>
      <td>{r.trigger}</td>
      <td>
        <code className="selection">{r.selection || '*'}</code>
      </td>
      <td className="mono small">{r.from || r.to ? `${r.from ?? '…'} → ${r.to ?? '…'}` : '—'}</td>
      <td className="small">
        {c.succeeded + c.skippedFresh}/{c.total}
        {c.failed > 0 && <span className="text-failed"> · {c.failed} failed</span>}
        {c.running > 0 && <span className="text-running"> · {c.running} running</span>}
      </td>
      <td>
        <TimeAgo at={r.createdAt} />
      </td>
      <td>{d != null ? fmtElapsed(d) : '—'}</td>
    </tr>
  );
}

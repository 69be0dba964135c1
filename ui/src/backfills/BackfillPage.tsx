import { Link } from 'react-router';
import { useMutation, useQuery } from '../api/hooks';
import { BACKFILL_QUERY, CANCEL_BACKFILL } from '../api/queries';
import type { Backfill } from '../api/types';
import { PageHeader } from '../components/PageHeader';
import { ToneBadge } from '../components/StatusBadge';
import { EmptyState, ErrorState, InlineError, Loading } from '../components/States';
import { TimeAbs } from '../components/TimeText';
import { elapsedBetween, fmtElapsed, shortId } from '../lib/format';
import { fmtCount, isBackfillFinished } from '../lib/status';
import { BackfillProgress } from './BackfillProgress';
import { backfillTone } from './backfillTone';

/** One backfill's progress, counted in partitions, with its runs and a cancel button. */
export function BackfillPage({ backfillId }: { backfillId: string }) {
  const q = useQuery<{ backfill: Backfill | null }>(BACKFILL_QUERY, { id: backfillId }, { pollMs: 1000 });
  const cancel = useMutation<{ cancelBackfill: { id: string } }>(CANCEL_BACKFILL);
  if (q.error && !q.data) return <ErrorState title="The backfill could not be loaded" message={q.error} onRetry={q.refetch} />;
  if (!q.data) return <Loading what="Loading the backfill" />;
  const b = q.data.backfill;
  if (!b) return <EmptyState title={`No backfill ${backfillId}`}><Link to="/backfills">All backfills</Link></EmptyState>;
  const finished = isBackfillFinished(b.status);
  const d = elapsedBetween(b.createdAt, b.finishedAt);
  return (
    <div className="page" data-backfill-status={b.status}>
      <PageHeader
        title={
          <span className="row gap">
            Backfill <span className="mono">{shortId(b.id)}</span>
            <ToneBadge tone={backfillTone(b.status)}>{b.status}</ToneBadge>
          </span>
        }
        subtitle={
          <span className="row gap wrap">
            <code className="selection">{b.selection || '*'}</code>
            <span className="mono">
              {b.from} → {b.to}
            </span>
            <span>mode {b.mode}</span>
            <span>{b.maxParallel} at once</span>
          </span>
        }
        actions={
          <>
            <InlineError message={cancel.error} />
            {!finished && (
              <button type="button" className="btn btn-danger" disabled={cancel.running} onClick={() => void cancel.run({ id: b.id }).then(() => q.refetch())}>
                {cancel.running ? 'Canceling…' : 'Cancel backfill'}
              </button>
            )}
          </>
        }
      />
      <section className="card">
        <BackfillProgress b={b} big />
        <div className="run-stats">
          <Count label="Targeted" n={b.targeted} />
          <Count label="Done" n={b.done} cls="stat-fresh" />
          <Count label="Failed" n={b.failed} cls="stat-failed" />
          <Count label="In flight" n={b.inFlight} cls="stat-running" />
          <Count label="Pending" n={b.pending} />
          <Count label="Canceled" n={b.canceled} />
          <div className="stat">
            <span className="muted small">Created</span>
            <TimeAbs at={b.createdAt} />
          </div>
          <div className="stat">
            <span className="muted small">{finished ? 'Took' : 'Running for'}</span>
            <strong>{d != null ? fmtElapsed(d) : '—'}</strong>
          </div>
        </div>
        {b.targeted === 0 && finished && <p className="muted">Nothing was missing or stale in this range: the backfill had nothing to do.</p>}
      </section>
      <section className="card">
        <h2>Runs</h2>
        {b.runIds.length === 0 ? (
          <p className="muted small">No run yet.</p>
        ) : (
          <ul className="plain-list">
            {b.runIds.map((id) => (
              <li key={id}>
                <Link to={`/runs/${id}`} className="mono">
                  run {shortId(id)}
                </Link>
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}

function Count({ label, n, cls }: { label: string; n: number; cls?: string }) {
  return (
    <div className={`stat${cls && n > 0 ? ` ${cls}` : ''}`} data-count={label}>
      <span className="muted small">{label}</span>
      <strong>{fmtCount(n)}</strong>
    </div>
  );
}

import { useState } from 'react';
import { Link } from 'react-router';
import { useQuery } from '../api/hooks';
import { BACKFILLS_QUERY } from '../api/queries';
import type { Backfill } from '../api/types';
import { PageHeader } from '../components/PageHeader';
import { ToneBadge } from '../components/StatusBadge';
import { EmptyState, ErrorState, Loading } from '../components/States';
import { TimeAgo } from '../components/TimeText';
import { shortId } from '../lib/format';
import { BackfillDialog } from './BackfillDialog';
import { BackfillProgress } from './BackfillProgress';
import { backfillTone } from './backfillTone';

/** Backfills, newest first, with their progress; and the dialog to start one. */
export function BackfillsPage() {
  const [open, setOpen] = useState(false);
  const q = useQuery<{ backfills: Backfill[] }>(BACKFILLS_QUERY, {}, { pollMs: 3000 });
  return (
    <div className="page">
      <PageHeader
        title="Backfills"
        subtitle="Materialize a selection over a range of days, with a cap on parallelism."
        actions={
          <button type="button" className="btn btn-primary" onClick={() => setOpen(true)}>
            New backfill
          </button>
        }
      />
      {q.error && !q.data ? (
        <ErrorState title="Backfills could not be loaded" message={q.error} onRetry={q.refetch} />
      ) : !q.data ? (
        <Loading what="Loading backfills" />
      ) : q.data.backfills.length === 0 ? (
        <EmptyState title="No backfills yet">Start one with "New backfill": a selection, a range of days, a mode and a parallelism.</EmptyState>
      ) : (
        <div className="card flush">
          <table className="table" data-testid="backfills-table">
            <thead>
              <tr>
                <th>Backfill</th>
                <th>Status</th>
                <th>Selection</th>
                <th>Days</th>
                <th>Mode</th>
                <th className="num">Parallel</th>
                <th style={{ width: '24%' }}>Progress</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {q.data.backfills.map((b) => (
                <tr key={b.id} data-backfill={b.id}>
                  <td>
                    <Link to={`/backfills/${b.id}`} className="mono">
                      {shortId(b.id)}
                    </Link>
                  </td>
                  <td>
                    <ToneBadge tone={backfillTone(b.status)}>{b.status}</ToneBadge>
                  </td>
                  <td>
                    <code className="selection">{b.selection || '*'}</code>
                  </td>
                  <td className="mono small">
                    {b.from} → {b.to}
                  </td>
                  <td>{b.mode}</td>
                  <td className="num">{b.maxParallel}</td>
                  <td>
                    <BackfillProgress b={b} />
                  </td>
                  <td>
                    <TimeAgo at={b.createdAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {open && <BackfillDialog selection={undefined} onClose={() => setOpen(false)} />}
    </div>
  );
}

import { useState } from 'react';
import { Link } from 'react-router';
import { useQuery } from '../api/hooks';
import { SCHEDULES_QUERY } from '../api/queries';
import type { Schedule, ScheduleTick } from '../api/types';
import { PageHeader } from '../components/PageHeader';
import { ToneBadge } from '../components/StatusBadge';
import { EmptyState, ErrorState, Loading } from '../components/States';
import { TimeAbs, TimeAgo } from '../components/TimeText';
import { shortId } from '../lib/format';
import type { Tone } from '../lib/status';

function tickTone(status: string): Tone {
  switch (status) {
    case 'LAUNCHED':
      return 'good';
    case 'FAILED':
      return 'bad';
    case 'SKIPPED':
      return 'neutral';
    default:
      return 'info';
  }
}

/** The schedules: cron, selection, the last tick and what it did, the next tick. */
export function SchedulesPage() {
  const q = useQuery<{ schedules: Schedule[] }>(SCHEDULES_QUERY, {}, { pollMs: 30_000 });
  return (
    <div className="page">
      <PageHeader title="Schedules" subtitle="Each tick launches “materialize stale” of its selection, once, whatever the number of servers." />
      {q.error && !q.data ? (
        <ErrorState title="Schedules could not be loaded" message={q.error} onRetry={q.refetch} />
      ) : !q.data ? (
        <Loading what="Loading schedules" />
      ) : q.data.schedules.length === 0 ? (
        <EmptyState title="No schedules">
          Add one in the definitions: <code>schedules: [{'{name: nightly, cron: "0 2 * * *", timezone: UTC, select: "*"}'}]</code>.
        </EmptyState>
      ) : (
        <div className="card flush">
          <table className="table" data-testid="schedules-table">
            <thead>
              <tr>
                <th>Schedule</th>
                <th>Cron</th>
                <th>Selection</th>
                <th>Last tick</th>
                <th>Next tick</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {q.data.schedules.map((s) => (
                <ScheduleRow key={s.name} s={s} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function ScheduleRow({ s }: { s: Schedule }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <tr data-schedule={s.name}>
        <td>
          <strong>{s.name}</strong>
        </td>
        <td className="mono">
          {s.cron} <span className="muted">({s.timezone})</span>
        </td>
        <td>
          <code className="selection">{s.selection}</code>
        </td>
        <td>{s.lastTick ? <TickSummary t={s.lastTick} /> : <span className="muted">never ticked</span>}</td>
        <td data-testid="next-tick">
          {s.nextTick ? (
            <>
              <TimeAbs at={s.nextTick} /> <span className="muted small">(<TimeAgo at={s.nextTick} />)</span>
            </>
          ) : (
            <span className="muted">none within five years</span>
          )}
        </td>
        <td>
          {s.ticks.length > 0 && (
            <button type="button" className="btn btn-small" onClick={() => setOpen((o) => !o)} aria-expanded={open}>
              {open ? 'Hide ticks' : `${s.ticks.length} ticks`}
            </button>
          )}
        </td>
      </tr>
      {open && (
        <tr className="sub-row">
          <td colSpan={6}>
            <ul className="plain-list">
              {s.ticks.map((t) => (
                <li key={t.at}>
                  <TickSummary t={t} />
                </li>
              ))}
            </ul>
          </td>
        </tr>
      )}
    </>
  );
}

function TickSummary({ t }: { t: ScheduleTick }) {
  return (
    <span className="row gap wrap">
      <ToneBadge tone={tickTone(t.status)}>{t.status}</ToneBadge>
      <TimeAbs at={t.at} />
      {t.runId && (
        <Link to={`/runs/${t.runId}`} className="mono">
          run {shortId(t.runId)}
        </Link>
      )}
      {t.reason && <span className="muted small">{t.reason}</span>}
    </span>
  );
}

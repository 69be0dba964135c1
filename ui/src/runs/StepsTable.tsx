import { useMemo, useState } from 'react';
import { Link } from 'react-router';
import type { Step, StepStatus } from '../api/types';
import { HealthBadge } from '../components/StatusBadge';
import { elapsedBetween, fmtElapsed } from '../lib/format';
import { describeKeys } from '../lib/ranges';
import { fmtCount, stepHealth } from '../lib/status';

const filters: { label: string; test: (s: StepStatus) => boolean }[] = [
  { label: 'All', test: () => true },
  { label: 'Failed', test: (s) => s === 'FAILED' || s === 'UPSTREAM_FAILED' },
  { label: 'Running', test: (s) => s === 'RUNNING' },
  { label: 'Waiting', test: (s) => s === 'PENDING' || s === 'READY' },
  { label: 'Done', test: (s) => s === 'SUCCEEDED' || s === 'SKIPPED_FRESH' },
];

const PAGE = 200;

/** The run's steps, filterable by status; a click shows the step's log. */
export function StepsTable({ steps, now, selected, onSelect }: { steps: Step[]; now: number; selected: string | undefined; onSelect: (id: string) => void }) {
  const [filter, setFilter] = useState(0);
  const [limit, setLimit] = useState(PAGE);
  const shown = useMemo(() => steps.filter((s) => filters[filter]!.test(s.status)), [steps, filter]);
  return (
    <div className="steps-table">
      <div className="tabs" role="tablist" aria-label="Step filter">
        {filters.map((f, i) => (
          <button type="button" role="tab" key={f.label} aria-selected={filter === i} className={filter === i ? 'active' : ''} onClick={() => setFilter(i)}>
            {f.label} <span className="muted">{steps.filter((s) => f.test(s.status)).length}</span>
          </button>
        ))}
      </div>
      <div className="table-scroll tall">
        <table className="table compact clickable">
          <thead>
            <tr>
              <th>Asset</th>
              <th>Partitions</th>
              <th>Status</th>
              <th className="num">Attempt</th>
              <th>Duration</th>
              <th>Error</th>
            </tr>
          </thead>
          <tbody>
            {shown.slice(0, limit).map((s) => {
              const d = elapsedBetween(s.startedAt, s.finishedAt, now);
              return (
                <tr key={s.id} className={s.id === selected ? 'selected' : undefined} onClick={() => onSelect(s.id)} data-step={s.id} data-status={s.status}>
                  <td>
                    <Link to={`/asset/${s.asset}`} onClick={(e) => e.stopPropagation()}>
                      {s.asset}
                    </Link>
                  </td>
                  <td className="mono">{describeKeys(s.partitions)}</td>
                  <td>
                    <HealthBadge health={stepHealth(s.status)} label={s.status} />
                  </td>
                  <td className="num">
                    {s.attempt}/{s.maxAttempts}
                  </td>
                  <td>{d != null ? fmtElapsed(d) : '—'}</td>
                  <td className="ellipsis error-cell" title={s.error ?? ''}>
                    {s.error ?? ''}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {shown.length > limit && (
        <button type="button" className="btn btn-small" onClick={() => setLimit((l) => l + PAGE * 5)}>
          Show more ({fmtCount(shown.length - limit)} left)
        </button>
      )}
      {shown.length === 0 && <p className="muted small">No step in this state.</p>}
    </div>
  );
}

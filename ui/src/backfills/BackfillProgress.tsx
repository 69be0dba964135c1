import type { Backfill } from '../api/types';

/** Done, failed and in-flight partitions of a backfill as one bar. */
export function BackfillProgress({ b, big }: { b: Backfill; big?: boolean }) {
  const t = b.targeted || 0;
  const pct = (n: number) => (t > 0 ? (n / t) * 100 : 0);
  const done = t > 0 ? Math.floor((b.done / t) * 100) : b.status === 'SUCCEEDED' ? 100 : 0;
  return (
    <div className={`bf-progress${big ? ' big' : ''}`}>
      <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={done} aria-label="Partitions done">
        <div className="progress-fill health-fresh" style={{ width: `${pct(b.done)}%` }} />
        <div className="progress-fill health-failed" style={{ width: `${pct(b.failed)}%` }} />
        <div className="progress-fill health-running" style={{ width: `${pct(b.inFlight)}%` }} />
      </div>
      <span className="bf-pct" data-testid="backfill-percent">
        {done}%
      </span>
    </div>
  );
}

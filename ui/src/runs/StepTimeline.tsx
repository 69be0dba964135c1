import { memo, useMemo } from 'react';
import type { Step } from '../api/types';
import { elapsedBetween, fmtElapsed } from '../lib/format';
import { stepHealth } from '../lib/status';
import { buildTimeline } from '../lib/timeline';

const LANE = 9;

/** The run's steps over time: a row per asset, a bar per step (asset × partitions). */
export const StepTimeline = memo(function StepTimeline({
  steps,
  now,
  runStart,
  runEnd,
  selected,
  onSelect,
}: {
  steps: Step[];
  now: number;
  runStart: string | null;
  runEnd: string | null;
  selected: string | undefined;
  onSelect: (id: string) => void;
}) {
  const t = useMemo(() => buildTimeline(steps, now, runStart, runEnd), [steps, now, runStart, runEnd]);
  if (t.rows.length === 0) return <p className="muted">No steps.</p>;
  const span = t.end - t.start;
  return (
    <div className="timeline" data-testid="step-timeline">
      <div className="timeline-axis">
        <span className="tl-label" />
        <div className="tl-track">
          {[0, 0.25, 0.5, 0.75, 1].map((f) => (
            <span key={f} className="tl-tick" style={{ left: `${f * 100}%` }}>
              {f === 0 ? new Date(t.start).toISOString().slice(11, 19) : `+${fmtElapsed(span * f)}`}
            </span>
          ))}
        </div>
      </div>
      {t.rows.map((row) => (
        <div key={row.asset} className="timeline-row">
          <span className="tl-label mono ellipsis" title={row.asset}>
            {row.asset}
            <span className="muted small">
              {' '}
              {row.bars.length}
              {row.waiting ? ` +${row.waiting} waiting` : ''}
            </span>
          </span>
          <div className="tl-track" style={{ height: Math.max(row.lanes * LANE + 4, 14) }}>
            {row.bars.map((b) => {
              const s = b.step;
              const h = stepHealth(s.status);
              const dur = elapsedBetween(s.startedAt, s.finishedAt, now);
              return (
                <button
                  type="button"
                  key={s.id}
                  className={`tl-bar health-${h}${s.id === selected ? ' selected' : ''}`}
                  style={{ left: `${b.left * 100}%`, width: `max(${b.width * 100}%, 3px)`, top: 2 + b.lane * LANE }}
                  title={`${s.asset} ${s.partitions.join(', ')}: ${s.status}, attempt ${s.attempt}/${s.maxAttempts}${dur != null ? `, ${fmtElapsed(dur)}` : ''}`}
                  onClick={() => onSelect(s.id)}
                  aria-label={`${s.asset} ${s.partitions[0] ?? ''} ${s.status}`}
                />
              );
            })}
          </div>
        </div>
      ))}
    </div>
  );
});

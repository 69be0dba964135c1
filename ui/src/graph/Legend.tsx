import { HEALTH_LABEL, type Health } from '../lib/status';

const order: Health[] = ['fresh', 'stale', 'missing', 'failed', 'running'];

export function Legend({ counts }: { counts?: Record<Health, number> }) {
  return (
    <div className="legend" aria-label="Status colours">
      {order.map((h) => (
        <span key={h} className="legend-item">
          <span className={`dot health-${h}`} />
          {HEALTH_LABEL[h]}
          {counts && <span className="muted">{counts[h]}</span>}
        </span>
      ))}
    </div>
  );
}

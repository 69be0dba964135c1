import type { Freshness } from '../api/types';
import { ToneBadge } from '../components/StatusBadge';
import { TimeAgo } from '../components/TimeText';
import { fmtDuration } from '../lib/format';
import { freshnessTone } from '../lib/status';

/** An asset's freshness: status, lag, policy, last materialization and the reason. */
export function FreshnessSummary({ freshness: f }: { freshness: Freshness }) {
  return (
    <section className="freshness-summary" data-testid="freshness-summary">
      <h3>Freshness</h3>
      <div className="row gap">
        <ToneBadge tone={freshnessTone(f.status)}>{f.status}</ToneBadge>
        <span>
          lag <strong>{fmtDuration(f.lagSeconds)}</strong>
        </span>
        <span className="muted">policy {f.policy}</span>
      </div>
      <p className="small">
        Last materialized <TimeAgo at={f.lastMaterializedAt} />
      </p>
      <p className="small muted">{f.reason}</p>
    </section>
  );
}

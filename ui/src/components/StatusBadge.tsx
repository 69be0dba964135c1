import type { ReactNode } from 'react';
import { HEALTH_LABEL, type Health, type Tone } from '../lib/status';

/** A health state as a coloured pill: the same colours everywhere. */
export function HealthBadge({ health, label }: { health: Health; label?: string }) {
  return (
    <span className={`badge health-${health}`} data-status={health}>
      <span className="dot" />
      {label ?? HEALTH_LABEL[health]}
    </span>
  );
}

/** A pill for other statuses (freshness, ticks, backfills), by tone. */
export function ToneBadge({ tone, children, title }: { tone: Tone; children: ReactNode; title?: string }) {
  return (
    <span className={`badge tone-${tone}`} title={title}>
      {children}
    </span>
  );
}

export function HealthDot({ health, title }: { health: Health; title?: string }) {
  return <span className={`dot health-${health}`} title={title ?? HEALTH_LABEL[health]} data-status={health} />;
}

import { fmtRelative, fmtTime } from '../lib/format';

/** An instant as "5 minutes ago", with the exact UTC time on hover. */
export function TimeAgo({ at }: { at: string | null | undefined }) {
  if (!at) return <span className="muted">—</span>;
  return (
    <time dateTime={at} title={fmtTime(at)}>
      {fmtRelative(at)}
    </time>
  );
}

/** An instant in UTC, with how long ago on hover. */
export function TimeAbs({ at }: { at: string | null | undefined }) {
  if (!at) return <span className="muted">—</span>;
  return (
    <time dateTime={at} title={fmtRelative(at)}>
      {fmtTime(at)}
    </time>
  );
}

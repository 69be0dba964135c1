// Times, durations and lags as people read them.

/** "45s", "3m 20s", "26h 5m", "3d 4h". */
export function fmtDuration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m ${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d}d ${h % 24}h` : `${d}d`;
}

/** A short duration with sub-second precision: "730ms", "1.4s", "2m 3s". */
export function fmtElapsed(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  return fmtDuration(ms / 1000);
}

export function elapsedBetween(start: string | null, end: string | null, now = Date.now()): number | null {
  if (!start) return null;
  const e = end ? Date.parse(end) : now;
  return e - Date.parse(start);
}

/** "2026-11-24 17:49:16 UTC": the API's instants are UTC, and so is the UI. */
export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)} UTC`;
}

/** "5 minutes ago", "in 3 hours". */
export function fmtRelative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const diff = (t - now) / 1000;
  const a = Math.abs(diff);
  let text: string;
  if (a < 45) text = 'a few seconds';
  else if (a < 90 * 60) text = `${Math.round(a / 60)} minute${Math.round(a / 60) === 1 ? '' : 's'}`;
  else if (a < 36 * 3600) text = `${Math.round(a / 3600)} hours`;
  else text = `${Math.round(a / 86400)} days`;
  return diff < 0 ? `${text} ago` : `in ${text}`;
}

export function shortId(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}

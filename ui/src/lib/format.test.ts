import { describe, expect, it } from 'vitest';
import { fmtDuration, fmtElapsed, fmtRelative, fmtTime } from './format';

describe('format', () => {
  it('says durations and lags briefly', () => {
    expect(fmtDuration(null)).toBe('—');
    expect(fmtDuration(42)).toBe('42s');
    expect(fmtDuration(200)).toBe('3m 20s');
    expect(fmtDuration(3600 * 26 + 300)).toBe('26h 5m');
    expect(fmtDuration(3600 * 76)).toBe('3d 4h');
    expect(fmtElapsed(730)).toBe('730ms');
    expect(fmtElapsed(1440)).toBe('1.4s');
  });
  it('shows instants in UTC and relative to now', () => {
    expect(fmtTime('2026-11-24T17:49:16.123456Z')).toBe('2026-11-24 17:49:16 UTC');
    const now = Date.parse('2026-11-24T18:00:00Z');
    expect(fmtRelative('2026-11-24T17:00:00Z', now)).toBe('60 minutes ago');
    expect(fmtRelative('2026-11-25T02:00:00Z', now)).toBe('in 8 hours');
    expect(fmtRelative('2026-11-20T18:00:00Z', now)).toBe('4 days ago');
  });
});

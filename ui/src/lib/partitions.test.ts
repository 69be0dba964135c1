import { describe, expect, it } from 'vitest';
import { daysToIndexRange, hourlyInstant, hourlyKey, indexOfKey, keyAt, offsetOfDate, zonedMidnight } from './partitions';

describe('keyAt', () => {
  it('steps daily, weekly and monthly keys across month and year ends', () => {
    expect(keyAt({ granularity: 'daily', timezone: 'UTC' }, '2026-01-01', 0)).toBe('2026-01-01');
    expect(keyAt({ granularity: 'daily', timezone: 'UTC' }, '2025-12-30', 3)).toBe('2026-01-02');
    expect(keyAt({ granularity: 'daily', timezone: 'UTC' }, '2024-02-28', 1)).toBe('2024-02-29');
    expect(keyAt({ granularity: 'weekly', timezone: 'UTC' }, '2026-01-05', 2)).toBe('2026-01-19');
    expect(keyAt({ granularity: 'monthly', timezone: 'UTC' }, '2025-11', 3)).toBe('2026-02');
    expect(keyAt({ granularity: 'monthly', timezone: 'UTC' }, '2026-02', -2)).toBe('2025-12');
  });
  it('steps hourly keys in UTC without an offset', () => {
    expect(keyAt({ granularity: 'hourly', timezone: 'UTC' }, '2026-01-01T22:00', 3)).toBe('2026-01-02T01:00');
    // 100,000 hours: the size of the benchmark's strip.
    expect(keyAt({ granularity: 'hourly', timezone: 'UTC' }, '2015-06-18T00:00', 99_999)).toBe('2026-11-13T15:00');
  });
  it('gives the repeated hour of a DST end two keys, with their offsets', () => {
    const berlin = { granularity: 'hourly', timezone: 'Europe/Berlin' } as const;
    expect(keyAt(berlin, '2026-10-25T01:00+02:00', 1)).toBe('2026-10-25T02:00+02:00');
    expect(keyAt(berlin, '2026-10-25T01:00+02:00', 2)).toBe('2026-10-25T02:00+01:00');
    expect(keyAt(berlin, '2026-10-25T01:00+02:00', 3)).toBe('2026-10-25T03:00+01:00');
    // And skips the missing hour when clocks go forward.
    expect(keyAt(berlin, '2026-03-29T01:00+01:00', 1)).toBe('2026-03-29T03:00+02:00');
  });
});

describe('offsetOfDate', () => {
  it('turns a date into a partition offset', () => {
    expect(offsetOfDate({ granularity: 'daily', timezone: 'UTC' }, '2026-01-01', '2026-01-08')).toBe(7);
    expect(offsetOfDate({ granularity: 'weekly', timezone: 'UTC' }, '2026-01-05', '2026-01-18')).toBe(1);
    expect(offsetOfDate({ granularity: 'weekly', timezone: 'UTC' }, '2026-01-05', '2026-01-04')).toBe(-1);
    expect(offsetOfDate({ granularity: 'monthly', timezone: 'UTC' }, '2025-11', '2026-02-15')).toBe(3);
    expect(offsetOfDate({ granularity: 'hourly', timezone: 'UTC' }, '2026-01-01T00:00', '2026-01-03')).toBe(48);
    // A DST day in Berlin has 23 hours.
    const berlin = { granularity: 'hourly', timezone: 'Europe/Berlin' } as const;
    expect(offsetOfDate(berlin, '2026-03-29T00:00+01:00', '2026-03-30')).toBe(23);
  });
  it('round-trips with keyAt', () => {
    const space = { granularity: 'hourly', timezone: 'America/New_York' } as const;
    const base = '2026-01-01T00:00-05:00';
    const n = offsetOfDate(space, base, '2026-07-04');
    expect(keyAt(space, base, n)).toBe('2026-07-04T00:00-04:00');
  });
});

describe('hourly keys', () => {
  it('parse and format consistently', () => {
    expect(hourlyKey(hourlyInstant('2026-10-25T02:00+01:00'), 'Europe/Berlin')).toBe('2026-10-25T02:00+01:00');
    expect(hourlyInstant('2026-10-25T02:00+01:00') - hourlyInstant('2026-10-25T02:00+02:00')).toBe(3_600_000);
    expect(new Date(zonedMidnight('2026-07-01', 'Europe/Berlin')).toISOString()).toBe('2026-06-30T22:00:00.000Z');
  });
});

describe('indexOfKey and daysToIndexRange', () => {
  it('count partitions from the first key', () => {
    expect(indexOfKey({ granularity: 'daily', timezone: 'UTC' }, '2026-01-01', '2026-02-01')).toBe(31);
    expect(indexOfKey({ granularity: 'weekly', timezone: 'UTC' }, '2026-01-05', '2026-01-19')).toBe(2);
    expect(indexOfKey({ granularity: 'monthly', timezone: 'UTC' }, '2025-12', '2026-03')).toBe(3);
    expect(indexOfKey({ granularity: 'hourly', timezone: 'Europe/Berlin' }, '2026-10-25T00:00+02:00', '2026-10-25T02:00+01:00')).toBe(3);
  });
  it('turn a range of days into the partitions starting in it', () => {
    const daily = { granularity: 'daily', timezone: 'UTC' } as const;
    expect(daysToIndexRange(daily, '2026-01-01', '2026-01-01', '2026-01-07')).toEqual({ from: 0, to: 7 });
    const weekly = { granularity: 'weekly', timezone: 'UTC' } as const;
    // Weeks starting Monday 2026-01-12 and 2026-01-19 start within 01-10 … 01-20.
    expect(daysToIndexRange(weekly, '2026-01-05', '2026-01-10', '2026-01-20')).toEqual({ from: 1, to: 3 });
    const monthly = { granularity: 'monthly', timezone: 'UTC' } as const;
    expect(daysToIndexRange(monthly, '2026-01', '2026-01-15', '2026-03-01')).toEqual({ from: 1, to: 3 });
    const hourly = { granularity: 'hourly', timezone: 'UTC' } as const;
    expect(daysToIndexRange(hourly, '2026-01-01T00:00', '2026-01-02', '2026-01-02')).toEqual({ from: 24, to: 48 });
  });
});

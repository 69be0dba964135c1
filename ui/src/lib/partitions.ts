// Partition keys by index arithmetic, as the server does it (assets/partitions.go):
// a key is its window's start in the asset's timezone, 2026-04-08 (daily, and the
// Monday for weekly), 2026-04 (monthly), 2026-04-08T13:00 (hourly in UTC) or
// 2026-10-25T02:00+02:00 (hourly elsewhere). Hourly windows are consecutive hours
// of absolute time, so DST days have 23 or 25 of them.
import type { Granularity } from '../api/types';

export interface KeySpace {
  granularity: Granularity;
  timezone: string;
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

function isUTC(tz: string): boolean {
  return tz === '' || tz === 'UTC' || tz === 'Etc/UTC';
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** Days since 1970-01-01 of a YYYY-MM-DD date (the first 10 characters of s). */
export function dayNumber(s: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(s);
  if (!m) throw new Error(`not a date: ${JSON.stringify(s)}`);
  return Math.floor(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / DAY_MS);
}

export function dayString(day: number): string {
  const d = new Date(day * DAY_MS);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

function monthNumber(s: string): number {
  const m = /^(\d{4})-(\d{2})/.exec(s);
  if (!m) throw new Error(`not a month: ${JSON.stringify(s)}`);
  return Number(m[1]) * 12 + Number(m[2]) - 1;
}

function monthString(n: number): string {
  return `${Math.floor(n / 12)}-${pad((n % 12) + 1)}`;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(tz, f);
  }
  return f;
}

/** The wall-clock fields of an instant in a timezone. */
function wallClock(ms: number, tz: string): { y: number; mo: number; d: number; h: number; mi: number; s: number } {
  const parts: Record<string, number> = {};
  for (const p of formatter(tz).formatToParts(new Date(ms))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return { y: parts.year ?? 0, mo: parts.month ?? 1, d: parts.day ?? 1, h: (parts.hour ?? 0) % 24, mi: parts.minute ?? 0, s: parts.second ?? 0 };
}

/** The UTC offset of a timezone at an instant, in minutes (east positive). */
export function offsetMinutes(ms: number, tz: string): number {
  if (isUTC(tz)) return 0;
  const w = wallClock(ms, tz);
  const asUTC = Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s);
  return Math.round((asUTC - Math.floor(ms / 1000) * 1000) / 60_000);
}

/** The instant an hourly key names. */
export function hourlyInstant(key: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?:([+-])(\d{2}):(\d{2})|Z)?$/.exec(key);
  if (!m) throw new Error(`not an hourly key: ${JSON.stringify(key)}`);
  const local = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]));
  if (!m[6]) return local;
  const off = (Number(m[7]) * 60 + Number(m[8])) * (m[6] === '-' ? -1 : 1);
  return local - off * 60_000;
}

/** The hourly key of an instant in a timezone. */
export function hourlyKey(ms: number, tz: string): string {
  if (isUTC(tz)) {
    const d = new Date(ms);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  }
  const w = wallClock(ms, tz);
  const off = offsetMinutes(ms, tz);
  const sign = off < 0 ? '-' : '+';
  const a = Math.abs(off);
  return `${w.y}-${pad(w.mo)}-${pad(w.d)}T${pad(w.h)}:${pad(w.mi)}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/** The instant of 00:00 of a day in a timezone (the later one if that hour is skipped). */
export function zonedMidnight(date: string, tz: string): number {
  const guess = dayNumber(date) * DAY_MS;
  if (isUTC(tz)) return guess;
  let ms = guess - offsetMinutes(guess, tz) * 60_000;
  ms = guess - offsetMinutes(ms, tz) * 60_000;
  return ms;
}

/** The key offset partitions after base (negative: before). */
export function keyAt(space: KeySpace, base: string, offset: number): string {
  switch (space.granularity) {
    case 'daily':
      return dayString(dayNumber(base) + offset);
    case 'weekly':
      return dayString(dayNumber(base) + 7 * offset);
    case 'monthly':
      return monthString(monthNumber(base) + offset);
    case 'hourly':
      return hourlyKey(hourlyInstant(base) + offset * HOUR_MS, space.timezone);
  }
}

/**
 * How many partitions lie between the partition base and the one whose window
 * contains 00:00 of date in the asset's timezone (negative before base). Used to
 * turn a date range into partition indices.
 */
export function offsetOfDate(space: KeySpace, base: string, date: string): number {
  switch (space.granularity) {
    case 'daily':
      return dayNumber(date) - dayNumber(base);
    case 'weekly':
      return Math.floor((dayNumber(date) - dayNumber(base)) / 7);
    case 'monthly':
      return monthNumber(date) - monthNumber(base);
    case 'hourly':
      return Math.floor((zonedMidnight(date, space.timezone) - hourlyInstant(base)) / HOUR_MS);
  }
}

/** The calendar day (YYYY-MM-DD) a key's window starts on. */
export function keyDay(key: string): string {
  return key.length >= 10 ? key.slice(0, 10) : `${key.slice(0, 7)}-01`;
}

/** The index of a key, counted from the first key (index 0). */
export function indexOfKey(space: KeySpace, first: string, key: string): number {
  switch (space.granularity) {
    case 'daily':
      return dayNumber(key) - dayNumber(first);
    case 'weekly':
      return Math.floor((dayNumber(key) - dayNumber(first)) / 7);
    case 'monthly':
      return monthNumber(key) - monthNumber(first);
    case 'hourly':
      return Math.round((hourlyInstant(key) - hourlyInstant(first)) / HOUR_MS);
  }
}

/**
 * The partitions whose window starts in the days from … to (inclusive), as an
 * index range [from, to) counted from the first key; it may reach outside the
 * partitions that exist (clamp it).
 */
export function daysToIndexRange(space: KeySpace, first: string, fromDay: string, toDay: string): { from: number; to: number } {
  const next = dayString(dayNumber(toDay) + 1);
  switch (space.granularity) {
    case 'daily':
      return { from: dayNumber(fromDay) - dayNumber(first), to: dayNumber(next) - dayNumber(first) };
    case 'weekly': {
      const f = dayNumber(first);
      return { from: Math.ceil((dayNumber(fromDay) - f) / 7), to: Math.ceil((dayNumber(next) - f) / 7) };
    }
    case 'monthly': {
      const f = monthNumber(first);
      const startIdx = (day: string) => monthNumber(day) - f + (day.slice(8, 10) === '01' ? 0 : 1);
      return { from: startIdx(fromDay), to: startIdx(next) };
    }
    case 'hourly': {
      const f = hourlyInstant(first);
      return {
        from: Math.ceil((zonedMidnight(fromDay, space.timezone) - f) / HOUR_MS),
        to: Math.ceil((zonedMidnight(next, space.timezone) - f) / HOUR_MS),
      };
    }
  }
}

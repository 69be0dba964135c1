import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { gql, errorMessage } from '../api/client';
import { STEP_LOGS } from '../api/queries';
import type { LogLine, LogPage } from '../api/types';
import { InlineError } from '../components/States';
import { fmtCount } from '../lib/status';

const LINE_HEIGHT = 18;
const PAGE = 1000;
/** Pages read in one go before the viewer lets the page breathe. */
const PAGES_PER_READ = 20;

interface LogState {
  lines: LogLine[];
  next: number;
  droppedLines: number;
  droppedBytes: number;
}

/**
 * A step's log: read page by page after the last line seen, polled while the
 * step runs, and drawn as a virtual list (only the lines on screen are in the
 * page), so logs of hundreds of thousands of lines stay smooth. It follows the
 * tail until scrolled up. Lines carry their attempt: retries read as separate
 * attempts, filterable.
 */
export function LogViewer({ stepId, live, height = 360 }: { stepId: string; live: boolean; height?: number }) {
  const [log, setLog] = useState<LogState>({ lines: [], next: 0, droppedLines: 0, droppedBytes: 0 });
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [attempt, setAttempt] = useState<number | null>(null);
  const [follow, setFollow] = useState(true);
  const [scrollTop, setScrollTop] = useState(0);
  const box = useRef<HTMLDivElement>(null);
  const cursor = useRef(0);
  const reading = useRef(false);

  const read = useCallback(async () => {
    if (reading.current) return;
    reading.current = true;
    try {
      for (let i = 0; i < PAGES_PER_READ; i++) {
        const res = await gql<{ stepLogs: LogPage }>(STEP_LOGS, { stepId, after: cursor.current, first: PAGE });
        const page = res.stepLogs;
        cursor.current = page.next;
        setLog((l) => ({
          lines: page.lines.length ? l.lines.concat(page.lines) : l.lines,
          next: page.next,
          droppedLines: page.droppedLines,
          droppedBytes: page.droppedBytes,
        }));
        setError(undefined);
        if (page.lines.length < PAGE) break;
      }
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      reading.current = false;
      setLoaded(true);
    }
  }, [stepId]);

  useEffect(() => {
    void read();
  }, [read]);
  useEffect(() => {
    if (!live) {
      void read(); // the last lines, once the step has ended
      return;
    }
    const id = setInterval(() => void read(), 1000);
    return () => clearInterval(id);
  }, [live, read]);

  const attempts = useMemo(() => [...new Set(log.lines.map((l) => l.attempt))].sort((a, b) => a - b), [log.lines]);
  const shown = useMemo(() => (attempt === null ? log.lines : log.lines.filter((l) => l.attempt === attempt)), [log.lines, attempt]);

  useLayoutEffect(() => {
    const el = box.current;
    if (el && follow) {
      el.scrollTop = el.scrollHeight;
      setScrollTop(el.scrollTop);
    }
  }, [shown.length, follow]);

  const onScroll = () => {
    const el = box.current;
    if (!el) return;
    setScrollTop(el.scrollTop);
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < LINE_HEIGHT * 2;
    if (atBottom !== follow) setFollow(atBottom);
  };

  const first = Math.max(0, Math.floor(scrollTop / LINE_HEIGHT) - 20);
  const last = Math.min(shown.length, Math.ceil((scrollTop + height) / LINE_HEIGHT) + 20);
  const visible = shown.slice(first, last);

  return (
    <div className="log-viewer" data-testid="log-viewer" data-lines={log.lines.length}>
      <div className="log-toolbar">
        <div className="tabs" role="tablist" aria-label="Attempts">
          <button type="button" role="tab" aria-selected={attempt === null} className={attempt === null ? 'active' : ''} onClick={() => setAttempt(null)}>
            All attempts
          </button>
          {attempts.map((a) => (
            <button type="button" role="tab" key={a} aria-selected={attempt === a} className={attempt === a ? 'active' : ''} onClick={() => setAttempt(a)}>
              Attempt {a}
            </button>
          ))}
        </div>
        <span className="muted small">
          {fmtCount(log.lines.length)} lines{live ? ' · live' : ''}
        </span>
        <button
          type="button"
          className={`btn btn-small${follow ? ' active' : ''}`}
          onClick={() => setFollow(true)}
          aria-pressed={follow}
          title="Keep the newest line in view"
        >
          Follow tail
        </button>
      </div>
      {log.droppedLines > 0 && (
        <p className="log-dropped small">
          The first {fmtCount(log.droppedLines)} lines ({fmtCount(Math.round(log.droppedBytes / 1024))} KiB) were cut: the catalog keeps the
          tail of each step's log.
        </p>
      )}
      <InlineError message={error} />
      <div
        className="log-box"
        ref={box}
        style={{ height: Math.min(height, Math.max(120, shown.length * LINE_HEIGHT + 16)) }}
        onScroll={onScroll}
        tabIndex={0}
        aria-label="Log lines"
      >
        {loaded && shown.length === 0 ? (
          <div className="log-empty muted">{live ? 'No output yet…' : 'This step wrote no output.'}</div>
        ) : !loaded ? (
          <div className="log-empty muted">Loading the log…</div>
        ) : (
          <div style={{ height: shown.length * LINE_HEIGHT, position: 'relative' }}>
            <div style={{ position: 'absolute', top: first * LINE_HEIGHT, left: 0, right: 0 }}>
              {visible.map((l, i) => {
                const prev = shown[first + i - 1];
                return (
                  <div key={l.no} className={`log-line stream-${l.stream}${prev && prev.attempt !== l.attempt ? ' new-attempt' : ''}`} style={{ height: LINE_HEIGHT }}>
                    <span className="ln">{l.no}</span>
                    <span className="la" title={`attempt ${l.attempt}`}>
                      #{l.attempt}
                    </span>
                    <span className="lt">{l.at.slice(11, 19)}</span>
                    <span className="lx" title={l.text.includes('\n') ? l.text : undefined}>
                      {l.text.includes('\n') ? l.text.replaceAll('\n', ' ⏎ ') : l.text}
                    </span>
                  </div>
                );
              })}
            </div>
          </div>
        )}
      </div>
    </div>
  );
}

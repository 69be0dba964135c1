import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent, type MouseEvent as ReactMouseEvent } from 'react';
import { useQuery } from '../api/hooks';
import { PARTITION_CAUSES_QUERY } from '../api/queries';
import type { Cause, PartitionRange, PartitionsDef, PartitionStatus } from '../api/types';
import { daysToIndexRange, indexOfKey, keyAt, keyDay, type KeySpace } from '../lib/partitions';
import { clampView, countByHealth, indexAtX, indexRanges, panView, rangeAt, stripRects, zoomView, type View } from '../lib/ranges';
import { fmtCount, type Health, HEALTH_COLOR, HEALTH_LABEL } from '../lib/status';

const HEIGHT = 44;

interface Hover {
  x: number;
  index: number;
  key: string;
  health: Health;
}

/**
 * Every partition of an asset as one strip, drawn on a canvas from the
 * run-length ranges (never one element per partition): wheel or the buttons
 * zoom, dragging pans, a date range zooms to it; hovering shows a partition's
 * key, status and (when stale) its causes; a click selects it.
 */
export function PartitionStrip({
  assetKey,
  def,
  ranges: raw,
  selected,
  onSelect,
}: {
  assetKey: string;
  def: PartitionsDef;
  ranges: PartitionRange[];
  selected: string | undefined;
  onSelect: (key: string) => void;
}) {
  const { ranges, total } = useMemo(() => indexRanges(raw), [raw]);
  const counts = useMemo(() => countByHealth(ranges), [ranges]);
  const space: KeySpace = useMemo(() => ({ granularity: def.granularity, timezone: def.timezone }), [def.granularity, def.timezone]);
  const first = raw[0]?.start ?? def.firstKey ?? '';
  const [view, setView] = useState<View>({ from: 0, to: total });
  const [hover, setHover] = useState<Hover | null>(null);
  const [width, setWidth] = useState(0);
  const wrap = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const drag = useRef<{ x: number; view: View; moved: boolean } | null>(null);

  // The strip follows the partitions as they grow, keeping a zoomed view.
  const lastTotal = useRef(total);
  useEffect(() => {
    setView((v) => (v.to >= lastTotal.current || v.to === 0 ? { from: v.from, to: total } : clampView(v, total)));
    lastTotal.current = total;
  }, [total]);

  useEffect(() => {
    const el = wrap.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    setWidth(el.clientWidth);
    return () => ro.disconnect();
  }, []);

  const keyOf = useCallback((i: number) => (first ? keyAt(space, first, i) : ''), [space, first]);
  const selectedIndex = useMemo(() => (selected && first ? indexOfKey(space, first, selected) : -1), [selected, space, first]);

  // Draw.
  useEffect(() => {
    const c = canvas.current;
    if (!c || width <= 0) return;
    const t0 = performance.now();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(width * dpr);
    const h = Math.round(HEIGHT * dpr);
    if (c.width !== w || c.height !== h) {
      c.width = w;
      c.height = h;
    }
    const ctx = c.getContext('2d');
    if (!ctx) return;
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = '#eef0f3';
    ctx.fillRect(0, 0, w, h);
    for (const r of stripRects(ranges, view, w)) {
      ctx.fillStyle = HEALTH_COLOR[r.health];
      ctx.fillRect(r.x, 0, r.w, h);
    }
    const span = view.to - view.from;
    const mark = (i: number, color: string, lw: number) => {
      if (i < view.from || i >= view.to || span <= 0) return;
      const x0 = ((i - view.from) / span) * w;
      const x1 = ((i + 1 - view.from) / span) * w;
      ctx.strokeStyle = color;
      ctx.lineWidth = lw * dpr;
      ctx.strokeRect(x0 + (lw * dpr) / 2, (lw * dpr) / 2, Math.max(x1 - x0 - lw * dpr, 1), h - lw * dpr);
    };
    mark(selectedIndex, '#111827', 2);
    if (hover) mark(hover.index, 'rgba(17,24,39,0.55)', 1);
    c.dataset.drawn = 'true';
    c.dataset.drawMs = (performance.now() - t0).toFixed(1);
    performance.mark('freshet:strip-drawn');
  }, [ranges, view, width, selectedIndex, hover]);

  // Wheel zoom: a listener of its own, since React's wheel events are passive.
  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      const rect = c.getBoundingClientRect();
      setView((v) => {
        const anchor = v.from + ((e.clientX - rect.left) / rect.width) * (v.to - v.from);
        if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) return panView(v, ((e.deltaX || e.deltaY) / rect.width) * (v.to - v.from), total);
        return zoomView(v, anchor, e.deltaY > 0 ? 1.25 : 0.8, total);
      });
    };
    c.addEventListener('wheel', onWheel, { passive: false });
    return () => c.removeEventListener('wheel', onWheel);
  }, [total]);

  const hoverAt = (clientX: number) => {
    const c = canvas.current;
    if (!c || total === 0) return;
    const rect = c.getBoundingClientRect();
    const x = clientX - rect.left;
    const index = indexAtX(view, rect.width, x);
    const k = rangeAt(ranges, index);
    if (k < 0) return setHover(null);
    setHover({ x, index, key: keyOf(index), health: ranges[k]!.health });
  };

  const onMouseDown = (e: ReactMouseEvent) => {
    drag.current = { x: e.clientX, view, moved: false };
  };
  const onMouseMove = (e: ReactMouseEvent) => {
    const d = drag.current;
    if (d && e.buttons === 1) {
      const dx = e.clientX - d.x;
      if (Math.abs(dx) > 3) d.moved = true;
      if (d.moved && width > 0) setView(panView(d.view, (-dx / width) * (d.view.to - d.view.from), total));
    }
    hoverAt(e.clientX);
  };
  const onMouseUp = () => {
    const d = drag.current;
    drag.current = null;
    if (d && !d.moved && hover) onSelect(hover.key);
  };

  const span = view.to - view.from;
  const zoomed = span < total;
  const ticks = useMemo(() => {
    if (total === 0) return [];
    const n = 5;
    return Array.from({ length: n }, (_, i) => {
      const idx = Math.min(total - 1, Math.floor(view.from + (i / (n - 1)) * (span - 1)));
      return { left: `${(i / (n - 1)) * 100}%`, key: keyOf(idx), align: i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle' };
    });
  }, [view, span, total, keyOf]);

  return (
    <div className="strip" data-testid="partition-strip" data-asset={assetKey}>
      <StripControls
        space={space}
        first={first}
        total={total}
        view={view}
        zoomed={zoomed}
        onView={(v) => setView(clampView(v, total, 1))}
        onZoom={(f) => setView((v) => zoomView(v, v.from + (v.to - v.from) / 2, f, total))}
        rangeText={total === 0 ? '' : `${keyOf(Math.floor(view.from))} … ${keyOf(Math.ceil(view.to) - 1)}`}
      />
      <div className="strip-canvas-wrap" ref={wrap} onMouseLeave={() => setHover(null)}>
        {total === 0 ? (
          <div className="strip-empty muted">No partition exists yet (the first one is complete after {def.start}).</div>
        ) : (
          <canvas
            ref={canvas}
            className="strip-canvas"
            style={{ width: '100%', height: HEIGHT }}
            data-total={total}
            data-ranges={ranges.length}
            data-view-from={Math.floor(view.from)}
            data-view-to={Math.ceil(view.to)}
            onMouseDown={onMouseDown}
            onMouseMove={onMouseMove}
            onMouseUp={onMouseUp}
            role="img"
            aria-label={`Partition status of ${assetKey}: ${(Object.keys(counts) as Health[])
              .filter((h) => counts[h] > 0)
              .map((h) => `${counts[h]} ${HEALTH_LABEL[h].toLowerCase()}`)
              .join(', ')}`}
          />
        )}
        {hover && <StripTooltip assetKey={assetKey} hover={hover} width={width} />}
      </div>
      <div className="strip-axis">
        {ticks.map((t, i) => (
          <span key={i} className={`tick tick-${t.align}`} style={{ left: t.left }}>
            {t.key}
          </span>
        ))}
      </div>
      <div className="strip-counts">
        {(['fresh', 'stale', 'missing', 'failed', 'running'] as Health[]).map((h) => (
          <span key={h} className="legend-item" data-health={h}>
            <span className={`dot health-${h}`} />
            {HEALTH_LABEL[h]} <strong>{fmtCount(counts[h])}</strong>
          </span>
        ))}
        <span className="muted">
          {fmtCount(total)} partition{total === 1 ? '' : 's'} in {fmtCount(ranges.length)} range{ranges.length === 1 ? '' : 's'}
        </span>
      </div>
    </div>
  );
}

function StripControls({
  space,
  first,
  total,
  view,
  zoomed,
  onView,
  onZoom,
  rangeText,
}: {
  space: KeySpace;
  first: string;
  total: number;
  view: View;
  zoomed: boolean;
  onView: (v: View) => void;
  onZoom: (factor: number) => void;
  rangeText: string;
}) {
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const apply = (e: FormEvent) => {
    e.preventDefault();
    if (!first || !from || !to || from > to) return;
    const r = daysToIndexRange(space, first, from, to);
    onView({ from: Math.max(0, r.from), to: Math.min(total, Math.max(r.to, r.from + 1)) });
  };
  const reset = () => {
    setFrom('');
    setTo('');
    onView({ from: 0, to: total });
  };
  return (
    <form className="strip-controls" onSubmit={apply} aria-label="Zoom to dates">
      <span className="mono small" data-testid="strip-range">
        {rangeText}
      </span>
      <span className="spacer" />
      <label className="field inline">
        <span>From</span>
        <input type="date" name="strip-from" value={from} onChange={(e) => setFrom(e.target.value)} min={first ? keyDay(first) : undefined} />
      </label>
      <label className="field inline">
        <span>To</span>
        <input type="date" name="strip-to" value={to} onChange={(e) => setTo(e.target.value)} />
      </label>
      <button type="submit" className="btn btn-small" disabled={!from || !to}>
        Zoom to dates
      </button>
      <button type="button" className="btn btn-small" onClick={() => onZoom(0.5)} aria-label="Zoom in" disabled={view.to - view.from <= 10}>
        +
      </button>
      <button type="button" className="btn btn-small" onClick={() => onZoom(2)} aria-label="Zoom out" disabled={!zoomed}>
        −
      </button>
      <button type="button" className="btn btn-small" onClick={reset} disabled={!zoomed}>
        All
      </button>
    </form>
  );
}

/** The hovered partition: key and status at once; for a stale one, its causes after a short pause. */
function StripTooltip({ assetKey, hover, width }: { assetKey: string; hover: Hover; width: number }) {
  const [asked, setAsked] = useState<string | null>(null);
  useEffect(() => {
    setAsked(null);
    if (hover.health !== 'stale' && hover.health !== 'failed') return;
    const t = setTimeout(() => setAsked(hover.key), 150);
    return () => clearTimeout(t);
  }, [hover.key, hover.health]);
  const causes = useQuery<{ asset: { partition: { status: PartitionStatus; causes: Cause[] } | null } | null }>(
    PARTITION_CAUSES_QUERY,
    { key: assetKey, partition: asked ?? '' },
    { skip: asked === null },
  );
  const left = Math.min(Math.max(hover.x + 12, 0), Math.max(width - 280, 0));
  const list = causes.data?.asset?.partition?.causes ?? [];
  return (
    <div className="strip-tooltip" style={{ left }} role="tooltip" data-testid="strip-tooltip">
      <div className="mono">
        <strong>{hover.key}</strong>
      </div>
      <div>
        <span className={`dot health-${hover.health}`} /> {HEALTH_LABEL[hover.health]}
      </div>
      {asked !== null && causes.loading && <div className="muted small">loading causes…</div>}
      {list.length > 0 && (
        <ul className="causes small">
          {list.slice(0, 6).map((c, i) => (
            <li key={i}>
              {c.kind}
              {c.asset && (
                <span className="mono">
                  {' '}
                  {c.asset} {c.partition}
                </span>
              )}
            </li>
          ))}
          {list.length > 6 && <li className="muted">and {list.length - 6} more</li>}
        </ul>
      )}
      <div className="muted small">click for details</div>
    </div>
  );
}

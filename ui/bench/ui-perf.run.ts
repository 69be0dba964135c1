// The UI's performance in headless Chromium (make bench-ui): a synthetic catalog
// of 1,000 assets (a layered DAG, 20 layers of 50, each asset reading 1 to 3 of
// the layer before) served by a real `freshet serve`, with one hourly asset of
// about 100,000 partitions. It prints:
//   - the graph: from navigation to the 1,000 assets drawn (fitted to the
//     screen, on the canvas layer; from 2,000 assets on with a rough layout
//     first), to ELK's layout (computed in its worker) in place, and to a click
//     on an asset having opened its panel: interactive;
//   - the partition strip: from navigation to the 100,000-partition strip drawn,
//     and the canvas draw itself, first and after a zoom.
// Targets: graph interactive ≤ 2 s, strip ≤ 1 s. It fails only when the pages do
// not show what they should; the figures are for reading, not asserting.
// BENCH_LAYERS and BENCH_PER_LAYER change the graph's size (50 and 200: 10,000
// assets), BENCH_RUNS the number of runs of each case (3).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gqlPost, launchChromium, removeDir, startServe, tempDir, type Server } from '../e2e/harness';

const LAYERS = Number(process.env.BENCH_LAYERS ?? 20);
const PER_LAYER = Number(process.env.BENCH_PER_LAYER ?? 50);
const ASSETS = LAYERS * PER_LAYER;
const HOURS = 100_000;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const HOURLY = 'bench/l00/hourly_events';

function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 16807) % 2147483647;
    return s / 2147483647;
  };
}

/** The day ~100,000 hours ago, so the hourly asset has about that many partitions. */
function hourlyStart(): string {
  const d = new Date(Date.now() - HOURS * 3600_000);
  return d.toISOString().slice(0, 10);
}

function key(layer: number, i: number): string {
  return layer === 0 && i === 0 ? HOURLY : `bench/l${String(layer).padStart(2, '0')}/asset_${String(i).padStart(3, '0')}`;
}

function definitions(): string {
  const r = rng(42);
  const out: string[] = ['assets:'];
  for (let l = 0; l < LAYERS; l++) {
    for (let i = 0; i < PER_LAYER; i++) {
      const k = key(l, i);
      out.push(`  - key: ${k}`, `    group: layer_${String(l % 5)}`, '    compute: {command: ["true"]}');
      if (k === HOURLY) {
        out.push(`    partitions: {hourly: {start: ${hourlyStart()}}}`);
      } else {
        out.push('    partitions: {daily: {start: 2026-01-01}}');
      }
      if (l > 0) {
        const n = 1 + Math.floor(r() * 3);
        const deps = new Set<string>();
        for (let j = 0; j < n; j++) deps.add(key(l - 1, Math.floor(r() * PER_LAYER)));
        out.push(`    deps: [${[...deps].join(', ')}]`);
      }
    }
  }
  return out.join('\n') + '\n';
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

describe('UI performance', () => {
  let server: Server;
  let browser: Browser;
  const lines: string[] = [];

  beforeAll(async () => {
    const dir = join(tempDir('freshet-ui-bench-'), 'catalog');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'freshet.yaml'), definitions());
    server = await startServe(dir, ['--freshness-interval', '1h']);
    // Materialized and missing stretches of 30 days on the hourly asset, so its
    // status is a few dozen ranges, as a real backfilled history would be.
    const start = new Date(`${hourlyStart()}T00:00:00Z`).getTime();
    for (let d = 0; d * 86_400_000 < HOURS * 3600_000 - 86_400_000 * 30; d += 60) {
      const from = new Date(start + d * 86_400_000).toISOString().slice(0, 10);
      const to = new Date(start + (d + 29) * 86_400_000).toISOString().slice(0, 10);
      await gqlPost(server.url, 'mutation($a: String!, $f: String, $t: String) { reportMaterialization(input: {asset: $a, from: $f, to: $t, dataVersion: "v1"}) { seq } }', {
        a: HOURLY,
        f: from,
        t: to,
      });
    }
    // Warm the server's state once (as a UI user would find it).
    await gqlPost(server.url, '{ assetGraph { nodes { key status { total } } } }');
    browser = await launchChromium();
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (server) removeDir(dirname(server.dir));
    console.log(`\nUI benchmark (headless Chromium ${browser?.version() ?? ''}):\n${lines.join('\n')}\n`);
  });

  it(`graph of ${ASSETS} assets: navigation → nodes drawn → a click selects a node`, async () => {
    const drawn: number[] = [];
    const interactive: number[] = [];
    const laidOut: number[] = [];
    const layoutMs: number[] = [];
    let drawnNodes = 0;
    for (let run = 0; run < RUNS; run++) {
      const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      const page = await context.newPage();
      await page.goto(`${server.url}/assets`, { waitUntil: 'commit' });
      // Fitted to the screen, 1,000 assets are drawn on the canvas layer.
      await page.waitForFunction((n) => document.querySelector('[data-testid=graph-far-layer]')?.getAttribute('data-nodes') === String(n), ASSETS, {
        timeout: 120_000,
        polling: 'raf',
      });
      drawn.push(await page.evaluate(() => performance.now()));
      drawnNodes = Number(await page.locator('[data-testid=graph-far-layer]').getAttribute('data-nodes'));
      await page.locator('[data-testid=asset-graph][data-layout=done]').waitFor({ timeout: 300_000 });
      laidOut.push(await page.evaluate(() => performance.now()));
      // Click on an asset, found as a user would: a node-coloured spot near the middle.
      const spot = await page.evaluate(() => {
        const c = document.querySelector<HTMLCanvasElement>('[data-testid=graph-far-layer]')!;
        const ctx = c.getContext('2d')!;
        const { data, width, height } = ctx.getImageData(0, 0, c.width, c.height);
        const r = c.getBoundingClientRect();
        const dpr = c.width / r.width;
        let best: { x: number; y: number; d: number } | null = null;
        for (let y = 1; y < height - 1; y += 2) {
          for (let x = 1; x < width - 1; x += 2) {
            // Inside a block: the pixel and the ones around it have a node's colour.
            const grey = (px: number, py: number) => {
              const i = (py * width + px) * 4;
              return data[i] === 156 && data[i + 1] === 163 && data[i + 2] === 175;
            };
            if (!grey(x, y) || !grey(x - 1, y) || !grey(x + 1, y) || !grey(x, y - 1) || !grey(x, y + 1)) continue;
            const d = Math.abs(x - width / 2) + Math.abs(y - height / 2);
            if (!best || d < best.d) best = { x, y, d };
          }
        }
        if (best) return { x: r.left + best.x / dpr, y: r.top + best.y / dpr };
        return null;
      });
      expect(spot, 'no asset drawn near the middle of the graph').not.toBeNull();
      await page.mouse.click(spot!.x, spot!.y);
      const panel = page.locator('[data-testid=asset-panel] h2');
      await panel.waitFor({ timeout: 30_000 });
      interactive.push(await page.evaluate(() => performance.now()));
      expect(page.url()).toContain(`asset=${encodeURIComponent((await panel.textContent()) ?? '?')}`);
      layoutMs.push(Number(await page.locator('[data-testid=asset-graph]').getAttribute('data-layout-ms')));
      await context.close();
    }
    expect(drawnNodes).toBe(ASSETS);
    lines.push(
      `  graph, ${ASSETS} assets (layered DAG, ${LAYERS}×${PER_LAYER}): first drawn ${Math.round(median(drawn))} ms, ELK layout in place ${Math.round(median(laidOut))} ms, interactive (a click on a node opened its panel) ${Math.round(median(interactive))} ms after navigation (median of ${RUNS}: ${interactive.map(Math.round).join(', ')} ms); ELK in its worker ${Math.round(median(layoutMs))} ms (target ≤ 2000 ms)`,
    );
  });

  it(`partition strip of ~${HOURS.toLocaleString('en-US')} hourly partitions: navigation → strip drawn`, async () => {
    const shown: number[] = [];
    const draw: number[] = [];
    const zoomDraw: number[] = [];
    let total = 0;
    let ranges = 0;
    for (let run = 0; run < RUNS; run++) {
      const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      const page = await context.newPage();
      await page.goto(`${server.url}/asset/${HOURLY}`, { waitUntil: 'commit' });
      const canvas = page.locator('[data-testid=partition-strip] canvas[data-drawn=true]');
      await canvas.waitFor({ timeout: 60_000 });
      shown.push(await page.evaluate(() => performance.getEntriesByName('freshet:strip-drawn')[0]?.startTime ?? NaN));
      draw.push(Number(await canvas.getAttribute('data-draw-ms')));
      total = Number(await canvas.getAttribute('data-total'));
      ranges = Number(await canvas.getAttribute('data-ranges'));
      const box = (await canvas.boundingBox())!;
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.locator('[data-testid=strip-tooltip]').waitFor();
      const before = await canvas.getAttribute('data-view-to');
      await page.mouse.wheel(0, -400);
      await page.waitForFunction((b) => document.querySelector('[data-testid=partition-strip] canvas')?.getAttribute('data-view-to') !== b, before);
      zoomDraw.push(Number(await canvas.getAttribute('data-draw-ms')));
      await context.close();
    }
    expect(total).toBeGreaterThanOrEqual(HOURS - 48);
    expect(ranges).toBeGreaterThan(10);
    lines.push(
      `  partition strip, ${total.toLocaleString('en-US')} partitions in ${ranges} ranges: drawn ${Math.round(median(shown))} ms after navigation (median of ${RUNS}: ${shown.map(Math.round).join(', ')} ms); canvas draw ${median(draw).toFixed(1)} ms, redraw after a zoom ${median(zoomDraw).toFixed(1)} ms (target ≤ 1000 ms)`,
    );
  });
});

// The UI end to end, in real headless Chromium against a real `freshet serve`
// over a copy of examples/sales with two assets added: one whose command fails
// (its log must be readable) and a source with a one-hour freshness policy whose
// last observation is three hours old (the board must show it FAIL).
//
// Each step waits for what a user would see (text, node status attributes),
// never for a fixed time. Screenshots go to ui/test-results/.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyExample, gqlPost, launchChromium, removeDir, resultsDir, screenshot, startServe, type Server } from './harness';

const exampleKeys = ['sales/raw_orders', 'sales/orders_clean', 'sales/orders_loaded', 'sales/daily_report', 'sales/weekly_revenue', 'sales/exchange_rates'];

const extraAssets = `
  - key: checks/partner_export
    description: Sends the orders to a partner's API. In this test the partner answers 503, so every attempt fails.
    group: checks
    owners: [team:integrations]
    tags: [export]
    compute:
      command: [sh, -c, "echo exporting orders to the partner; echo 'partner API returned 503 Service Unavailable' >&2; exit 3"]
    retries: {max: 1, backoff: 1s, max_backoff: 2s}
    timeout: 1m
    code_version: "1"

  - key: checks/partner_feed
    description: A partner's hourly delivery, observed, never built here.
    group: checks
    owners: [team:integrations]
    freshness: {max_lag: 1h}

`;

/** The example, plus the two assets; its nightly schedule moved to once a year so no tick fires mid-test. */
function prepareProject(): string {
  const dir = copyExample();
  const file = join(dir, 'freshet.yaml');
  let yaml = readFileSync(file, 'utf8');
  if (!yaml.includes('\nschedules:')) throw new Error('examples/sales/freshet.yaml has no schedules: section to insert before');
  yaml = yaml.replace('\nschedules:', `${extraAssets}schedules:`).replace('cron: "0 2 * * *"', 'cron: "0 2 1 1 *"');
  writeFileSync(file, yaml);
  return dir;
}

const LONG = 240_000;

/**
 * The example's partitions are cut at midnight UTC: one appearing between a run
 * and the check that every node is fresh would leave a node missing. Close to
 * midnight, wait until just after it (the only fixed wait here, and only then).
 */
async function awayFromMidnightUTC(marginMs: number): Promise<void> {
  const day = 86_400_000;
  const toMidnight = day - (Date.now() % day);
  if (toMidnight < marginMs) await new Promise((resolve) => setTimeout(resolve, toMidnight + 5_000));
}

async function nodeStatuses(page: Page): Promise<Record<string, string>> {
  return page.$$eval('.asset-node', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-key') ?? '', e.getAttribute('data-status') ?? ''])));
}

async function waitForGraph(page: Page, count: number): Promise<void> {
  await page.waitForFunction((n) => document.querySelectorAll('.asset-node').length === n, count, { timeout: 60_000 });
}

describe('the web UI against freshet serve', () => {
  let server: Server;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const shots: string[] = [];

  beforeAll(async () => {
    server = await startServe(prepareProject(), ['--parallel', '4', '--freshness-interval', '2s']);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.setDefaultTimeout(60_000);
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (server) removeDir(dirname(server.dir));
    console.log(`screenshots (${shots.length}) in ${resultsDir}:\n  ${shots.join('\n  ')}`);
  });

  it('shows the example assets on the graph, with search, filters and the detail panel', async () => {
    await page.goto(server.url);
    await page.waitForURL(/\/assets$/);
    await waitForGraph(page, 8);
    const statuses = await nodeStatuses(page);
    for (const key of exampleKeys) expect(statuses[key], key).toBe('missing');
    expect(await page.locator('[data-testid=asset-graph] .react-flow__edge').count()).toBe(5);
    shots.push(await screenshot(page, '01-graph-empty-catalog'));

    await page.fill('input[aria-label="Search by key"]', 'weekly');
    await page.locator('text=1 match').waitFor();
    expect(await page.locator('.asset-node.match').getAttribute('data-key')).toBe('sales/weekly_revenue');
    await page.press('input[aria-label="Search by key"]', 'Enter');
    await page.locator('[data-testid=asset-panel] h2', { hasText: 'sales/weekly_revenue' }).waitFor();
    await page.locator('[data-testid=asset-panel]', { hasText: 'Revenue per week' }).waitFor();
    expect(page.url()).toContain('asset=sales%2Fweekly_revenue');

    await page.fill('input[aria-label="Selection"]', 'group:sales');
    await page.click('button:has-text("Apply")');
    await waitForGraph(page, 6);
    await page.selectOption('select[aria-label="Group"]', 'sales');
    await waitForGraph(page, 6);
    // The new graph is fitted to the canvas, as on a fresh load of its URL: the
    // search's earlier jump to sales/weekly_revenue is not replayed on it.
    const viewport = () => page.locator('.react-flow__viewport').evaluate((el) => getComputedStyle(el).transform);
    await page.waitForTimeout(600); // past any pan (300 ms)
    const afterFilters = await viewport();
    await page.reload();
    await waitForGraph(page, 6);
    await page.waitForTimeout(600);
    expect(afterFilters).toBe(await viewport());
    await page.locator('.asset-node[data-key="sales/orders_loaded"]').click();
    await page.locator('[data-testid=asset-panel] h2', { hasText: 'sales/orders_loaded' }).waitFor();
    await page.locator('[data-testid=asset-panel] [data-testid=freshness-summary]', { hasText: 'max_lag 30h' }).waitFor();
    // Its neighbours, with the partition mapping of each edge.
    await page.locator('[data-testid=asset-panel] .neighbours li', { hasText: 'sales/orders_clean' }).locator('text=time').waitFor();
    await page.locator('[data-testid=asset-panel] .neighbours li', { hasText: 'sales/weekly_revenue' }).waitFor();
  });

  it('draws the graph zoomed far out on a canvas, where hovering and clicking still work', async () => {
    await page.goto(`${server.url}/assets`);
    await waitForGraph(page, 8);
    const graph = page.locator('[data-testid=asset-graph]');
    expect(await graph.getAttribute('data-mode')).toBe('near');
    for (let i = 0; i < 20 && (await graph.getAttribute('data-mode')) !== 'far'; i++) await page.click('.react-flow__controls-zoomout');
    await page.locator('[data-testid=graph-far-layer][data-nodes="8"]').waitFor();
    expect(await page.locator('.asset-node').count()).toBe(0);
    // A block of the canvas in a status colour: hover names it, a click selects it.
    const spot = await page.evaluate(() => {
      const c = document.querySelector<HTMLCanvasElement>('[data-testid=graph-far-layer]')!;
      const { data, width, height } = c.getContext('2d')!.getImageData(0, 0, c.width, c.height);
      const r = c.getBoundingClientRect();
      const grey = (x: number, y: number) => {
        const i = (y * width + x) * 4;
        return data[i] === 156 && data[i + 1] === 163 && data[i + 2] === 175;
      };
      for (let y = 1; y < height - 1; y++)
        for (let x = 1; x < width - 1; x++) if (grey(x, y) && grey(x - 1, y) && grey(x + 1, y) && grey(x, y - 1) && grey(x, y + 1)) return { x: r.left + (x * r.width) / width, y: r.top + (y * r.height) / height };
      return null;
    });
    expect(spot, 'no asset block drawn').not.toBeNull();
    await page.mouse.move(spot!.x, spot!.y);
    const key = (await page.locator('.graph-tooltip strong').textContent()) ?? '';
    expect(exampleKeys.concat(['checks/partner_export', 'checks/partner_feed'])).toContain(key);
    await page.mouse.click(spot!.x, spot!.y);
    await page.locator('[data-testid=asset-panel] h2', { hasText: key }).waitFor();
    // Fit to screen: back to readable nodes.
    await page.click('.react-flow__controls-fitview');
    await waitForGraph(page, 8);
    expect(await graph.getAttribute('data-mode')).toBe('near');
  });

  it('previews "Materialize stale" with what is blocked and why', async () => {
    await page.goto(`${server.url}/assets?select=group:sales`);
    await waitForGraph(page, 6);
    await page.click('button:has-text("Materialize stale")');
    const preview = page.locator('[data-testid=plan-preview]');
    await preview.waitFor();
    await preview.locator('.plan-headline', { hasText: /steps? over [\d,]+ partitions? of 4 assets/ }).waitFor();
    await preview.locator('tr[data-asset="sales/raw_orders"]').waitFor();
    // Nobody observed the exchange rates: the daily report cannot be built.
    await page.locator('[data-testid=plan-blocked]', { hasText: 'sales/daily_report' }).waitFor();
    await page.locator('[data-testid=plan-blocked]', { hasText: 'sales/exchange_rates has no observation' }).waitFor();
    shots.push(await screenshot(page, '02-materialize-preview-blocked'));
    await page.click('.modal-foot button:has-text("Cancel")');
    await page.locator('[data-testid=plan-preview]').waitFor({ state: 'detached' });
  });

  it('runs a 7-day backfill to 100%', async () => {
    // Someone observes the exchange rates (as `freshet observe` would).
    await gqlPost(server.url, 'mutation { reportObservation(input: {asset: "sales/exchange_rates", dataVersion: "rates-v1"}) { seq } }');
    await page.goto(`${server.url}/backfills`);
    await page.locator('text=No backfills yet').waitFor();
    await page.click('button:has-text("New backfill")');
    await page.fill('input[name=selection]', 'group:sales');
    await page.fill('input[name=from]', '2026-01-01');
    await page.fill('input[name=to]', '2026-01-07');
    await page.check('input[name=mode][value=missing_and_stale]');
    await page.fill('input[name=parallel]', '4');
    await page.locator('text=7 days, partitions whose window starts from 2026-01-01 to 2026-01-07').waitFor();
    await page.click('button:has-text("Launch backfill")');
    await page.waitForURL(/\/backfills\/[0-9a-f-]+$/);
    await page.waitForSelector('[data-backfill-status=SUCCEEDED]', { timeout: LONG });
    await page.locator('[data-testid=backfill-percent]', { hasText: '100%' }).waitFor();
    const targeted = Number((await page.locator('[data-count=Targeted] strong').textContent())?.replace(/,/g, ''));
    const done = Number((await page.locator('[data-count=Done] strong').textContent())?.replace(/,/g, ''));
    expect(targeted).toBeGreaterThan(7);
    expect(done).toBe(targeted);
    shots.push(await screenshot(page, '03-backfill-100'));

    await page.goto(`${server.url}/backfills`);
    await page.locator('[data-testid=backfills-table] tbody tr', { hasText: 'SUCCEEDED' }).waitFor();
  });

  it('materializes stale: previews, launches, follows the run, and the nodes turn fresh', async () => {
    await awayFromMidnightUTC(3 * 60_000); // the test takes under a minute; its timeout is 5
    await page.goto(`${server.url}/assets?select=group:sales`);
    await waitForGraph(page, 6);
    const before = await nodeStatuses(page);
    expect(before['sales/raw_orders']).toBe('missing'); // only the backfilled week is built
    await page.click('button:has-text("Materialize stale")');
    await page.locator('[data-testid=plan-preview] tr[data-asset="sales/daily_report"]').waitFor();
    expect(await page.locator('[data-testid=plan-blocked]').count()).toBe(0);
    const launch = page.locator('.modal-foot button.btn-primary');
    await expect.poll(() => launch.textContent()).toMatch(/^Launch [\d,]+ steps$/);
    await launch.click();
    await page.waitForURL(/\/runs\/[0-9a-f-]+/);
    const runURL = page.url();
    await page.locator('[data-testid=step-timeline]').waitFor();
    await page.waitForSelector('.page-run[data-run-status=SUCCEEDED]', { timeout: LONG });
    shots.push(await screenshot(page, '04-run-succeeded'));

    await page.goto(`${server.url}/assets?select=group:sales`);
    await waitForGraph(page, 6);
    await page.waitForFunction(
      (keys) => keys.every((k) => document.querySelector(`.asset-node[data-key="${k}"]`)?.getAttribute('data-status') === 'fresh'),
      exampleKeys,
      { timeout: 60_000 },
    );
    await page.locator('.asset-node[data-key="sales/daily_report"]').click();
    await page.locator('[data-testid=asset-panel] .badge.health-fresh').waitFor();
    shots.push(await screenshot(page, '05-graph-fresh'));

    // The run is listed, and the list filters by status.
    await page.goto(`${server.url}/runs?status=SUCCEEDED`);
    await page.locator(`[data-testid=runs-table] tr[data-run="${runURL.split('/runs/')[1]}"]`).waitFor();
    expect(await page.locator('[data-testid=runs-table] tbody tr:not([data-status=SUCCEEDED])').count()).toBe(0);
  });

  it("shows a failing step's log, attempt by attempt", async () => {
    await page.goto(`${server.url}/asset/checks/partner_export`);
    await page.locator('h1', { hasText: 'checks/partner_export' }).waitFor();
    await page.click('.page-head button:has-text("Materialize stale")');
    await page.locator('[data-testid=plan-preview] tr[data-asset="checks/partner_export"]').waitFor();
    await page.click('.modal-foot button:has-text("Launch 1 step")');
    await page.waitForURL(/\/runs\/[0-9a-f-]+/);
    await page.waitForSelector('.page-run[data-run-status=FAILED]', { timeout: LONG });
    await page.click('tr[data-status=FAILED]');
    const log = page.locator('[data-testid=step-detail] [data-testid=log-viewer]');
    await log.locator('.log-line', { hasText: 'partner API returned 503 Service Unavailable' }).first().waitFor();
    await page.locator('[data-testid=step-detail]', { hasText: 'Attempt 2 of 2' }).waitFor();
    await log.locator('button[role=tab]', { hasText: 'Attempt 2' }).click();
    await log.locator('.log-line.stream-stderr', { hasText: 'partner API returned 503' }).waitFor();
    shots.push(await screenshot(page, '06-failed-step-log'));

    await page.goto(`${server.url}/runs?status=FAILED`);
    await page.locator('[data-testid=runs-table] tr[data-status=FAILED]').first().waitFor();
    await page.goto(`${server.url}/assets`);
    await waitForGraph(page, 8);
    await page.waitForFunction(() => document.querySelector('.asset-node[data-key="checks/partner_export"]')?.getAttribute('data-status') === 'failed');
  });

  it('turns the downstream nodes stale, live, when an upstream partition gets new data', async () => {
    // The graph is open; someone reports a corrected day of raw orders elsewhere.
    expect((await nodeStatuses(page))['sales/orders_clean']).toBe('fresh');
    await gqlPost(server.url, 'mutation { reportMaterialization(input: {asset: "sales/raw_orders", partitions: ["2026-01-06"], dataVersion: "corrected-by-hand"}) { seq } }');
    await page.waitForFunction(
      () => ['sales/orders_clean', 'sales/orders_loaded', 'sales/daily_report', 'sales/weekly_revenue'].every((k) => document.querySelector(`.asset-node[data-key="${k}"]`)?.getAttribute('data-status') === 'stale'),
      null,
      { timeout: 60_000 },
    );
    expect((await nodeStatuses(page))['sales/raw_orders']).toBe('fresh');
    await page.locator('.asset-node[data-key="sales/orders_clean"]').click();
    await page.locator('[data-testid=asset-panel] .badge.health-stale').waitFor();
    await page.click('.react-flow__controls-fitview'); // the whole graph beside the panel
    await page.waitForTimeout(400); // the fit is animated (200 ms): let it end before the picture
    const readme = await screenshot(page, '07-graph-stale-and-failed');
    shots.push(readme);
    if (process.env.FRESHET_UI_README_SHOT) copyFileSync(readme, process.env.FRESHET_UI_README_SHOT);

    // The partition says why, naming the upstream partition.
    await page.goto(`${server.url}/asset/sales/orders_clean?partition=2026-01-06`);
    await page.locator('[data-testid=partition-panel] .causes', { hasText: 'UPSTREAM_CHANGED' }).waitFor();
    await page.locator('[data-testid=partition-panel] .causes a', { hasText: "sales/raw_orders 2026-01-06" }).waitFor();
  });

  it('shows the FAIL asset first on the freshness board', async () => {
    // The partner's feed was last seen three hours ago; its policy allows one.
    const at = new Date(Date.now() - 3 * 3600_000).toISOString();
    await gqlPost(server.url, 'mutation($at: Time) { reportObservation(input: {asset: "checks/partner_feed", dataVersion: "feed-1", at: $at}) { seq } }', { at });
    await page.goto(`${server.url}/freshness`);
    const row = page.locator('[data-testid=freshness-board] tr[data-asset="checks/partner_feed"]');
    await row.waitFor();
    expect(await row.getAttribute('data-freshness')).toBe('FAIL');
    await row.locator('.badge', { hasText: 'FAIL' }).waitFor();
    await row.locator('td', { hasText: /^3h/ }).waitFor();
    const first = await page.locator('[data-testid=freshness-board] tbody tr').first().getAttribute('data-freshness');
    expect(first).toBe('FAIL');
    // The checker records status changes; the board lists them.
    await page.locator('.card', { hasText: 'Status changes' }).locator('td', { hasText: 'checks/partner_feed' }).first().waitFor({ timeout: 60_000 });
    shots.push(await screenshot(page, '08-freshness-board'));
  });

  it('draws the partition strip: hover shows a partition, a click its details, dates zoom', async () => {
    await page.goto(`${server.url}/asset/sales/raw_orders`);
    const canvas = page.locator('[data-testid=partition-strip] canvas[data-drawn=true]');
    await canvas.waitFor();
    const total = Number(await canvas.getAttribute('data-total'));
    expect(total).toBeGreaterThan(300);
    await page.locator('[data-testid=partition-strip] [data-health=fresh] strong', { hasText: total.toLocaleString('en-US') }).waitFor();
    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + 2, box.y + box.height / 2);
    const tip = page.locator('[data-testid=strip-tooltip]');
    await tip.locator('strong', { hasText: '2026-01-01' }).waitFor();
    await tip.locator('text=Fresh').waitFor();
    await page.mouse.down();
    await page.mouse.up();
    await page.waitForURL(/partition=2026-01-01/);
    const panel = page.locator('[data-testid=partition-panel][data-partition="2026-01-01"]');
    await panel.locator('dt', { hasText: 'Data version' }).waitFor();
    expect((await panel.locator('dt:has-text("Data version") + dd').textContent())?.trim()).toMatch(/^[^—\s]+$/);
    await panel.locator('pre.json', { hasText: '"rows"' }).waitFor();
    await panel.locator('button:has-text("Show log")').click();
    await panel.locator('[data-testid=log-viewer] .log-line').first().waitFor();

    await page.fill('input[name=strip-from]', '2026-01-01');
    await page.fill('input[name=strip-to]', '2026-01-07');
    await page.click('button:has-text("Zoom to dates")');
    await page.locator('[data-testid=strip-range]', { hasText: '2026-01-01 … 2026-01-07' }).waitFor();
    shots.push(await screenshot(page, '09-asset-partitions'));
  });

  it('shows the schedules with their last and next tick', async () => {
    await page.goto(`${server.url}/schedules`);
    const row = page.locator('[data-testid=schedules-table] tr[data-schedule=nightly]');
    await row.waitFor();
    await row.locator('text=never ticked').waitFor();
    await row.locator('[data-testid=next-tick]', { hasText: /20\d\d-01-01 02:00:00 UTC/ }).waitFor();
    shots.push(await screenshot(page, '10-schedules'));
  });

  it('raised no page error', () => {
    expect(pageErrors).toEqual([]);
  });
});

describe('a server that requires a token', () => {
  let server: Server;
  let browser: Browser;

  beforeAll(async () => {
    server = await startServe(copyExample(), ['--auth-token', 'e2e-s3cret']);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (server) removeDir(dirname(server.dir));
  });

  it('asks for the token, refuses a wrong one, and keeps it for the browser session only', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const frames: string[] = [];
    const sent: string[] = [];
    const text = (f: { payload: string | Buffer }) => (typeof f.payload === 'string' ? f.payload : f.payload.toString());
    page.on('websocket', (ws) => {
      ws.on('framereceived', (f) => frames.push(text(f)));
      ws.on('framesent', (f) => sent.push(text(f)));
    });
    await page.goto(server.url);
    const prompt = page.locator('form[aria-label="API token"]');
    await prompt.waitFor();
    await page.fill('input[name=token]', 'wrong');
    await page.click('button:has-text("Continue")');
    await prompt.locator('text=The server refused that token.').waitFor();
    await page.fill('input[name=token]', 'e2e-s3cret');
    await page.click('button:has-text("Continue")');
    await waitForGraph(page, 6);
    expect(await prompt.count()).toBe(0);
    // Live updates authenticate in connection_init: the graph's subscription to
    // asset events is accepted and gets the materializations of a run launched
    // once it is on. (Not the run's page: it does not subscribe to a run that has
    // ended, which a two-step run may have before the page loads.)
    await expect.poll(() => frames.some((f) => f.includes('"connection_ack"')), { timeout: 30_000 }).toBe(true);
    await expect.poll(() => sent.some((f) => f.includes('"subscribe"') && f.includes('assetEvents')), { timeout: 30_000 }).toBe(true);
    const { materializeStale } = await gqlPost<{ materializeStale: { id: string } }>(
      server.url,
      'mutation { materializeStale(selection: "sales/raw_orders", from: "2026-01-01", to: "2026-01-02") { id } }',
      {},
      'e2e-s3cret',
    );
    await expect
      .poll(() => frames.some((f) => f.includes('"next"') && f.includes('"sales/raw_orders"')), { timeout: 30_000 })
      .toBe(true);
    await page.goto(`${server.url}/runs/${materializeStale.id}`);
    await page.waitForSelector('.page-run[data-run-status=SUCCEEDED]', { timeout: LONG });
    expect(await prompt.count()).toBe(0);
    logShot(await screenshot(page, '11-token-run'));

    // A reload keeps the token (sessionStorage); a new session asks again.
    await page.reload();
    await page.locator('.page-run[data-run-status=SUCCEEDED]').waitFor();
    expect(await prompt.count()).toBe(0);
    const other = await browser.newContext();
    const page2 = await other.newPage();
    await page2.goto(server.url);
    await page2.locator('form[aria-label="API token"]').waitFor();
    await other.close();
    await context.close();
  });
});

function logShot(path: string): void {
  console.log(`screenshot: ${path}`);
}

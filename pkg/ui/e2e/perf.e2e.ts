// Measures the dashboard against a real hub: time to first paint, and the
// main thread's busy time and frame rate while entries come at 1k and 10k
// per second. Writes .cache/ui-artifacts/perf.json.
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { artifacts, launch, screenshot, startReplay, type Replay } from "./harness";

let replay: Replay;
let browser: Browser;
const results: Record<string, unknown> = {};

beforeAll(async () => {
  replay = await startReplay(50);
  browser = await launch();
});

afterAll(async () => {
  writeFileSync(path.join(artifacts, "perf.json"), JSON.stringify(results, null, 2) + "\n");
  console.log("dashboard performance:\n" + JSON.stringify(results, null, 2));
  await browser?.close();
  await replay?.stop();
});

test("time to first paint", async () => {
  const runs: { fp: number; fcp: number; dcl: number; firstEntry: number }[] = [];
  for (let i = 0; i < 3; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 820 } });
    const page = await ctx.newPage();
    await page.goto(replay.url);
    await page.waitForSelector('[data-testid="entry-row"]', { timeout: 15_000 });
    const firstEntry = await page.evaluate(() => performance.now());
    const t = await page.evaluate(() => {
      const paint = Object.fromEntries(performance.getEntriesByType("paint").map((p) => [p.name, p.startTime]));
      const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
      return { fp: paint["first-paint"], fcp: paint["first-contentful-paint"], dcl: nav.domContentLoadedEventEnd };
    });
    runs.push({ ...t, firstEntry });
    await ctx.close();
  }
  const median = (k: keyof (typeof runs)[0]) => runs.map((r) => r[k]).sort((a, b) => a - b)[1];
  results.firstPaint = {
    firstPaintMs: Math.round(median("fp")),
    firstContentfulPaintMs: Math.round(median("fcp")),
    domContentLoadedMs: Math.round(median("dcl")),
    firstEntryShownMs: Math.round(median("firstEntry")),
    note: "median of 3 cold loads, from the navigation to the ?token= URL (the hub's redirect included)",
  };
  expect(median("fcp")).toBeLessThan(5000);
});

/** measure loads the page at rate entries/s and samples it for ms. */
async function measure(page: Page, rate: number, ms: number) {
  await replay.setRate(rate);
  await page.waitForTimeout(3000); // warm up: the feed fills, the JIT settles
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  const metrics = async () => Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
  const sentBefore = (await replay.stats()).sent as number;
  const dropsBefore = Number((await page.locator('[data-testid="drops"]').getAttribute("data-hub")) ?? 0);
  const m0 = await metrics();
  const frames = await page.evaluate(async (dur) => {
    let n = 0;
    let worst = 0;
    let last = performance.now();
    const long: number[] = [];
    const obs = new PerformanceObserver((l) => l.getEntries().forEach((e) => long.push(e.duration)));
    obs.observe({ type: "longtask", buffered: false });
    await new Promise<void>((resolve) => {
      const end = last + dur;
      const tick = (now: number) => {
        n++;
        worst = Math.max(worst, now - last);
        last = now;
        if (now < end) requestAnimationFrame(tick);
        else resolve();
      };
      requestAnimationFrame(tick);
    });
    obs.disconnect();
    return { n, worst, long };
  }, ms);
  const m1 = await metrics();
  const sent = ((await replay.stats()).sent as number) - sentBefore;
  const dropped = Number((await page.locator('[data-testid="drops"]').getAttribute("data-hub")) ?? 0) - dropsBefore;
  // A click while entries pour in: how long until the detail shows.
  const clickMs = await page.evaluate(async () => {
    const rows = document.querySelectorAll<HTMLElement>('[data-testid="entry-row"]');
    const row = rows[Math.floor(rows.length / 2)];
    const t0 = performance.now();
    row.click();
    await new Promise<void>((resolve) => {
      const check = () => (document.querySelector('[data-testid="detail"]') ? resolve() : requestAnimationFrame(check));
      check();
    });
    return performance.now() - t0;
  });
  await page.locator('button[aria-label="close detail"]').click();
  await cdp.detach();
  const secs = (m1.Timestamp - m0.Timestamp) || ms / 1000;
  return {
    rateAsked: rate,
    entriesPerSecondSent: Math.round(sent / (ms / 1000)),
    entriesDroppedByHubForThePage: dropped,
    mainThreadBusyPercent: Math.round((1000 * (m1.TaskDuration - m0.TaskDuration)) / secs) / 10,
    scriptPercent: Math.round((1000 * (m1.ScriptDuration - m0.ScriptDuration)) / secs) / 10,
    layoutAndStylePercent: Math.round((1000 * (m1.LayoutDuration - m0.LayoutDuration + m1.RecalcStyleDuration - m0.RecalcStyleDuration)) / secs) / 10,
    fps: Math.round((frames.n / (ms / 1000)) * 10) / 10,
    worstFrameMs: Math.round(frames.worst),
    longTasks: frames.long.length,
    clickToDetailMs: Math.round(clickMs),
  };
}

test("busy time and frame rate at 1k and 10k entries/s", async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 820 } });
  await page.goto(replay.url);
  await page.waitForSelector('[data-testid="entry-row"]');
  if (process.env.PERF_BASELINE) {
    results.at0 = await measure(page, 0, 5000);
    results.at100 = await measure(page, 100, 5000);
  }
  const r1k = await measure(page, 1000, 5000);
  await screenshot(page, "perf-1k");
  const r10k = await measure(page, 10_000, 5000);
  await screenshot(page, "perf-10k");
  await replay.setRate(50);
  results.at1k = r1k;
  results.at10k = r10k;
  // The numbers depend on the machine and what else runs on it: they are
  // reported, with the load average; the test fails only when the page
  // stops answering (PERF_STRICT=1 holds it to smoothness).
  results.loadAverage = os.loadavg().map((l) => Math.round(l * 10) / 10);
  results.cpus = os.cpus().length;
  for (const r of [r1k, r10k]) {
    expect(r.fps).toBeGreaterThan(1);
    expect(r.clickToDetailMs).toBeLessThan(3000);
  }
  if (process.env.PERF_STRICT) {
    expect(r1k.fps).toBeGreaterThan(30);
    expect(r1k.clickToDetailMs).toBeLessThan(200);
    expect(r10k.fps).toBeGreaterThan(20);
    expect(r10k.clickToDetailMs).toBeLessThan(300);
  }
});

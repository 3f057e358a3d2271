// Run by test/e2e/ui_test.go against `kubectl shark ui -n demo` on the
// local cluster: SHARK_UI_URL is the address the plugin printed. Skipped
// otherwise.
import { afterAll, beforeAll, expect, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { launch, screenshot, visibleRows } from "./harness";

const url = process.env.SHARK_UI_URL ?? "";
const namespace = process.env.SHARK_UI_NAMESPACE ?? "demo";
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!url) return;
  browser = await launch();
  page = await browser.newPage({ viewport: { width: 1400, height: 820 } });
});

afterAll(async () => {
  await browser?.close();
});

test.skipIf(!url)("the dashboard of a live session shows the demo's traffic", async () => {
  await page.goto(url);
  expect(page.url()).not.toContain("token=");
  await page.waitForSelector('[data-testid="conn"][data-phase="open"]', { timeout: 30_000 });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="entry-row"]').length >= 10, null, { timeout: 90_000 });
  const rows = await visibleRows(page);
  expect(rows.some((r) => r.text.includes(namespace + "/"))).toBe(true);
  const protos = new Set(rows.map((r) => r.proto));
  expect(protos.size).toBeGreaterThan(1);
  await screenshot(page, "cluster-feed");

  await page.locator('[data-testid="entry-row"]').first().click();
  await page.locator('[data-testid="detail"]').waitFor();
  await screenshot(page, "cluster-detail");

  await page.click('[data-testid="tab-map"]');
  await page.waitForFunction(
    (ns) => [...document.querySelectorAll('[data-testid="map-edge"]')].some((e) => (e.getAttribute("data-to") ?? "").startsWith(ns + "/")),
    namespace,
    { timeout: 30_000 },
  );
  await screenshot(page, "cluster-map");
});

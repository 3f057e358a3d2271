import { afterAll, beforeAll, expect, test } from "vitest";
import type { Browser } from "playwright-core";
import { launch, screenshot, startReplay, type Replay } from "./harness";

let replay: Replay;
let browser: Browser;

beforeAll(async () => {
  replay = await startReplay(40);
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  await replay?.stop();
});

test("smoke", async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  const errors: string[] = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(replay.url);
  await page.waitForSelector('[data-testid="entry-row"]', { timeout: 15_000 });
  await page.waitForTimeout(1500);
  await screenshot(page, "smoke-feed");
  await page.click('[data-testid="entry-row"]');
  await screenshot(page, "smoke-detail");
  await page.click('[data-testid="tab-map"]');
  await page.waitForTimeout(1200);
  await screenshot(page, "smoke-map");
  expect(errors).toEqual([]);
});

// Browser tests of the dashboard against a real hub (hack/uireplay) fed
// by a replay of recorded entries. Screenshots go to .cache/ui-artifacts.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { artifacts, launch, screenshot, startReplay, visibleRows, type Replay } from "./harness";

let replay: Replay;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  replay = await startReplay(40);
  browser = await launch();
  page = await browser.newPage({ viewport: { width: 1400, height: 820 }, acceptDownloads: true });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && pageErrors.push(m.text()));
});

afterAll(async () => {
  await browser?.close();
  await replay?.stop();
});

const input = () => page.locator('[data-testid="filter-input"]');

async function applyFilter(expr: string) {
  await input().fill(expr);
  await input().press("Enter");
}

/** waitApplied waits until the hub applied expr: the URL says so. */
async function waitApplied(expr: string) {
  await page.waitForFunction((want) => (new URLSearchParams(location.search).get("filter") ?? "") === want, expr, { timeout: 10_000 });
}

/** settle waits for a smooth scroll to end. */
async function settle(_el: import("playwright-core").Locator) {
  await page.waitForTimeout(400);
}

async function waitRows(n: number) {
  await page.waitForFunction((k) => document.querySelectorAll('[data-testid="entry-row"]').length >= k, n, { timeout: 20_000 });
}

describe("dashboard", () => {
  test("opens on the printed URL, and the token leaves the address", async () => {
    await page.goto(replay.url);
    expect(page.url()).toBe(replay.origin + "/");
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === "shark_token")).toMatchObject({ httpOnly: true, sameSite: "Strict" });
    await page.waitForSelector('[data-testid="conn"][data-phase="open"]', { timeout: 10_000 });
  });

  test("the feed renders and scrolls", async () => {
    await waitRows(20);
    const rows = await visibleRows(page);
    expect(rows[0].text).toMatch(/\d\d:\d\d:\d\d\.\d{3}/);
    expect(rows.some((r) => r.text.includes("shop/frontend-6d9b7c8f5-a1b2c → shop/catalog-7c9f8d6b5-2kq4m"))).toBe(true);
    expect(new Set(rows.map((r) => r.proto))).toEqual(expect.objectContaining({ size: expect.any(Number) }));
    // Enough entries to scroll: more than a screen.
    await replay.setRate(400);
    await page.waitForFunction(() => {
      const b = document.querySelector('[data-testid="feed-body"]')!;
      return b.scrollHeight > 3 * b.clientHeight;
    });
    await replay.setRate(40);
    const body = page.locator('[data-testid="feed-body"]');
    // Following the tail: the last row is the newest.
    const lastBefore = (await visibleRows(page)).at(-1)!.id;
    await page.waitForTimeout(600);
    expect((await visibleRows(page)).at(-1)!.id).not.toBe(lastBefore);
    // Scrolled up, the list stays on the same entries while new ones come.
    await body.hover();
    // A wheel turn scrolls a bounded distance: turn until the top.
    for (let i = 0; i < 10 && (await body.evaluate((el) => el.scrollTop)) > 0; i++) {
      await page.mouse.wheel(0, -30_000);
      await settle(body);
    }
    const top = await visibleRows(page);
    expect(await body.evaluate((el) => el.scrollTop)).toBe(0);
    await page.waitForTimeout(800);
    expect((await visibleRows(page)).slice(0, 5).map((r) => r.id)).toEqual(top.slice(0, 5).map((r) => r.id));
    await screenshot(page, "feed-scrolled-up");
    // Back at the bottom, it follows again.
    for (let i = 0; i < 10 && (await body.evaluate((el) => el.scrollTop + el.clientHeight < el.scrollHeight - 2)); i++) {
      await page.mouse.wheel(0, 30_000);
      await settle(body);
    }
    const tail = (await visibleRows(page)).at(-1)!.id;
    await page.waitForTimeout(800);
    expect((await visibleRows(page)).at(-1)!.id).not.toBe(tail);
    await screenshot(page, "feed");
  });

  test("the filter narrows the feed, lives in the URL, and shows errors inline", async () => {
    await applyFilter('proto == "dns"');
    await waitApplied('proto == "dns"');
    await waitRows(5);
    await page.waitForTimeout(500);
    const protos = new Set((await visibleRows(page)).map((r) => r.proto));
    expect([...protos]).toEqual(["dns"]);

    // An unknown name: the hub's error, with its position, under the box.
    await applyFilter('proto == "dns" && stauts == "x"');
    const err = page.locator('[data-testid="filter-error"]');
    await err.waitFor({ timeout: 10_000 });
    expect(await err.innerText()).toContain("1:19");
    expect(await err.innerText()).toContain("undeclared reference to 'stauts'");
    expect(await err.locator("pre").innerText()).toBe('proto == "dns" && stauts == "x"\n' + " ".repeat(18) + "^");
    expect(await input().getAttribute("aria-invalid")).toBe("true");
    // The old filter stays in force.
    expect(new URL(page.url()).searchParams.get("filter")).toBe('proto == "dns"');
    await screenshot(page, "filter-error-name");

    // Bad syntax.
    await applyFilter('proto == "dns" &&');
    await page.waitForFunction(() => document.querySelector('[data-testid="filter-error"]')?.textContent?.includes("Syntax error"), null, { timeout: 10_000 });
    const syntax = await err.innerText();
    expect(syntax).toMatch(/1:\d+/);
    await screenshot(page, "filter-error-syntax");
    expect([...new Set((await visibleRows(page)).map((r) => r.proto))]).toEqual(["dns"]);

    // A shared view: the URL's filter applies on load.
    await page.goto(replay.origin + "/?filter=" + encodeURIComponent('proto == "grpc"'));
    await waitApplied('proto == "grpc"');
    expect(await input().inputValue()).toBe('proto == "grpc"');
    await waitRows(3);
    expect([...new Set((await visibleRows(page)).map((r) => r.proto))]).toEqual(["grpc"]);
    // A shared view with a bad filter shows nothing but the error.
    await page.goto(replay.origin + "/?filter=" + encodeURIComponent("proto = 1"));
    await err.waitFor({ timeout: 10_000 });
    await page.waitForTimeout(500);
    expect(await page.locator('[data-testid="entry-row"]').count()).toBe(0);
    await page.locator('[data-testid="filter-input"]').fill("");
    await input().press("Enter");
    await waitApplied("");
    await waitRows(5);
  });

  test("clicking an entry shows its headers and body; clicking a value filters by it", async () => {
    const expr = 'proto == "http" && method == "GET" && path == "/api/items" && status == "200"';
    await applyFilter(expr);
    await waitApplied(expr);
    await waitRows(1);
    const row = page.locator('[data-testid="entry-row"]').first();
    const id = await row.getAttribute("data-id");
    await row.click();
    const detail = page.locator('[data-testid="detail"]');
    await detail.waitFor();
    expect(await detail.getAttribute("data-id")).toBe(id);
    const reqHeaders = await detail.locator('[data-testid="request-headers"]').innerText();
    expect(reqHeaders).toMatch(/user-agent\s+\S+/);
    const respHeaders = await detail.locator('[data-testid="response-headers"]').innerText();
    expect(respHeaders).toMatch(/content-type\s+application\/json/);
    const body = detail.locator('[data-testid="response-body"]');
    expect(await body.getAttribute("class")).toContain("json");
    const text = await body.innerText();
    expect(text.startsWith("[\n  {\n")).toBe(true); // pretty-printed
    expect(JSON.parse(text)[0]).toHaveProperty("sku");
    expect(await detail.locator('[data-testid="tls"]').innerText()).toBe("no");
    expect(await detail.locator('[data-testid="timing"]').innerText()).toContain("duration");
    await screenshot(page, "detail");

    // Two recordings make these requests, as frontend and as loadgen: the
    // first row may be either.
    const workload = detail.locator('button.fv[data-field="src.workload"]');
    const client = await workload.innerText();
    expect(["frontend", "loadgen"]).toContain(client);
    await workload.click();
    const next = expr + ` && src.workload == "${client}"`;
    await waitApplied(next);
    expect(await input().inputValue()).toBe(next);
    await waitRows(1);
    for (const r of await visibleRows(page)) expect(r.text).toContain(`shop/${client}-`);
  });

  test("pause holds the list and counts what comes", async () => {
    await applyFilter("");
    await waitApplied("");
    await waitRows(10);
    await page.click('[data-testid="pause"]');
    try {
      // Entries that came before the click may still be drawn: one redraw.
      await page.locator('[data-testid="paused-count"]').waitFor();
      await page.waitForTimeout(300);
      const held = (await visibleRows(page)).map((r) => r.id);
      await page.waitForTimeout(1500);
      expect((await visibleRows(page)).map((r) => r.id)).toEqual(held);
      const count = Number(await page.locator('[data-testid="paused-count"]').innerText());
      expect(count).toBeGreaterThan(20);
      await screenshot(page, "paused");
      await page.click('[data-testid="pause"]');
      await page.waitForTimeout(300);
      expect((await visibleRows(page)).map((r) => r.id)).not.toEqual(held);
      expect(await page.locator('[data-testid="paused-count"]').count()).toBe(0);
    } finally {
      if (await page.locator('[data-testid="paused-count"]').count()) await page.click('[data-testid="pause"]');
    }
  });

  test("the drop counter shows the workers' drops", async () => {
    await replay.setDrops({ kernel: 7, queue: 2, entries: 3 });
    const drops = page.locator('[data-testid="drops"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="drops"]')?.textContent?.includes("9 packets"), null, { timeout: 10_000 });
    expect(await drops.innerText()).toContain("3 entries (workers → hub)");
    await replay.setDrops({ kernel: 0, queue: 0, entries: 0 });
  });

  test("the service map shows the expected edges, under the same filter", async () => {
    await page.click('[data-testid="tab-map"]');
    const want = [
      ["shop/frontend", "shop/catalog", "http"],
      ["shop/frontend", "kube-system/coredns", "dns"],
      ["shop/checkout", "shop/payments", "grpc"],
      ["shop/checkout", "shop/inventory", "http2"],
      ["shop/checkout", "shop/orders", "http2"],
      ["shop/loadgen", "shop/catalog", "http"],
      ["shop/loadgen", "kube-system/coredns", "dns"],
      ["shop/loadgen", "shop/payments", "grpc"],
    ];
    const edges = () =>
      page.$$eval('[data-testid="map-edge"]', (els) =>
        els.map((el) => [el.getAttribute("data-from"), el.getAttribute("data-to"), el.getAttribute("data-proto"), Number(el.getAttribute("data-count"))] as const),
      );
    // Every client's edges show up within a round of the replay.
    await page.waitForFunction(
      (w) => {
        const have = new Set([...document.querySelectorAll('[data-testid="map-edge"]')].map((el) => ["from", "to", "proto"].map((k) => el.getAttribute("data-" + k)).join(" ")));
        return w.every((e) => have.has(e.join(" ")));
      },
      want,
      { timeout: 30_000 },
    );
    const got = await edges();
    for (const w of want) expect(got.map((e) => e.slice(0, 3))).toContainEqual(w);
    for (const e of got) expect(e[3]).toBeGreaterThan(0);
    const nodes = await page.$$eval('[data-testid="map-node"]', (els) => els.map((el) => el.getAttribute("data-label")).sort());
    expect(nodes).toEqual(["kube-system/coredns", "shop/catalog", "shop/checkout", "shop/frontend", "shop/inventory", "shop/loadgen", "shop/orders", "shop/payments"]);
    // Every edge has an error rate and latency quantiles.
    const firstRow = await page.locator('[data-testid="map-edge"]').first().innerText();
    expect(firstRow).toMatch(/\d+\.\d%\s+\S+(µs|ms|s)\s+\S+(µs|ms|s)/);
    await screenshot(page, "map");

    await applyFilter('proto == "grpc"');
    await waitApplied('proto == "grpc"');
    // Both grpc clients show up within a round of the replay.
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('[data-testid="map-edge"]')];
      return rows.length >= 2 && rows.every((r) => r.getAttribute("data-proto") === "grpc");
    }, null, { timeout: 30_000 });
    const grpc = (await edges()).map((e) => e.slice(0, 3));
    expect(grpc.sort()).toEqual([
      ["shop/checkout", "shop/payments", "grpc"],
      ["shop/loadgen", "shop/payments", "grpc"],
    ]);
    await screenshot(page, "map-grpc");
    await page.click('[data-testid="tab-feed"]');
  });

  test("the pcap of an entry's flow is a file tshark reads", async () => {
    await page.click('[data-testid="tab-feed"]');
    await applyFilter('proto == "http" && method == "POST"');
    await waitApplied('proto == "http" && method == "POST"');
    await waitRows(1);
    await page.locator('[data-testid="entry-row"]').first().click();
    const detail = page.locator('[data-testid="detail"]');
    const flowText = await detail.locator('[data-testid="flow"]').innerText();
    const m = /127\.0\.0\.1:(\d+) → 127\.0\.0\.1:(\d+)/.exec(flowText)!;
    const [cport, sport] = [m[1], m[2]];
    const [download] = await Promise.all([page.waitForEvent("download"), detail.locator('[data-testid="pcap-download"]').click()]);
    const file = path.join(artifacts, "flow.pcapng");
    await download.saveAs(file);
    expect(await download.failure()).toBeNull();
    const out = execFileSync("tshark", ["-r", file, "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "frame.interface_name"], { encoding: "utf8" });
    const lines = out.trim().split("\n");
    expect(lines.length).toBeGreaterThan(3); // handshake, request, response
    for (const l of lines) {
      const [a, b, iface] = l.split("\t");
      expect([a, b].sort()).toEqual([cport, sport].sort());
      expect(iface).toMatch(/^shop\/frontend-|^shop\/loadgen-/);
    }
    const http = execFileSync("tshark", ["-r", file, "-Y", "http.request", "-T", "fields", "-e", "http.request.method"], { encoding: "utf8" });
    expect(http.trim().split("\n")).toContain("POST");
    await applyFilter("");
    await waitApplied("");
  });

  test("after the hub restarts, the page reconnects", async () => {
    await page.click('[data-testid="tab-feed"]');
    await waitRows(5);
    const conn = page.locator('[data-testid="conn"]');
    const restarting = replay.restart("2s");
    await page.waitForSelector('[data-testid="conn"]:not([data-phase="open"])', { timeout: 10_000 });
    await screenshot(page, "reconnecting");
    await restarting;
    await page.waitForSelector('[data-testid="conn"][data-phase="open"]', { timeout: 20_000 });
    expect(await conn.innerText()).toContain("live");
    // Entries flow again.
    const last = (await visibleRows(page)).at(-1)!.id;
    await page.waitForFunction((id) => {
      const rows = document.querySelectorAll('[data-testid="entry-row"]');
      return rows.length > 0 && rows[rows.length - 1].getAttribute("data-id") !== id;
    }, last, { timeout: 15_000 });
    await screenshot(page, "reconnected");
    expect(((await replay.stats()).connections as number) >= 2).toBe(true);
  });

  test("a hub that no longer takes the page's token says so", async () => {
    await replay.restart("200ms", true);
    const banner = page.locator('[data-testid="refused"]');
    await banner.waitFor({ timeout: 20_000 });
    expect(await banner.innerText()).toContain("kubectl shark ui");
    expect(await page.locator('[data-testid="conn"]').getAttribute("data-phase")).not.toBe("open");
    await screenshot(page, "refused");
  });

  test("no errors in the page", () => {
    // A restarting hub makes the browser log failed WebSocket handshakes,
    // and one with another token 401s.
    expect(pageErrors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(e))).toEqual([]);
  });
});

// Shared by the browser tests: a real hub served by hack/uireplay, and
// Debian's chromium driven by playwright-core.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const artifacts = path.join(repoRoot, ".cache", "ui-artifacts");

/** Replay is a running hack/uireplay: a hub with a fake worker. */
export interface Replay {
  /** The address `kubectl shark ui` would print, token included. */
  url: string;
  /** The page's address without the token (after the hub's redirect). */
  origin: string;
  control: string;
  proc: ChildProcess;
  log: string[];
  setRate(n: number): Promise<void>;
  restart(down: string, newToken?: boolean): Promise<void>;
  setDrops(q: Record<string, number>): Promise<void>;
  stats(): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

let built = "";

/** buildReplay compiles hack/uireplay once per run. */
function buildReplay(): string {
  if (built) return built;
  const out = path.join(repoRoot, ".cache", "bin", "uireplay");
  execFileSync("go", ["build", "-o", out, "./hack/uireplay"], { cwd: repoRoot, stdio: "inherit" });
  built = out;
  return out;
}

/** readURLs waits for the Dashboard: and Control: lines of a process. */
export function readURLs(proc: ChildProcess, want: string[], log: string[], timeoutMs = 60_000): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const found: Record<string, string> = {};
    const timer = setTimeout(() => reject(new Error(`no ${want.join("/")} line within ${timeoutMs}ms:\n${log.join("\n")}`)), timeoutMs);
    const rl = createInterface({ input: proc.stdout! });
    rl.on("line", (line) => {
      log.push(line);
      const m = /^(\w+): (\S+)/.exec(line);
      if (m && want.includes(m[1])) found[m[1]] = m[2];
      if (want.every((k) => found[k])) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    proc.stderr?.on("data", (b) => log.push(String(b).trimEnd()));
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before printing ${want.join("/")}:\n${log.join("\n")}`));
    });
  });
}

export async function startReplay(rate: number, extra: string[] = []): Promise<Replay> {
  const bin = buildReplay();
  const log: string[] = [];
  const proc = spawn(bin, ["-rate", String(rate), "-testdata", path.join(repoRoot, "testdata"), ...extra], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const urls = await readURLs(proc, ["Dashboard", "Control"], log);
  const control = urls.Control;
  const post = async (p: string) => {
    const r = await fetch(control + p, { method: "POST" });
    if (!r.ok) throw new Error(`${p}: ${r.status} ${await r.text()}`);
  };
  return {
    url: urls.Dashboard,
    origin: new URL(urls.Dashboard).origin,
    control,
    proc,
    log,
    setRate: (n) => post(`/rate?n=${n}`),
    restart: (down, newToken) => post(`/restart?down=${down}${newToken ? "&newtoken=1" : ""}`),
    setDrops: (q) => post(`/drops?${new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)]))}`),
    stats: async () => (await (await fetch(control + "/stats")).json()) as Record<string, unknown>,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once("exit", () => resolve());
        proc.kill("SIGTERM");
      }),
  };
}

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, `${name}.png`) });
}

/** rows returns what the feed shows: each visible row's cells. */
export async function visibleRows(page: Page): Promise<{ id: string; proto: string; text: string }[]> {
  return page.$$eval('[data-testid="entry-row"]', (els) =>
    els.map((el) => ({ id: el.getAttribute("data-id") ?? "", proto: el.getAttribute("data-proto") ?? "", text: (el as HTMLElement).innerText })),
  );
}

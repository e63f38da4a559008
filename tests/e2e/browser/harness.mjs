// What the browser specs share: Debian's Chromium driven by playwright-core, the page
// loaded through a TCP proxy a spec can cut (so a dropped connection is a real one: the page
// has no test hooks), what the page and its sockets do seen from outside, and numbered
// steps. tests/e2e/test_browser.py starts the service and runs each spec; its exit code
// decides the test.
//
// Environment: AMPLIFY_BASE_URL (the service), ARTIFACTS_DIR (screenshots), CHROMIUM
// (default /usr/bin/chromium).

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const BASE = new URL(process.env.AMPLIFY_BASE_URL ?? "http://127.0.0.1:8080");
export const ARTIFACTS = process.env.ARTIFACTS_DIR ?? "test-artifacts";
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const WAIT_MS = 20000;
// Chromium's own complaints while the proxy refuses connections: expected then, and only then.
const NETWORK_ERROR = /WebSocket connection to .* failed|net::ERR_/;

/** A loopback TCP proxy to the service; cut() drops every connection and refuses new ones. */
async function proxyTo(target) {
  const open = new Set();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) return client.destroy();
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ]) {
      open.add(a);
      a.pipe(b);
      a.on("error", () => b.destroy());
      a.on("close", () => {
        open.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut(forMs) {
      refusing = true;
      for (const s of open) s.resetAndDestroy?.() ?? s.destroy();
      setTimeout(() => (refusing = false), forMs);
    },
    close: () => server.close(),
  };
}

/**
 * Runs `body(t)` in a fresh Chromium profile, then exits 0 when every step passed. `t`:
 * page, proxy, step(name, work), problems (page errors and console errors), sockets (one
 * {received, sent} per WebSocket the page opened), received() (every socket's events),
 * and network.down (set it while the proxy is cut: the browser's complaints are expected).
 * A failure leaves `${name}-failure.png` in ARTIFACTS.
 */
export async function run(name, body) {
  const proxy = await proxyTo(BASE);
  const profile = mkdtempSync(join(tmpdir(), "amplify-chromium-"));
  const launched = Date.now();
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--autoplay-policy=no-user-gesture-required",
    ],
  });
  console.log(`# chromium ${context.browser()?.version() ?? ""} started in ${Date.now() - launched} ms`);
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(WAIT_MS);

  const network = { down: false };
  const problems = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !(network.down && NETWORK_ERROR.test(msg.text())))
      problems.push(`console: ${msg.text()}`);
  });
  const sockets = [];
  page.on("websocket", (ws) => {
    const record = { received: [], sent: [] };
    sockets.push(record);
    ws.on("framereceived", (f) => record.received.push(JSON.parse(f.payload)));
    ws.on("framesent", (f) => record.sent.push(JSON.parse(f.payload)));
  });
  const received = () => sockets.flatMap((s) => s.received);

  let passed = 0;
  async function step(title, work) {
    const started = Date.now();
    await work();
    passed += 1;
    console.log(`ok ${passed} - ${title} (${Date.now() - started} ms)`);
  }

  let failed = false;
  try {
    await body({ page, proxy, step, problems, sockets, received, network });
  } catch (err) {
    failed = true;
    console.log(`not ok ${passed + 1} - ${err.stack ?? err}`);
    if (problems.length) console.log(`# ${problems.join("\n# ")}`);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, `${name}-failure.png`) }).catch(() => {});
  } finally {
    await context.close();
    proxy.close();
    rmSync(profile, { recursive: true, force: true });
  }
  console.log(`${passed} passed, ${failed ? 1 : 0} failed`);
  process.exit(failed ? 1 : 0);
}

/** GET `path` of the service as the signed-in page's user (its token, read from the tab). */
export async function getAsPage(page, path) {
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem("amplify.session")).token);
  const url = new URL(path, BASE);
  const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET ${url.pathname}: ${res.status} ${await res.text()}`);
  return res.json();
}

// The live editor's document settled: every edit acknowledged, and doc.analyzed for the
// last version.
export function liveSettled(page) {
  return page.waitForFunction(() => {
    const s = document.getElementById("live-status").dataset;
    return s.state === "saved" && s.analyzed === s.version;
  });
}

// The text the live editor's marks cover, per suggestion id (a mark is cut into pieces
// where suggestions overlap; each piece names every suggestion covering it).
export function markedText(page) {
  return page.$$eval("#live-marks mark", (marks) => {
    const out = {};
    for (const m of marks) for (const id of m.dataset.ids.split(" ")) out[id] = (out[id] ?? "") + m.textContent;
    return out;
  });
}

// The live editor page's story mode in Debian's Chromium, driven by playwright-core
// through harness.mjs: the page is loaded through a TCP proxy this script can cut, so a
// dropped connection is a real one (the page has no test hooks). tests/e2e/test_browser.py
// starts the service and runs this script; its exit code decides the test.
//
// Environment: harness.mjs's, AMPLIFY_STORY (the text to submit), and DOCS_SCREENSHOT
// (a path: also write the screenshot there, for the README).

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, BASE, WAIT_MS, run } from "./harness.mjs";

const STORY = process.env.AMPLIFY_STORY ?? 'Mara walked in. "Stay," she said quietly.';

await run("editor", async ({ page, proxy, step, problems, sockets, received, network }) => {
  const text = (selector) => page.locator(selector).textContent();

  await page.goto(`${proxy.url}/`);

  await step("modules: code points <-> UTF-16, overlapping spans", async () => {
    const result = await page.evaluate(async () => {
      const { Utf16Offsets, pieces } = await import("/static/spans.js");
      const offsets = new Utf16Offsets("a🌊b");
      offsets.append("🌊c");
      return {
        toUtf16: [0, 1, 2, 3, 4, 5].map((cp) => offsets.toUtf16(cp)),
        toCodePoint: [0, 1, 2, 3, 4, 5, 6, 7].map((u) => offsets.toCodePoint(u)),
        pieces: pieces([
          { start: 0, end: 4, id: "a" },
          { start: 2, end: 6, id: "b" },
        ]).map((p) => [p.start, p.end, p.spans.map((s) => s.id).join("")]),
      };
    });
    assert.deepEqual(result.toUtf16, [0, 1, 3, 4, 6, 7]);
    assert.deepEqual(result.toCodePoint, [0, 1, 2, 2, 3, 4, 4, 5]); // inside a pair: after it
    assert.deepEqual(result.pieces, [
      [0, 2, "a"],
      [2, 4, "ab"],
      [4, 6, "b"],
    ]);
  });

  await step("modules: a later attempt drops the deltas of earlier ones", async () => {
    const rewrite = await page.evaluate(async () => {
      const { StoryScreen } = await import("/static/story.js");
      const els = Object.fromEntries(
        ["original", "rewrite", "suggestions", "insights", "progress", "audio", "tip"].map((k) => [
          k,
          document.createElement(k === "audio" ? "audio" : "div"),
        ]),
      );
      const screen = new StoryScreen(els);
      screen.begin("Once.", { rewrite: true, audio: false });
      const events = [
        { type: "enhancement.started", attempt: 1, provider: "p", model: "m" },
        { type: "enhancement.delta", attempt: 1, text: "stale " },
        { type: "enhancement.reset", attempt: 2, reason: "worker died" },
        { type: "enhancement.delta", attempt: 1, text: "late " },
        { type: "enhancement.delta", attempt: 2, text: "fresh" },
      ];
      events.forEach((e) => screen.apply(e));
      return screen.rewriteText;
    });
    assert.equal(rewrite, "fresh");
  });

  await step("a wrong password shows the service's error message", async () => {
    await page.fill("#username", "nobody-here");
    await page.fill("#password", "not the password");
    await page.click("#account button[type=submit]");
    await page.locator("#error").filter({ hasText: "Wrong username or password." }).waitFor();
    // Chromium logs the refused request itself: expected here, and only here.
    const refused = problems.findIndex((p) => p.includes("status of 401"));
    if (refused >= 0) problems.splice(refused, 1);
  });

  const username = `writer-${Date.now()}`;
  await step("sign up, signed in, socket open", async () => {
    await page.fill("#username", username);
    await page.fill("#password", "correct horse battery");
    await page.click("#signup");
    await page.locator("#who").filter({ hasText: username }).waitFor();
    await page.locator('#connection[data-state="open"]').waitFor();
    assert.equal(await page.locator("#error").isHidden(), true);
  });

  await page.fill("#story", STORY);
  await page.click("#submit");

  await step("the rewrite grows while the story is still streaming", async () => {
    await page.waitForFunction(() => document.getElementById("rewrite").textContent.length > 0);
    const first = (await text("#rewrite")).length;
    await page.waitForFunction(
      (n) =>
        document.getElementById("rewrite").textContent.length > n &&
        document.getElementById("progress").textContent.startsWith("Rewriting"),
      first,
    );
  });

  await step("a suggestion is marked in the original at its span, as it arrives", async () => {
    await page.locator("#original mark").first().waitFor();
    // Marked while the rewrite still streams, not with its end.
    assert.ok(
      !received().some((e) => e.type === "enhancement.completed"),
      "the first suggestion was marked only once the rewrite had ended",
    );
    const marks = await page.$$eval("#original mark", (ms) =>
      ms.map((m) => ({ ids: m.dataset.ids, text: m.textContent })),
    );
    const quotes = new Map(
      received()
        .filter((e) => e.type === "suggestion")
        .map((s) => [s.id, s.quote]),
    );
    const single = marks.filter((m) => !m.ids.includes(" "));
    assert.ok(single.length > 0, "no mark of a single suggestion");
    for (const m of single) assert.equal(m.text, quotes.get(m.ids), `mark of ${m.ids}`);
  });

  let cutAt;
  await step("the connection is cut mid-stream", async () => {
    assert.equal(
      received().some((e) => e.type === "enhancement.completed"),
      false,
      "too late: the rewrite is complete",
    );
    cutAt = sockets.length;
    network.down = true;
    proxy.cut(1500);
    await page.locator('#connection[data-state="waiting"]').waitFor();
  });

  await step("the page reconnects, resumes after its last cursor, and finishes", async () => {
    await page.locator('#connection[data-state="open"]').waitFor();
    network.down = false;
    await page.locator("#progress").filter({ hasText: "Done." }).waitFor({ timeout: 40000 });
    const before = sockets[cutAt - 1].received.filter((e) => e.cursor);
    const resumes = sockets.slice(cutAt).flatMap((s) => s.sent.filter((f) => f.type === "story.resume"));
    assert.ok(resumes.length >= 1, "no story.resume was sent");
    assert.equal(
      resumes[0].cursor,
      before.at(-1).cursor,
      "resumed from another cursor than the last one seen",
    );
    // Each event exactly once across the sockets: the cursors never repeat.
    const cursors = received()
      .filter((e) => e.cursor)
      .map((e) => e.cursor);
    assert.equal(new Set(cursors).size, cursors.length, "an event arrived twice");
  });

  const accepted = received().find((e) => e.type === "story.accepted");
  const completed = received().find((e) => e.type === "enhancement.completed");
  await step("the rewrite on the page is the final text", async () => {
    const shown = await page.evaluate(() => document.getElementById("rewrite").textContent);
    const deltas = received()
      .filter((e) => e.type === "enhancement.delta")
      .map((e) => e.text)
      .join("");
    assert.equal(deltas, completed.text, "the deltas across both sockets do not add up to the text");
    assert.equal(shown, completed.text);
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem("amplify.session")).token);
    const stored = await storedStory(accepted.story_id, token);
    assert.equal(stored.status, "completed", `GET /v1/stories/{id}: ${JSON.stringify(stored)}`);
    assert.equal(shown, stored.enhanced_text, "differs from GET /v1/stories/{id}");
  });

  await step("the narration plays from the streamed chunks; the spoken word is lit", async () => {
    await page.waitForFunction(() => {
      const audio = document.getElementById("narration");
      return audio.buffered.length > 0 && audio.currentTime > 0.5;
    });
    assert.match(await page.$eval("#narration", (a) => a.src), /^blob:/);
    assert.equal(await page.evaluate(() => MediaSource.isTypeSupported("audio/mpeg")), true);
    const spoken = await page.evaluate(async () => {
      for (let i = 0; i < 100 && !CSS.highlights.get("spoken"); i += 1)
        await new Promise((r) => setTimeout(r, 50));
      const range = [...(CSS.highlights.get("spoken") ?? [])][0];
      return range?.toString() ?? null;
    });
    const words = new Set(
      received()
        .filter((e) => e.type === "audio.word")
        .map((w) => w.text),
    );
    assert.ok(words.has(spoken), `the lit text ${JSON.stringify(spoken)} is not a spoken word`);
  });

  const chunks = received().filter((e) => e.type === "audio.chunk");
  const audioDone = received().find((e) => e.type === "audio.completed");
  await step("every audio chunk arrived once across the cut: the bytes hash to audio.completed", async () => {
    assert.deepEqual(
      chunks.map((c) => c.index),
      chunks.map((_, i) => i),
    );
    const bytes = Buffer.concat(chunks.map((c) => Buffer.from(c.data, "base64")));
    assert.equal(bytes.length, audioDone.bytes);
    assert.equal(createHash("sha256").update(bytes).digest("hex"), audioDone.sha256);
  });

  await step("without MSE for audio/mpeg, the same chunks play as one Blob", async () => {
    const played = await page.evaluate(
      async (data) => {
        const { Narration } = await import("/static/audio.js");
        const supported = MediaSource.isTypeSupported;
        MediaSource.isTypeSupported = () => false;
        try {
          const audio = Object.assign(document.createElement("audio"), { muted: true });
          const narration = new Narration(audio, { word() {} });
          narration.start();
          data.forEach((d, i) => narration.chunk(i, d));
          narration.complete();
          await new Promise((resolve, reject) => {
            audio.addEventListener("loadedmetadata", resolve, { once: true });
            audio.addEventListener("error", () => reject(new Error(audio.error?.message)), { once: true });
          });
          return { src: audio.src, duration: audio.duration };
        } finally {
          MediaSource.isTypeSupported = supported;
        }
      },
      chunks.map((c) => c.data),
    );
    assert.match(played.src, /^blob:/);
    assert.ok(Math.abs(played.duration - audioDone.duration_ms / 1000) < 1.5, JSON.stringify(played));
  });

  await step("insights for every focus", async () => {
    assert.deepEqual(await page.$$eval("#insights h3", (hs) => hs.map((h) => h.textContent)), [
      "Plot",
      "Character",
      "Dialogue",
      "Setting",
    ]);
  });

  await step("hovering a mark shows its message and replacement", async () => {
    const withReplacement = received().find(
      (e) => e.type === "suggestion" && e.replacement && e.start_utf16 != null,
    );
    const mark = page.locator(`#original mark[data-ids~="${withReplacement.id}"]`).first();
    await mark.hover();
    await page.locator("#tip").waitFor();
    const tip = await text("#tip");
    assert.ok(tip.includes(withReplacement.message) && tip.includes(withReplacement.replacement), tip);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "editor.png") });
    if (process.env.DOCS_SCREENSHOT) copyFileSync(join(ARTIFACTS, "editor.png"), process.env.DOCS_SCREENSHOT);
  });

  await step("cancel stops a running story", async () => {
    await page.mouse.move(0, 0);
    await page.click("#edit");
    await page.click("#submit");
    await page.locator("#progress").filter({ hasText: "Rewriting" }).waitFor();
    await page.click("#cancel");
    await page.locator("#progress").filter({ hasText: "Cancelled." }).waitFor();
    assert.equal(await page.locator("#submit").isEnabled(), true);
  });

  await step("a refused submission says why and gives the editor back", async () => {
    await page.click("#edit");
    await page.fill("#story", "x".repeat(50001));
    await page.click("#submit");
    await page.locator("#error").filter({ hasText: "the limit is 50000" }).waitFor();
    assert.equal(await page.locator("#story").isVisible(), true);
    assert.equal(await page.locator("#submit").isEnabled(), true);
  });

  await step("no page errors, no blocked resources (the CSP allows everything the page does)", async () => {
    assert.deepEqual(problems, []);
  });
});

/** GET /v1/stories/{id} once its status is final: the store follows the stream, and may lag
 * it. Any answer but 200 (a 404 or 405 too: the route exists) fails at once. */
async function storedStory(id, token) {
  const url = new URL(`/v1/stories/${id}`, BASE);
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET ${url.pathname}: ${res.status} ${await res.text()}`);
    const story = await res.json();
    if (["completed", "failed", "cancelled"].includes(story.status)) return story;
    if (Date.now() > deadline)
      throw new Error(`GET ${url.pathname}: still ${story.status} after ${WAIT_MS} ms, not final`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// The live editor page's live mode (docs/protocol.md section 6) in Debian's Chromium,
// through harness.mjs: a writer types key by key and the service's marks appear over the
// words, move with the text, and go the instant their words are deleted (the page's own
// shifting rule, before the service answers); a replacement applies as an edit; a dropped
// connection reopens the document and the writer carries on; the store ends with the text
// the page shows. tests/e2e/test_browser.py starts the service (with a short
// AMPLIFY_DOC_IDLE_MS) and runs this script; its exit code decides the test.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, WAIT_MS, getAsPage, liveSettled, markedText, run } from "./harness.mjs";

const SENTENCE = "Mara was very angry at the wall.";
const KEY_DELAY_MS = 15; // between keys: a quick writer, several edits a second

await run("live", async ({ page, proxy, step, problems, sockets, received, network }) => {
  const type = (text) => page.keyboard.type(text, { delay: KEY_DELAY_MS });
  const value = () => page.inputValue("#live-text");
  const status = () => page.$eval("#live-status", (s) => ({ ...s.dataset }));
  const settled = () => liveSettled(page);
  const covered = () => markedText(page);
  const quotes = () => new Map(received().flatMap((e) => (e.type === "doc.suggestion" ? [[e.id, e.quote]] : [])));
  const retracted = () => new Set(received().flatMap((e) => (e.type === "doc.retracted" ? e.ids : [])));
  /** Every mark covers exactly its suggestion's quote; the marked ids by quote. */
  async function marksHoldTheirQuotes() {
    const byId = await covered();
    const q = quotes();
    for (const [id, text] of Object.entries(byId)) assert.equal(text, q.get(id), `mark of ${id}`);
    return new Map(Object.keys(byId).map((id) => [q.get(id), id]));
  }

  await page.goto(`${proxy.url}/`);

  await step("modules: the diff, the shifting rule, a late suggestion placed", async () => {
    const result = await page.evaluate(async () => {
      const { change, diff, shift } = await import("/static/edits.js");
      const { LiveDocument } = await import("/static/live.js");
      const span = [{ start: 4, end: 14 }];
      const doc = LiveDocument.create("Mara was very angry.");
      doc.opened({ doc_id: "d", version: 0, text: "Mara was very angry." });
      doc.change(change(0, 0, "So "));
      doc.flush("r1");
      doc.change(change(0, 0, "🌊"));
      // Found in version 0: moved through version 1 and the unsent change since.
      doc.receive({ type: "doc.suggestion", id: "s", version: 0, start_utf16: 9, end_utf16: 19 });
      const placed = doc.quoteOf(doc.marks.get("s"));
      doc.change(change(doc.text.indexOf("very"), doc.text.indexOf("very") + 5, ""));
      return {
        pair: diff("a🌊", "a🌋"),
        same: diff("abc", "abc"),
        edges: [change(4, 4, "x"), change(14, 14, "x"), change(5, 5, "x"), change(2, 4, "")].map((c) => shift(span, c)),
        placed,
        afterDelete: doc.marks.size,
      };
    });
    assert.deepEqual(result.pair, { start_utf16: 1, end_utf16: 3, text: "🌋" }, "a surrogate pair cut in two");
    assert.equal(result.same, null);
    assert.deepEqual(result.edges, [[{ start: 5, end: 15 }], [{ start: 4, end: 14 }], [], [{ start: 2, end: 12 }]]);
    assert.equal(result.placed, "very angry");
    assert.equal(result.afterDelete, 0);
  });

  await step("sign up, socket open, live mode", async () => {
    await page.fill("#username", `live-${Date.now()}`);
    await page.fill("#password", "correct horse battery");
    await page.click("#signup");
    await page.locator('#connection[data-state="open"]').waitFor();
    await page.click("#mode-live");
    assert.equal(await page.locator("#story-mode").isHidden(), true);
    assert.equal(await page.evaluate(() => document.activeElement?.id), "live-text");
  });

  let docId;
  let marked;
  await step("typing key by key creates the document; marks appear over the words", async () => {
    await type(SENTENCE);
    await settled();
    assert.equal(await value(), SENTENCE);
    const opens = sockets.at(-1).sent.filter((f) => f.type === "doc.open");
    assert.equal(opens.length, 1, "one doc.open");
    assert.equal(opens[0].doc_id, undefined, "a new document");
    docId = received().find((e) => e.type === "doc.opened").doc_id;
    // The edits go out as consecutive versions, each a batch of what changed in a frame.
    const edits = sockets.at(-1).sent.filter((f) => f.type === "doc.edit");
    assert.deepEqual(
      edits.map((f) => f.version),
      edits.map((_, i) => i + 1),
    );
    marked = await marksHoldTheirQuotes();
    assert.ok(marked.has("very angry") && marked.has("was very angry"), JSON.stringify([...marked]));
    assert.equal((await covered())[marked.get("very angry")], "very angry");
  });

  await step("text typed before the marks moves them along at once", async () => {
    await page.keyboard.press("Control+Home");
    await type("Dawn. ");
    // Before the service has analyzed again: the page moved the marks itself.
    const now = await covered();
    assert.equal(now[marked.get("very angry")], "very angry");
    assert.equal(now[marked.get("was very angry")], "was very angry");
    await settled();
    marked = await marksHoldTheirQuotes();
    assert.equal((await covered())[marked.get("very angry")], "very angry");
  });

  await step("deleting the marked words takes their marks at once, before the service answers", async () => {
    const gone = [marked.get("very angry"), marked.get("was very angry")];
    await page.evaluate(() => {
      const text = document.getElementById("live-text");
      const at = text.value.indexOf("very angry");
      text.setSelectionRange(at, at + "very angry".length);
      // Looks right after the page's own input handler, in the same dispatch: what the
      // writer sees the instant the words go, before anything can have been sent.
      text.addEventListener(
        "input",
        () => {
          window.seenOnInput = {
            ids: [...document.querySelectorAll("#live-marks mark")].flatMap((m) => m.dataset.ids.split(" ")),
            status: { ...document.getElementById("live-status").dataset },
          };
        },
        { once: true },
      );
    });
    await page.keyboard.press("Backspace");
    const now = await page.evaluate(() => window.seenOnInput);
    assert.equal(await value(), "Dawn. Mara was  at the wall.");
    for (const id of gone) assert.ok(!now.ids.includes(id), `the mark of ${id} was still there`);
    // The deletion was not even sent then (edits go out on the next animation frame).
    assert.ok(Number(now.status.unsent) > 0, JSON.stringify(now.status));
    await settled();
    const after = await covered();
    for (const id of gone) assert.ok(!(id in after), `the mark of ${id} came back`);
    // The service came to the same: it retracted both.
    for (const id of gone) assert.ok(retracted().has(id), `the service did not retract ${id}`);
    await marksHoldTheirQuotes();
  });

  await step("a suggestion's replacement applies as an edit of its words", async () => {
    await page.keyboard.press("Control+End");
    await type("\nTom was very angry too.");
    await settled();
    marked = await marksHoldTheirQuotes();
    const id = marked.get("very angry");
    assert.ok(id, "no mark over the new line's words");
    await page.click(`#live-suggestions button[data-action="apply"][data-id="${id}"]`);
    assert.equal((await covered())[id], undefined, "the replaced words are still marked");
    assert.equal(await value(), "Dawn. Mara was  at the wall.\nTom was furious too.");
    await settled();
    await marksHoldTheirQuotes();
  });

  let cutAt;
  await step("a dropped connection: the page reopens the document and carries on", async () => {
    cutAt = sockets.length;
    network.down = true;
    proxy.cut(1500);
    await page.locator('#connection[data-state="waiting"]').waitFor();
    await page.focus("#live-text");
    await page.keyboard.press("Control+End");
    await type(" It rained."); // while offline: kept here, sent once the document is open again
    assert.equal((await status()).state, "offline");
    await page.locator('#connection[data-state="open"]').waitFor();
    network.down = false;
    await settled();
    const reopens = sockets.slice(cutAt).flatMap((s) => s.sent.filter((f) => f.type === "doc.open"));
    assert.equal(reopens[0]?.doc_id, docId, "no reopen of the document");
    assert.ok(
      sockets.slice(cutAt).some((s) => s.sent.some((f) => f.type === "doc.edit")),
      "nothing sent after the reopen",
    );
    assert.equal(await value(), "Dawn. Mara was  at the wall.\nTom was furious too. It rained.");
    await marksHoldTheirQuotes();
  });

  await step("another tab's edit first: the page's next one conflicts, it reopens and goes on", async () => {
    const before = await value();
    const version = Number((await status()).version);
    // Another tab of the same writer: its own socket, the same token, the next version.
    const ack = await page.evaluate(
      ([doc, next]) =>
        new Promise((resolve, reject) => {
          const token = JSON.parse(sessionStorage.getItem("amplify.session")).token;
          const ws = new WebSocket(`ws://${location.host}/v1/stream`, ["amplify.v1", `bearer.${token}`]);
          const change = { start_utf16: 0, end_utf16: 0, text: "Elsewhere. " };
          const edit = { type: "doc.edit", doc_id: doc, version: next, changes: [change] };
          ws.onopen = () => ws.send(JSON.stringify(edit));
          ws.onmessage = (m) => {
            const e = JSON.parse(m.data);
            if (e.type !== "doc.ack" && e.type !== "error") return;
            ws.close();
            resolve(e);
          };
          ws.onerror = () => reject(new Error("the other tab's socket failed"));
        }),
      [docId, version + 1],
    );
    assert.equal(ack.type, "doc.ack", JSON.stringify(ack));
    await page.focus("#live-text");
    await page.keyboard.press("Control+End");
    await page.keyboard.type("!"); // version + 1 again: refused, and the service's text wins
    await page.waitForFunction((t) => document.getElementById("live-text").value === t, `Elsewhere. ${before}`);
    const conflicts = received().filter((e) => e.type === "error" && e.code === "version_conflict");
    assert.equal(conflicts.length, 1, JSON.stringify(conflicts));
    await type(" Again.");
    await settled();
    assert.equal(await value(), `Elsewhere. ${before} Again.`);
    await marksHoldTheirQuotes();
  });

  await step("the store has the text, the version and the marks the page shows", async () => {
    const { version } = await status();
    const shown = await value();
    const ids = Object.keys(await covered()).sort();
    // The store is fed by the owner's snapshots (every AMPLIFY_DOC_SNAPSHOT_MS): it may lag.
    let stored;
    for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline; ) {
      stored = await getAsPage(page, `/v1/documents/${docId}`);
      const storedIds = stored.suggestions.map((s) => s.id).sort();
      if (stored.version === Number(version) && String(storedIds) === String(ids)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(stored.version, Number(version), "GET /v1/documents/{id}: another version");
    assert.equal(stored.text, shown, "GET /v1/documents/{id}: another text");
    assert.deepEqual(stored.suggestions.map((s) => s.id).sort(), ids, "GET /v1/documents/{id}: other suggestions");
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "live.png") });
  });

  await step("the marks' backdrop wraps and scrolls as the text area does", async () => {
    const line = "Mara was very angry at the wall, and the harbour lights went out one by one.";
    await page.fill("#live-text", Array.from({ length: 40 }, (_, i) => `${i}: ${line}`).join("\n"));
    await page.$eval("#live-text", (t) => (t.scrollTop = t.scrollHeight));
    await page.waitForFunction(() => {
      const [text, marks] = ["live-text", "live-marks"].map((id) => document.getElementById(id));
      return text.scrollTop > 0 && marks.scrollTop === text.scrollTop;
    });
    const [text, marks] = await page.evaluate(() =>
      ["live-text", "live-marks"].map((id) => {
        const e = document.getElementById(id);
        return { width: e.clientWidth, height: e.clientHeight, scrollHeight: e.scrollHeight };
      }),
    );
    assert.deepEqual(marks, text, "the backdrop's lines are not the text area's");
  });

  await step("story mode is still there, as it was", async () => {
    await page.click("#mode-story");
    assert.equal(await page.locator("#live-mode").isHidden(), true);
    assert.equal(await page.locator("#story").isVisible(), true);
  });

  await step("no page errors, no blocked resources", async () => {
    assert.deepEqual(problems, []);
  });
});

// The writer's say on the live editor page (docs/protocol.md section 6, "The writer's
// say") in Debian's Chromium, through harness.mjs: a look-alike name vouched for and an
// intensifier dismissed go when the service retracts them (not before), the Undo after a
// dismissal brings its suggestion back, both stay gone through a reload (the document
// reopened), the panel lists what the writer said, and taking the name back from the panel
// (PUT /v1/me/preferences) brings the look-alike back. tests/e2e/test_browser.py starts the
// service (with a short AMPLIFY_DOC_IDLE_MS) and runs this script; its exit code decides
// the test.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, WAIT_MS, getAsPage, liveSettled, markedText, run } from "./harness.mjs";

// Two names that look alike (the second is flagged) and an intensifier a stronger word
// replaces: character.lookalike_names on "Maura", plot.intensifier on "very big".
const TEXT = "Mara poured the tea. Maura took a cup. Mara smiled. Maura drank.\nThe dog was very big.";
const LOOKALIKE = "character.lookalike_names";
const INTENSIFIER = "plot.intensifier";

await run("say", async ({ page, proxy, step, problems, sockets }) => {
  const settled = () => liveSettled(page);
  const covered = () => markedText(page);
  const events = (type, from = 0) =>
    sockets.slice(from).flatMap((s) => s.received.filter((e) => e.type === type));
  const sent = (type, from = 0) => sockets.slice(from).flatMap((s) => s.sent.filter((f) => f.type === type));
  async function until(what, check) {
    for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline; ) {
      const found = await check();
      if (found) return found;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}`);
  }
  /** The live suggestion of `rule` the page marks, over `quote`: its id (after `from`'s socket). */
  const markedOf = (rule, quote, from = 0) =>
    until(`a mark of ${rule} over '${quote}'`, async () => {
      const byId = await covered();
      const live = events("doc.suggestion", from).filter((e) => e.rule === rule && byId[e.id] === quote);
      return live.at(-1)?.id;
    });
  /** No mark of the page covers `quote` (the text is the writer's: the quote occurs once). */
  const unmarked = async (quote) => !Object.values(await covered()).includes(quote);
  const entry = (id) => page.locator("#live-suggestions li", { has: page.locator(`button[data-id="${id}"]`) });
  const panel = (kind, scope) => page.locator(`#live-say li[data-kind="${kind}"][data-scope="${scope}"]`);
  /** Clicks `button` and reads the marks in the same task: before any answer can come. */
  const clickAndLook = (selector) =>
    page.evaluate((s) => {
      document.querySelector(s).click();
      return [...document.querySelectorAll("#live-marks mark")].flatMap((m) => m.dataset.ids.split(" "));
    }, selector);

  await page.goto(`${proxy.url}/`);

  await step("modules: which suggestions are about a word or a name", async () => {
    const words = await page.evaluate(async () => {
      const { wordOf } = await import("/static/say.js");
      return [
        { quote: "Maura", rule: "character.lookalike_names" },
        { quote: "just", rule: "plot.filler" },
        { quote: "Mara Lind", rule: "character.telling" },
        { quote: "very big", rule: "plot.intensifier" },
        { quote: "Mara was", rule: "character.telling" },
        { quote: "Ab".repeat(33), rule: "character.lookalike_names" },
      ].map(wordOf);
    });
    assert.deepEqual(words, ["Maura", "just", "Mara Lind", null, null, null]);
  });

  await step("sign up, live mode, the panel says nothing is decided yet", async () => {
    await page.fill("#username", `say-${Date.now()}`);
    await page.fill("#password", "correct horse battery");
    await page.click("#signup");
    await page.locator('#connection[data-state="open"]').waitFor();
    await page.click("#mode-live");
    await page.locator("#live-say .say-empty").waitFor();
    assert.equal(await page.locator("#live-say li").count(), 0);
  });

  let lookalike;
  let intensifier;
  await step("the text draws a look-alike name and an intensifier, each with its buttons", async () => {
    await page.fill("#live-text", TEXT);
    await settled();
    lookalike = await markedOf(LOOKALIKE, "Maura");
    intensifier = await markedOf(INTENSIFIER, "very big");
    const name = entry(lookalike);
    for (const label of ["Dismiss", `Turn off this rule ${LOOKALIKE}`, "This name is right"])
      assert.equal(await name.getByRole("button", { name: label, exact: true }).count(), 1, label);
    const weak = entry(intensifier);
    for (const label of ["Dismiss", `Turn off this rule ${INTENSIFIER}`])
      assert.equal(await weak.getByRole("button", { name: label, exact: true }).count(), 1, label);
    // "very big" is no word or name to vouch for.
    assert.equal(await weak.getByRole("button", { name: /is right/ }).count(), 0);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "say-buttons.png") });
  });

  await step("'This name is right': the look-alike goes when the service retracts it", async () => {
    const docId = events("doc.opened")[0].doc_id;
    const before = await clickAndLook(`#live-suggestions button[data-action="word"][data-id="${lookalike}"]`);
    assert.ok(before.includes(lookalike), "the mark went before the service said so");
    const [frame] = sent("doc.word");
    assert.deepEqual(
      { ...frame, request_id: undefined },
      { type: "doc.word", doc_id: docId, word: "Maura", scope: "everywhere", request_id: undefined },
    );
    await until("the look-alike's doc.retracted", () =>
      events("doc.retracted").some((e) => e.ids.includes(lookalike)),
    );
    await until("the look-alike's mark to go", () => unmarked("Maura"));
    await until("doc.ignores answering the word", () =>
      events("doc.ignores").find((e) => e.request_id === frame.request_id),
    );
    await panel("word", "everywhere").filter({ hasText: "Maura" }).waitFor();
    assert.match(await page.textContent("#live-undo"), /“Maura” is right/);
    const prefs = await getAsPage(page, "/v1/me/preferences");
    assert.deepEqual(prefs.words, ["Maura"]);
  });

  await step("'Dismiss' takes the intensifier; the Undo after it brings it back; dismissed again", async () => {
    const before = await clickAndLook(`#live-suggestions button[data-action="dismiss"][data-id="${intensifier}"]`);
    assert.ok(before.includes(intensifier), "the mark went before the service said so");
    const dismiss = sent("doc.dismiss").at(-1);
    assert.equal(dismiss.id, intensifier);
    assert.equal(dismiss.scope, "suggestion");
    await until("the intensifier's doc.retracted", () =>
      events("doc.retracted").some((e) => e.ids.includes(intensifier)),
    );
    await until("the intensifier's mark to go", () => unmarked("very big"));
    await panel("dismissed", "document").filter({ hasText: "very big" }).waitFor();
    // The Undo has the focus: the button clicked went with its suggestion.
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Undo");
    await page.locator("#live-undo").getByRole("button", { name: "Undo" }).click();
    const undo = sent("doc.dismiss").at(-1);
    assert.deepEqual([undo.id, undo.undo], [intensifier, true]);
    await until("no dismissed entry", async () => (await panel("dismissed", "document").count()) === 0);
    intensifier = await markedOf(INTENSIFIER, "very big");
    await page.click(`#live-suggestions button[data-action="dismiss"][data-id="${intensifier}"]`);
    await until("the intensifier's mark to go again", () => unmarked("very big"));
    await panel("dismissed", "document").filter({ hasText: "very big" }).waitFor();
  });

  await step("edits and passes later, both are still gone", async () => {
    await page.focus("#live-text");
    await page.keyboard.press("Control+End");
    await page.keyboard.type(" It barked.", { delay: 15 });
    await settled();
    assert.ok(await unmarked("Maura"), "the look-alike came back");
    assert.ok(await unmarked("very big"), "the intensifier came back");
  });

  let reloadAt;
  await step("after a reload (the document reopened) they stay gone, and the panel lists them", async () => {
    const shown = await page.inputValue("#live-text");
    reloadAt = sockets.length;
    await page.reload();
    await page.locator('#connection[data-state="open"]').waitFor();
    await page.click("#mode-live");
    await page.waitForFunction((t) => document.getElementById("live-text").value === t, shown);
    await settled();
    const opened = events("doc.opened", reloadAt);
    assert.equal(opened.length, 1, "one reopen");
    // The reopen tells the document's say before its live suggestions.
    const after = sockets.slice(reloadAt).flatMap((s) => s.received.filter((e) => e.type?.startsWith("doc.")));
    assert.equal(after[1]?.type, "doc.ignores", JSON.stringify(after.map((e) => e.type)));
    assert.ok(
      !events("doc.suggestion", reloadAt).some((e) => e.rule === LOOKALIKE || e.quote === "very big"),
      "a dismissed or vouched-for suggestion came with the reopen",
    );
    assert.ok(await unmarked("Maura"));
    assert.ok(await unmarked("very big"));
    await panel("word", "everywhere").filter({ hasText: "Maura" }).waitFor();
    await panel("dismissed", "document").filter({ hasText: "very big" }).waitFor();
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "say.png") });
  });

  await step("'Remove' on the word (PUT /v1/me/preferences) brings the look-alike back", async () => {
    const word = panel("word", "everywhere").filter({ hasText: "Maura" });
    const read = await getAsPage(page, "/v1/me/preferences");
    const put = page.waitForRequest((r) => r.method() === "PUT" && r.url().endsWith("/v1/me/preferences"));
    await word.getByRole("button", { name: "Remove “Maura”" }).click();
    // What the service holds, without the word, at the revision read (no change lost).
    assert.deepEqual((await put).postDataJSON(), { rules_off: [], words: [], focus: null, revision: read.revision });
    await until("the word to leave the panel", async () => (await word.count()) === 0);
    const prefs = await getAsPage(page, "/v1/me/preferences");
    assert.deepEqual(prefs.words, []);
    await markedOf(LOOKALIKE, "Maura", reloadAt);
    await settled();
    assert.ok(await unmarked("very big"), "the dismissed intensifier came back with the name");
  });

  await step("'Turn off this rule' takes it everywhere; 'Turn on' in the panel brings it back", async () => {
    const id = await markedOf(LOOKALIKE, "Maura", reloadAt);
    await page.click(`#live-suggestions button[data-action="rule-off"][data-id="${id}"]`);
    const frame = sent("doc.dismiss").at(-1);
    assert.deepEqual([frame.id, frame.scope, frame.undo], [id, "everywhere", undefined]);
    await until("the look-alike's mark to go", () => unmarked("Maura"));
    const rule = panel("rule", "everywhere").filter({ hasText: LOOKALIKE });
    await rule.waitFor();
    assert.deepEqual((await getAsPage(page, "/v1/me/preferences")).rules_off, [LOOKALIKE]);
    const heard = events("doc.suggestion").length;
    await rule.getByRole("button", { name: `Turn on ${LOOKALIKE}` }).click();
    await until("the rule to leave the panel", async () => (await rule.count()) === 0);
    assert.deepEqual((await getAsPage(page, "/v1/me/preferences")).rules_off, []);
    // Found again by a pass (its id may be the same: the same finding in the same version).
    await until("the look-alike found again", () =>
      events("doc.suggestion").slice(heard).some((e) => e.rule === LOOKALIKE),
    );
    await markedOf(LOOKALIKE, "Maura", reloadAt);
  });

  await step("no page errors, no blocked resources", async () => {
    assert.deepEqual(problems, []);
  });
});

// The writer's say on a live document (docs/protocol.md section 6, "The writer's say"): on
// each suggestion, buttons to dismiss it, to turn its rule off everywhere and, when it is
// about a word or a name, to vouch for that word everywhere; a short-lived Undo after each;
// and a panel of what the writer has said (this document's own, and their preferences),
// each entry undoable. The service is the truth: a mark goes when its doc.retracted comes,
// and the panel shows what doc.ignores and GET /v1/me/preferences say.

import { ApiError, api, sentence } from "./api.js";
import { el } from "./editor.js";

const UNDO_MS = 10000; // how long the Undo after a decision stays
const MAX_WORD = 64; // the longest word the service takes
const WORD = /^[\p{L}\p{M}][\p{L}\p{M}\p{N}'’-]*$/u;
const NAME = /^\p{Lu}[\p{L}\p{M}'’-]*(?: \p{Lu}[\p{L}\p{M}'’-]*)+$/u; // "Mara Lind"
const ACTIONS = ["dismiss", "rule-off", "word"];
const CONFLICT_TRIES = 3; // a PUT of the preferences, read again after each 409

/**
 * The word a suggestion is about, to vouch for: its quote when that is one word or a
 * capitalised name (always for a look-alike name); null when it is about more than that.
 */
export function wordOf(s) {
  const quote = (s.quote ?? "").trim();
  if (!quote || quote.length > MAX_WORD || /[\r\n]/.test(quote)) return null;
  return s.rule === "character.lookalike_names" || WORD.test(quote) || NAME.test(quote) ? quote : null;
}

export const isSayAction = (action) => ACTIONS.includes(action);

function button(text, { ariaLabel, ...props }, data) {
  const b = el("button", { type: "button", ...props }, ...[text].flat());
  if (ariaLabel) b.setAttribute("aria-label", ariaLabel);
  Object.assign(b.dataset, data);
  return b;
}

export class WritersSay {
  #els;
  #on;
  #prefs = null; // {rules_off, words}: from GET /v1/me/preferences, then doc.ignores
  #asks = new Map(); // request_id -> the suggestion id it is about (null for an undo)
  #busy = new Set(); // suggestion ids with a decision on its way
  #undo = null; // the frame that takes back the last decision, while its Undo shows
  #timer = 0;
  #drawn = ""; // what the panel shows, to draw it again only when that changes

  /**
   * els: {panel, notice, text}; on: {send(frame) -> bool (the document's id is added),
   * ignores() -> the document's last doc.ignores or null, token(), error(message)}
   */
  constructor(els, on) {
    this.#els = els;
    this.#on = on;
    els.panel.addEventListener("click", (e) => this.#panelClicked(e));
    els.notice.addEventListener("click", (e) => e.target.closest("button") && this.#takeBack());
    this.render();
  }

  /** The user's preferences, asked for again (signed in, or the socket is back). */
  async load() {
    const token = this.#on.token();
    if (!token) return;
    try {
      const prefs = await api.preferences(token);
      if (token === this.#on.token()) this.#prefs = prefs;
    } catch (err) {
      this.#on.error(err.message);
    }
    this.render();
  }

  /** Signed out: nothing of the writer's stays on screen. */
  clear() {
    [this.#prefs, this.#undo] = [null, null];
    this.#asks.clear();
    this.#busy.clear();
    this.#hideNotice();
    this.render();
  }

  owns(requestId) {
    return Boolean(requestId) && this.#asks.has(requestId);
  }

  /** doc.ignores: what the document holds now, and the user's preferences it last heard. */
  heard(e) {
    if (e.user) this.#prefs = { ...this.#prefs, rules_off: e.user.rules_off, words: e.user.words };
    this.#settle(e.request_id);
    this.render();
  }

  /** An error answering one of this module's frames: nothing of it was done. */
  refused(e) {
    this.#settle(e.request_id);
    this.#on.error(sentence(e.message));
    this.render();
  }

  /** The buttons of a live suggestion's entry; `describedBy`: the id of its message. */
  controls(id, s, describedBy) {
    const busy = this.#busy.has(id);
    const props = { disabled: busy, className: "say" };
    const data = (action) => ({ id, action });
    const out = [button("Dismiss", props, data("dismiss"))];
    if (s.rule) out.push(button(["Turn off this rule ", el("code", {}, s.rule)], props, data("rule-off")));
    const word = wordOf(s);
    if (word) {
      const text = /^\p{Lu}/u.test(word) ? "This name is right" : "This word is right";
      out.push(button(text, { ...props, title: `Vouch for “${word}” everywhere` }, data("word")));
    }
    for (const b of out) b.setAttribute("aria-describedby", describedBy);
    return el("span", { className: "say-actions" }, ...out.flatMap((b) => [" ", b]));
  }

  /** A click on one of `controls`: the decision goes to the service; Undo shows a while. */
  act(action, id, s) {
    let frame;
    let undo;
    let told;
    if (action === "dismiss") {
      frame = { type: "doc.dismiss", id, scope: "suggestion" };
      undo = { ...frame, undo: true };
      told = `Dismissed “${s.quote}”.`;
    } else if (action === "rule-off") {
      frame = { type: "doc.dismiss", id, scope: "everywhere" };
      undo = { type: "doc.dismiss", rule: s.rule, scope: "everywhere", undo: true };
      told = `Rule ${s.rule} turned off everywhere.`;
    } else {
      const word = wordOf(s);
      frame = { type: "doc.word", word, scope: "everywhere" };
      undo = { ...frame, undo: true };
      told = `“${word}” is right, everywhere.`;
    }
    if (!this.#send(frame, id)) return;
    this.#showNotice(told, undo);
  }

  /** The panel: the user's preferences, then this document's own, each with its undo. */
  render() {
    const doc = this.#on.ignores();
    const prefs = this.#prefs;
    const everywhere = [
      ...(prefs?.rules_off ?? []).map((rule) => ({ kind: "rule", scope: "everywhere", value: rule })),
      ...(prefs?.words ?? []).map((word) => ({ kind: "word", scope: "everywhere", value: word })),
    ];
    const here = [
      ...(doc?.dismissed ?? []).map((d) => ({ kind: "dismissed", scope: "document", value: d.id, finding: d })),
      ...(doc?.rules_off ?? []).map((rule) => ({ kind: "rule", scope: "document", value: rule })),
      ...(doc?.words ?? []).map((word) => ({ kind: "word", scope: "document", value: word })),
    ];
    const drawn = JSON.stringify([everywhere, here]);
    if (drawn === this.#drawn) return;
    this.#drawn = drawn;
    const panel = this.#els.panel;
    // A button that goes with its entry leaves the focus nowhere: keep it in the panel.
    const hadFocus = panel.contains(document.activeElement);
    if (!everywhere.length && !here.length) {
      panel.replaceChildren(
        el("p", { className: "say-empty" }, "Nothing yet. What you dismiss, turn off or vouch for is listed here, to undo."),
      );
    } else {
      panel.replaceChildren(
        ...this.#group("say-everywhere", "Everywhere", everywhere),
        ...this.#group("say-document", "In this document", here),
      );
    }
    if (hadFocus && !panel.contains(document.activeElement)) {
      (panel.querySelector("button") ?? this.#els.text).focus();
    }
  }

  #group(id, title, entries) {
    if (!entries.length) return [];
    const list = el("ul", { className: "say-list" }, ...entries.map((e) => this.#entry(e)));
    list.setAttribute("aria-labelledby", id);
    return [el("h3", { id }, title), list];
  }

  #entry(entry) {
    const { kind, scope, value } = entry;
    let what;
    let undo;
    if (kind === "rule") {
      what = ["Rule ", el("code", {}, value), " off"];
      undo = button("Turn on", { ariaLabel: `Turn on ${value}` }, { kind, scope, value });
    } else if (kind === "word") {
      what = ["Word ", el("q", {}, value)];
      undo = button("Remove", { ariaLabel: `Remove “${value}”` }, { kind, scope, value });
    } else {
      const f = entry.finding;
      what = ["Dismissed ", el("q", {}, f.quote), " ", el("span", { className: "message" }, f.message)];
      undo = button("Bring back", { ariaLabel: `Bring back “${f.quote}”` }, { kind, scope, value });
    }
    const li = el("li", {}, ...what, " ", undo);
    Object.assign(li.dataset, { kind, scope, value });
    return li;
  }

  async #panelClicked(e) {
    const b = e.target.closest("button[data-kind]");
    if (!b) return;
    const { kind, scope, value } = b.dataset;
    if (scope === "everywhere") {
      b.disabled = true;
      await this.#putWithout(kind, value);
      b.disabled = false;
      return;
    }
    const frame =
      kind === "dismissed"
        ? { type: "doc.dismiss", id: value, scope: "suggestion", undo: true }
        : kind === "rule"
          ? { type: "doc.dismiss", rule: value, scope: "document", undo: true }
          : { type: "doc.word", word: value, scope: "document", undo: true };
    if (this.#send(frame, null)) b.disabled = true; // drawn again when doc.ignores answers
  }

  /**
   * A preference of the user's taken back: PUT what the service holds now, without it, at
   * the revision read (a change made meanwhile elsewhere is a 409: read again, try again).
   */
  async #putWithout(kind, value) {
    const token = this.#on.token();
    if (!token) return;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const now = await api.preferences(token);
        this.#prefs = await api.setPreferences(token, {
          rules_off: now.rules_off.filter((r) => kind !== "rule" || r !== value),
          words: now.words.filter((w) => kind !== "word" || w !== value),
          focus: now.focus ?? null,
          revision: now.revision,
        });
        break;
      } catch (err) {
        if (err instanceof ApiError && err.status === 409 && attempt < CONFLICT_TRIES) continue;
        this.#on.error(err.message);
        break;
      }
    }
    this.render();
  }

  #send(frame, id) {
    const requestId = crypto.randomUUID();
    if (!this.#on.send({ ...frame, request_id: requestId })) {
      this.#on.error("Not connected: try again once the page is connected.");
      return false;
    }
    this.#asks.set(requestId, id);
    if (id) this.#busy.add(id);
    return true;
  }

  #settle(requestId) {
    if (!this.owns(requestId)) return;
    this.#busy.delete(this.#asks.get(requestId));
    this.#asks.delete(requestId);
  }

  #showNotice(told, undo) {
    clearTimeout(this.#timer);
    this.#undo = undo;
    const b = button("Undo", { className: "undo" }, { action: "undo" });
    this.#els.notice.replaceChildren(el("span", {}, told), " ", b);
    // The entry clicked goes with its mark: the focus moves to what can take it back.
    b.focus();
    this.#timer = setTimeout(() => this.#hideNotice(), UNDO_MS);
  }

  #takeBack() {
    const undo = this.#undo;
    this.#hideNotice();
    if (undo) this.#send(undo, null);
  }

  #hideNotice() {
    clearTimeout(this.#timer);
    this.#undo = null;
    const notice = this.#els.notice;
    const hadFocus = notice.contains(document.activeElement);
    notice.replaceChildren();
    if (hadFocus) this.#els.text.focus();
  }
}

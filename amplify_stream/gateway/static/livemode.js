// Live mode: the text area is a live document (docs/protocol.md section 6) on the page's
// socket. The first keystroke creates the document with the text; after that, what changed
// goes out as one doc.edit per animation frame, and the service streams suggestions back.
//
// The marks are drawn in a backdrop behind a transparent text area, with the same box and
// text metrics, so each <mark> sits under its words while the writer keeps a plain,
// native text area (caret, selection, undo, spell check, IME all as usual).
//
// The writer never waits: each input applies to the document here at once (live.js), the
// marks move or go in the same instant, and the socket catches up. A refused edit or a
// dropped socket opens the document again; doc.opened then says whether the changes not
// acknowledged can simply be sent again, or another tab's text replaces this one's.
//
// The writer's say (say.js): each suggestion can be dismissed, its rule turned off, its
// word vouched for; a panel lists what the writer said, to undo.

import { sentence } from "./api.js";
import { el, label, renderInsights, renderMarked } from "./editor.js";
import { change, diff } from "./edits.js";
import { LiveDocument } from "./live.js";
import { WritersSay, isSayAction } from "./say.js";

const KEY = "amplify.live"; // sessionStorage: this tab's document, opened again after a reload
// Per user, the service takes 60 edits a second across all tabs: one frame each is already
// at that pace, so frames are also kept this far apart.
const MIN_GAP_MS = 25;
const MAX_IN_FLIGHT = 32; // edits not acknowledged yet before the page waits for acks
const RETRY_MS = 1000; // a retryable refusal without retry_after

/** Where an offset goes when change `c` applies: after it, it moves; inside it, to its end. */
function moveOffset(at, c) {
  if (!c || at <= c.start_utf16) return at;
  if (at >= c.end_utf16) return at + c.text.length - (c.end_utf16 - c.start_utf16);
  return c.start_utf16 + c.text.length;
}

export class LiveEditor {
  #els;
  #on;
  #socket = null;
  #doc = null; // LiveDocument, from the first keystroke (or a document to reopen)
  #shown = ""; // the text area's value as the document last took it
  #opening = null; // the request_id of the doc.open not answered yet
  #edits = new Set(); // request ids of the edits sent since that doc.open
  #stalled = false; // refused or lost: no edits until the document is opened again
  #retry = 0; // a timer that opens it again (none: the next keystroke does)
  #frame = 0;
  #gap = 0;
  #lastSent = -Infinity;
  #complained = false; // an error of ours is on screen
  #say;

  /** els: {text, marks, list, insights, status, say, undo}; on: {error(message), token()} */
  constructor(els, on) {
    this.#els = els;
    this.#on = on;
    this.#say = new WritersSay(
      { panel: els.say, notice: els.undo, text: els.text },
      {
        send: (frame) => this.#sendSay(frame),
        ignores: () => this.#doc?.ignores ?? null,
        token: () => on.token(),
        error: (message) => on.error(message),
      },
    );
    els.text.addEventListener("input", () => this.#input());
    els.text.addEventListener("scroll", () => this.#followScroll());
    els.list.addEventListener("click", (e) => this.#clicked(e));
    // The text area's height is the writer's to drag: the backdrop follows it.
    new ResizeObserver(() => this.#followScroll()).observe(els.text);
    this.#render();
  }

  /** The page's socket; null when signed out, and then this tab forgets its document. */
  attach(socket) {
    this.#socket = socket;
    if (!socket) {
      this.#say.clear();
      return this.#reset();
    }
    const saved = sessionStorage.getItem(KEY);
    if (!this.#doc && saved) {
      // Its text comes with doc.opened: typing before then would be typing over nothing.
      this.#doc = LiveDocument.existing(saved);
      this.#els.text.readOnly = true;
    }
    return this.#render();
  }

  /** The socket is up (again): events were missed, so the document is opened afresh. */
  connected() {
    this.#opening = null;
    if (this.#doc) this.#open();
    this.#say.load(); // they may have changed elsewhere meanwhile
  }

  /** A frame from the socket: true when it is a live document's (this page handles it). */
  claim(e) {
    const doc = this.#doc;
    const mine =
      (doc?.docId && e.doc_id === doc.docId) ||
      (e.request_id && (e.request_id === this.#opening || this.#edits.has(e.request_id)));
    if (e.type === "error") {
      if (this.#say.owns(e.request_id)) {
        this.#say.refused(e);
        this.#render(); // its buttons may be pressed again
        return true;
      }
      if (mine) this.#refused(e);
      return Boolean(mine || e.doc_id);
    }
    if (!e.type?.startsWith("doc.")) return false;
    if (e.type === "doc.opened") {
      if (e.request_id && e.request_id === this.#opening) this.#opened(e);
    } else if (mine && !this.#opening) {
      // (While a doc.open is in flight, its doc.opened brings the whole state again.)
      doc.receive(e);
      if (e.type === "doc.ack") {
        this.#edits.delete(e.request_id);
        this.#schedule(); // edits may be waiting for room in flight
      }
      // Only what changed is drawn again: the list is not rebuilt under a click on each ack.
      if (e.type === "doc.ignores") this.#say.heard(e);
      if (["doc.suggestion", "doc.retracted", "doc.ignores"].includes(e.type)) this.#render();
      else if (e.type === "doc.insight") renderInsights(this.#els.insights, doc.insights);
      this.#status();
    }
    return true;
  }

  // ---------------------------------------------------------------- the writer's side

  #input() {
    const value = this.#els.text.value;
    const c = diff(this.#shown, value);
    this.#shown = value;
    if (!c) return;
    if (!this.#doc) {
      this.#doc = LiveDocument.create(value);
      this.#open();
    } else {
      this.#doc.change(c);
      if (this.#stalled && !this.#retry && !this.#opening) this.#open(); // a new try
    }
    this.#render();
    this.#schedule();
  }

  /** A suggestion's replacement, as an edit of exactly its span. */
  #replace(mark) {
    const c = change(mark.start, mark.end, mark.event.replacement);
    const text = this.#els.text;
    text.focus();
    text.setRangeText(c.text, c.start_utf16, c.end_utf16, "end"); // no input event: applied here
    this.#shown = text.value;
    this.#doc.change(c);
    this.#render();
    this.#schedule();
  }

  #clicked(e) {
    const button = e.target.closest("button[data-id]");
    const mark = button && this.#doc?.marks.get(button.dataset.id);
    if (!mark) return;
    if (button.dataset.action === "apply") return this.#replace(mark);
    if (isSayAction(button.dataset.action)) {
      this.#say.act(button.dataset.action, button.dataset.id, mark.event);
      return this.#render(); // its buttons wait for the service's answer
    }
    this.#els.text.focus();
    return this.#els.text.setSelectionRange(mark.start, mark.end);
  }

  // ---------------------------------------------------------------- the socket's side

  /** A frame of the writer's say, about the document as the service has it open now. */
  #sendSay(frame) {
    const doc = this.#doc;
    if (!doc?.docId || this.#opening || !this.#socket?.isOpen) return false;
    return this.#socket.send({ ...frame, doc_id: doc.docId });
  }

  /** doc.open: creates the document with the text as it is, or reopens it. */
  #open() {
    clearTimeout(this.#retry);
    this.#retry = 0;
    if (!this.#socket?.isOpen) return this.#render(); // connected() opens it
    if (!this.#doc.docId) this.#doc = LiveDocument.create(this.#doc.text);
    const doc = this.#doc;
    this.#opening = crypto.randomUUID();
    this.#edits.clear(); // their answers, if any still come, are settled by doc.opened
    const frame = { type: "doc.open", request_id: this.#opening };
    if (doc.docId) frame.doc_id = doc.docId;
    else frame.text = doc.text;
    this.#socket.send(frame);
    return this.#render();
  }

  #opened(e) {
    this.#opening = null;
    this.#stalled = false;
    const text = this.#els.text;
    if (this.#doc.opened(e)) {
      // Another tab's text (or this tab's after a reload): it replaces what is shown, and
      // the selection moves with the text around it.
      const c = diff(text.value, e.text);
      const [start, end] = [text.selectionStart, text.selectionEnd].map((at) => moveOffset(at, c));
      text.value = e.text;
      text.setSelectionRange(start, end);
      this.#shown = e.text;
    }
    text.readOnly = false;
    sessionStorage.setItem(KEY, e.doc_id);
    if (this.#complained) this.#on.error("");
    this.#complained = false;
    this.#render();
    this.#schedule(); // the changes that have not landed yet, if any
  }

  /** An error about this document: nothing of the frame was applied. */
  #refused(e) {
    const current = e.request_id
      ? e.request_id === this.#opening || (!this.#opening && this.#edits.has(e.request_id))
      : !this.#opening;
    if (!current) return; // about a frame sent before the last doc.open: settled by its answer
    const opening = e.request_id && e.request_id === this.#opening;
    this.#opening = null;
    this.#edits.clear(); // the edits after a refused one are refused too: one reopen for all
    this.#els.text.readOnly = false;
    if (e.code === "not_found") {
      // Deleted elsewhere (or this tab's saved one is gone): the text lives on as a new one.
      sessionStorage.removeItem(KEY);
      this.#doc = LiveDocument.create(this.#els.text.value);
      this.#stalled = false;
      return this.#open();
    }
    if (e.code !== "version_conflict" || opening) {
      const next = e.retryable ? "Trying again soon." : "Your text is kept here.";
      this.#on.error(`${sentence(e.message)} ${next}`);
      this.#complained = true;
    }
    // A conflict: reopen at once to catch up. A retryable refusal: after the wait it names.
    // Any other (the text over the limit, say): when the writer next changes the text.
    this.#stalled = true;
    if (e.code === "version_conflict") this.#open();
    else if (e.retryable) this.#retry = setTimeout(() => this.#open(), (e.retry_after ?? 0) * 1000 || RETRY_MS);
    return this.#render();
  }

  // Changes go out once per animation frame, however many inputs came in between.
  #schedule() {
    if (!this.#frame) this.#frame = requestAnimationFrame(() => this.#flush());
  }

  #flush() {
    this.#frame = 0;
    const doc = this.#doc;
    // Not open, refused or offline: doc.opened sends what waits, once it has come.
    if (!doc?.docId || this.#opening || this.#stalled || !this.#socket?.isOpen) return;
    if (doc.version - doc.acked >= MAX_IN_FLIGHT) return; // the next doc.ack schedules it
    const wait = this.#lastSent + MIN_GAP_MS - performance.now();
    if (wait > 0) {
      clearTimeout(this.#gap);
      this.#gap = setTimeout(() => this.#schedule(), wait);
      return;
    }
    const requestId = crypto.randomUUID();
    const frame = doc.flush(requestId);
    if (!frame) return;
    this.#edits.add(requestId);
    this.#lastSent = performance.now();
    if (!this.#socket.send(frame)) this.#stalled = true; // connected() reopens and resends
    this.#status();
  }

  #reset() {
    clearTimeout(this.#retry);
    clearTimeout(this.#gap);
    cancelAnimationFrame(this.#frame);
    [this.#retry, this.#gap, this.#frame] = [0, 0, 0];
    [this.#doc, this.#opening, this.#stalled] = [null, null, false];
    this.#edits.clear();
    sessionStorage.removeItem(KEY);
    Object.assign(this.#els.text, { value: "", readOnly: false });
    this.#shown = "";
    this.#render();
  }

  // ---------------------------------------------------------------- drawing

  #render() {
    const doc = this.#doc;
    const marks = doc ? [...doc.marks].sort(([, a], [, b]) => a.start - b.start || a.end - b.end) : [];
    const spans = marks.map(([, m]) => ({ start: m.start, end: m.end, suggestion: m.event }));
    renderMarked(this.#els.marks, this.#shown, spans, { interactive: false });
    // A text ending in a line break shows one more line in the text area: so here too.
    this.#els.marks.append(" ");
    this.#followScroll();
    this.#els.list.replaceChildren(...marks.map(([id, m]) => this.#item(id, m)));
    renderInsights(this.#els.insights, doc?.insights ?? new Map());
    this.#say.render();
    this.#status();
  }

  #item(id, mark) {
    const s = mark.event;
    const show = el("button", { type: "button", className: "quote", title: "Select in the text" }, `“${s.quote}”`);
    Object.assign(show.dataset, { id, action: "show" });
    let apply = null;
    if (s.replacement) {
      apply = el("button", { type: "button", className: "apply" }, "Use ", el("ins", {}, s.replacement));
      Object.assign(apply.dataset, { id, action: "apply" });
    }
    const message = `live-message-${id}`;
    return el(
      "li",
      { className: `focus-${s.focus}` },
      el("span", { className: "badge" }, label(s.focus)),
      " ",
      show,
      " ",
      el("span", { className: "message", id: message }, s.message),
      apply ? " " : null,
      apply,
      this.#say.controls(id, s, message),
    );
  }

  #followScroll() {
    this.#els.marks.scrollTop = this.#els.text.scrollTop;
    this.#els.marks.scrollLeft = this.#els.text.scrollLeft;
  }

  /** What the service has of the text: saved up to which version, checked or not yet. */
  #status() {
    const doc = this.#doc;
    const [state, text] = this.#state(doc);
    const status = this.#els.status;
    status.textContent = text;
    Object.assign(status.dataset, {
      state,
      version: doc?.version ?? "",
      acked: doc?.acked ?? "",
      unsent: doc?.unsent.length ?? 0,
      analyzed: doc?.analyzed?.version ?? "",
    });
  }

  #state(doc) {
    if (!doc) return ["empty", this.#socket ? "Saved and checked as you type." : "Sign in to write live."];
    if (this.#opening) return ["opening", doc.docId ? "Opening…" : "Creating…"];
    if (!this.#socket?.isOpen) return ["offline", "Not connected: your text is kept here."];
    if (this.#stalled || !doc.docId)
      return ["stalled", doc.docId ? `Version ${doc.acked} saved; your latest changes wait.` : "Not saved yet."];
    const saved = doc.pending ? `Saving… (version ${doc.acked} saved)` : `Version ${doc.acked} saved`;
    const checked = !doc.pending && doc.analyzed?.version === doc.version;
    const count = doc.marks.size === 1 ? "1 suggestion" : `${doc.marks.size} suggestions`;
    return [doc.pending ? "saving" : "saved", `${saved} · ${checked ? `checked: ${count}` : "checking…"}`];
  }
}

// A live document as the page holds it (docs/protocol.md section 6), as
// amplify_stream/client/live.py models it: the writer's text, its version, the changes not
// sent yet, and the live suggestions with their spans in the writer's own text. Pure: no
// DOM, no socket (livemode.js wires it to both).
//
// The writer never waits for the network: a change applies here at once and moves the
// marks by the section's rule, so a mark whose words are deleted goes in the same instant.
// A suggestion the service found in an older version is moved through the changes made
// since, and so lands where its words are now.

import { applyChanges, diff, shiftAll } from "./edits.js";

const MAX_CHANGES = 256; // AMPLIFY_MAX_DOC_CHANGES: the most changes one doc.edit may carry
const KEEP_VERSIONS = 1024; // changes kept below the acked version, to place late suggestions

export class LiveDocument {
  docId = null;
  text = "";
  version = 0; // the last version sent (or opened)
  acked = 0; // every version up to this one is durable at the service
  unsent = []; // changes applied to `text`, not in a doc.edit yet
  marks = new Map(); // id -> {start, end, event}: spans in UTF-16 units of `text`
  history = new Map(); // version -> its changes (the versions suggestions may still come from)
  insights = new Map(); // focus -> doc.insight
  analyzed = null; // the last doc.analyzed
  ignores = null; // the last doc.ignores: the writer's say about this document (say.js)
  #texts = new Map(); // version -> the text at it, from the acked version on (see opened)

  /** A document to create with `text` (its doc.open carries it as version 0). */
  static create(text) {
    const doc = new LiveDocument();
    doc.text = text;
    doc.#texts.set(0, text);
    return doc;
  }

  /** One of the writer's documents, to reopen: what it holds comes with doc.opened. */
  static existing(docId) {
    return Object.assign(new LiveDocument(), { docId });
  }

  /** The writer changed the text: apply it here and now, and move the marks. */
  change(c) {
    this.text = applyChanges(this.text, [c]);
    this.unsent.push(c);
    this.#moveMarks([c]);
  }

  /** The doc.edit of every change not sent yet, as the next version; null when none. */
  flush(requestId) {
    if (!this.docId || !this.unsent.length) return null;
    let changes = this.unsent;
    if (changes.length > MAX_CHANGES) {
      // More than one frame may carry (a long time offline): one change from the last
      // version's text instead. The marks moved change by change here; the service's
      // doc.retracted settles any the coarser change takes and the fine ones did not.
      const one = diff(this.#texts.get(this.version), this.text);
      changes = one ? [one] : [];
    }
    this.unsent = [];
    if (!changes.length) return null;
    this.version += 1;
    this.history.set(this.version, changes);
    this.#texts.set(this.version, this.text);
    return { type: "doc.edit", request_id: requestId, doc_id: this.docId, version: this.version, changes };
  }

  /**
   * doc.opened: the service's text at its version. When that is the text this page had at
   * that version, the changes made since simply have not landed (a refused or lost edit, a
   * dropped socket): they stay, to be sent again on top of it, and the writer loses
   * nothing. Otherwise someone else changed the document (another tab): the service's
   * text wins. Returns true when the text was replaced.
   */
  opened(e) {
    const ours = this.#texts.get(e.version) === e.text;
    this.docId = e.doc_id;
    if (ours) this.unsent = this.#since(e.version) ?? [diff(e.text, this.text)].filter(Boolean);
    else [this.text, this.unsent] = [e.text, []];
    this.version = e.version;
    this.acked = e.version;
    this.history.clear();
    this.#texts = new Map([[e.version, e.text]]);
    // The live set follows doc.opened, one doc.suggestion each.
    this.marks.clear();
    this.analyzed = null;
    this.ignores = null; // doc.ignores follows when the writer has had a say
    return !ours;
  }

  /** An event of this document (doc.opened aside). */
  receive(e) {
    switch (e.type) {
      case "doc.ack":
        return this.#ack(e.version);
      case "doc.suggestion":
        return this.#place(e);
      case "doc.retracted":
        return e.ids.forEach((id) => this.marks.delete(id));
      case "doc.insight":
        return this.insights.set(e.focus, e);
      case "doc.analyzed":
        this.analyzed = e;
        return undefined;
      case "doc.ignores":
        this.ignores = e;
        return undefined;
      default:
        return undefined;
    }
  }

  /** The text a mark covers now. */
  quoteOf(mark) {
    return this.text.slice(mark.start, mark.end);
  }

  /** Sent and not acknowledged yet, or not sent at all. */
  get pending() {
    return this.version - this.acked + (this.unsent.length ? 1 : 0);
  }

  #ack(version) {
    if (version > this.version) return; // not an edit of this page's (another tab's)
    this.acked = Math.max(this.acked, version);
    for (const v of this.#texts.keys()) if (v < this.acked) this.#texts.delete(v);
    for (const v of this.history.keys()) if (v <= this.acked - KEEP_VERSIONS) this.history.delete(v);
  }

  // A span of version V moves through every change since; dropped when it is of a version
  // this page cannot place (another tab's, or one older than the history kept).
  #place(e) {
    const since = this.#since(e.version);
    const [span] = since ? shiftAll([{ start: e.start_utf16, end: e.end_utf16 }], since) : [];
    if (span) this.marks.set(e.id, { start: span.start, end: span.end, event: e });
  }

  /** Every change made after `version`: those of the versions sent since, then the unsent. */
  #since(version) {
    if (version > this.version) return null;
    const changes = [];
    for (let v = version + 1; v <= this.version; v += 1) {
      if (!this.history.has(v)) return null;
      changes.push(...this.history.get(v));
    }
    return [...changes, ...this.unsent];
  }

  #moveMarks(changes) {
    const spans = [...this.marks].map(([id, m]) => ({ ...m, id }));
    this.marks = new Map(shiftAll(spans, changes).map(({ id, ...m }) => [id, m]));
  }
}

// The panes, as DOM: the original with its suggestions marked, the suggestion list, the
// insights per focus, the rewrite as it streams, the spoken word, and the tip that shows a
// suggestion's message and replacement on hover, focus or click. Text goes in through
// textContent and text nodes only, never as HTML.

import { pieces } from "./spans.js";

export const FOCUS = ["plot", "character", "dialogue", "setting"];
const SPOKEN = "spoken"; // the CSS highlight (::highlight(spoken)) of the word being read

export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c != null));
  return node;
}

export const label = (focus) => focus[0].toUpperCase() + focus.slice(1);

/** The rewrite: one text node that grows as deltas arrive (cheap, and ranges stay valid). */
export class TextPane {
  #node = document.createTextNode("");

  constructor(container) {
    container.replaceChildren(this.#node);
  }

  get text() {
    return this.#node.data;
  }

  append(piece) {
    this.#node.appendData(piece);
  }

  set(text) {
    this.#node.data = text;
  }
}

/**
 * The original, its located suggestions as <mark>s. `spans` are {start, end, suggestion}
 * in UTF-16 offsets of `text`; overlapping ones are cut into pieces, each marked with every
 * suggestion that covers it. Not `interactive`: marks drawn under a text area (live mode),
 * which neither take focus nor describe themselves.
 */
export function renderMarked(container, text, spans, { interactive = true } = {}) {
  const out = [];
  let at = 0;
  for (const piece of pieces(spans)) {
    out.push(text.slice(at, piece.start));
    const [first] = piece.spans; // the shortest: the most specific
    const ids = piece.spans.map((s) => s.suggestion.id);
    const mark = el("mark", { className: `focus-${first.suggestion.focus}` }, text.slice(piece.start, piece.end));
    mark.dataset.ids = ids.join(" ");
    if (interactive) {
      mark.tabIndex = 0;
      // The list entries describe the mark to screen readers.
      mark.setAttribute("aria-describedby", ids.map((id) => `suggestion-${id}`).join(" "));
    }
    out.push(mark);
    at = piece.end;
  }
  out.push(text.slice(at));
  container.replaceChildren(...out.filter(Boolean));
}

export function renderSuggestions(list, suggestions, located) {
  list.replaceChildren(
    ...suggestions.map((s) => {
      const quote = located.has(s.id)
        ? el("button", { type: "button", className: "quote", title: "Show in the story" }, `“${s.quote}”`)
        : el("q", { className: "quote", title: "Not found in the story" }, s.quote);
      quote.dataset.id = s.id;
      return el(
        "li",
        { id: `suggestion-${s.id}`, className: `focus-${s.focus}` },
        el("span", { className: "badge" }, label(s.focus)),
        " ",
        quote,
        " ",
        el("span", { className: "message" }, s.message),
        s.replacement
          ? el("span", { className: "replacement" }, " Try: ", el("ins", {}, s.replacement))
          : null,
      );
    }),
  );
}

/** One card per focus, in the same order always, whichever arrives first. */
export function renderInsights(container, byFocus) {
  container.replaceChildren(
    ...FOCUS.filter((f) => byFocus.has(f)).map((focus) => {
      const insight = byFocus.get(focus);
      const metrics = Object.entries(insight.metrics ?? {});
      return el(
        "article",
        { className: `insight focus-${focus}` },
        el("h3", {}, label(focus)),
        el("p", {}, insight.summary),
        metrics.length
          ? el(
              "dl",
              {},
              ...metrics.flatMap(([k, v]) => [el("dt", {}, k.replaceAll("_", " ")), el("dd", {}, format(v))]),
            )
          : null,
      );
    }),
  );
}

const format = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/0+$/, ""));

/** Lights [start, end) (UTF-16) of the container's text as the spoken word; null clears. */
export function showSpoken(container, start, end) {
  if (!globalThis.Highlight || !CSS.highlights) return; // an older browser: no word light
  const range = container && start != null ? rangeOf(container, start, end) : null;
  if (range) CSS.highlights.set(SPOKEN, new Highlight(range));
  else CSS.highlights.delete(SPOKEN);
}

function rangeOf(container, start, end) {
  const walker = document.createTreeWalker(container, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  let at = 0;
  let started = false;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const next = at + node.length;
    if (!started && start < next) {
      range.setStart(node, start - at);
      started = true;
    }
    if (started && end <= next) {
      range.setEnd(node, end - at);
      return range;
    }
    at = next;
  }
  return null; // past the text shown so far
}

/** The tip: one element, filled with the suggestions of the mark under the pointer or focus. */
export class Tip {
  #tip;
  #byId;
  #mark = null;

  constructor(tip, root, byId) {
    this.#tip = tip;
    this.#byId = byId;
    const markOf = (e) => e.target.closest?.("mark[data-ids]");
    root.addEventListener("mouseover", (e) => markOf(e) && this.show(markOf(e)));
    root.addEventListener(
      "mouseout",
      (e) => markOf(e) && markOf(e) !== document.activeElement && this.hide(),
    );
    root.addEventListener("focusin", (e) => markOf(e) && this.show(markOf(e)));
    root.addEventListener("focusout", () => this.hide());
    root.addEventListener("click", (e) => markOf(e) && this.show(markOf(e)));
    document.addEventListener("keydown", (e) => e.key === "Escape" && this.hide());
    // Placed in window coordinates: follow the mark when the page or a pane moves.
    const follow = () => this.#mark && this.#place();
    window.addEventListener("resize", follow);
    window.addEventListener("scroll", follow, { capture: true, passive: true });
  }

  show(mark) {
    const items = mark.dataset.ids
      .split(" ")
      .map((id) => this.#byId(id))
      .filter(Boolean);
    if (!items.length) return;
    this.#mark = mark;
    this.#tip.replaceChildren(
      ...items.map((s) =>
        el(
          "div",
          { className: `tip-item focus-${s.focus}` },
          el("strong", {}, label(s.focus)),
          " ",
          s.message,
          s.replacement
            ? el("div", { className: "replacement" }, "Try: ", el("ins", {}, s.replacement))
            : null,
        ),
      ),
    );
    this.#tip.hidden = false;
    this.#place();
  }

  /** Below the mark, kept inside the window. */
  #place() {
    const box = this.#mark.getBoundingClientRect();
    const width = this.#tip.offsetWidth;
    this.#tip.style.left = `${Math.max(8, Math.min(box.left, window.innerWidth - width - 8))}px`;
    this.#tip.style.top = `${box.bottom + 6}px`;
  }

  hide() {
    this.#mark = null;
    this.#tip.hidden = true;
  }
}

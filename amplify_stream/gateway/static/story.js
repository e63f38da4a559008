// One story on screen: applies its events (docs/protocol.md section 1) to the panes and the
// player. Everything an abandoned attempt produced is dropped when a new attempt starts.

import { Narration } from "./audio.js";
import { TextPane, Tip, renderInsights, renderMarked, renderSuggestions, showSpoken } from "./editor.js";
import { Utf16Offsets } from "./spans.js";

export class StoryScreen {
  #els;
  #narration;
  #tip;
  #original = "";
  #originalOffsets = new Utf16Offsets();
  #rewrite;
  #rewriteOffsets = new Utf16Offsets();
  #rewriteOn = true;
  #audioOn = true;
  #attempt = 0;
  #suggestions = new Map(); // id -> suggestion event, in arrival order
  #insights = new Map(); // focus -> insight event
  #word = null;
  #drawing = 0;
  status = "idle";

  /** els: {original, rewrite, suggestions, insights, progress, audio, tip} */
  constructor(els) {
    this.#els = els;
    this.#rewrite = new TextPane(els.rewrite);
    this.#narration = new Narration(els.audio, {
      word: (w) => this.#spoken(w),
      blocked: () => this.#progress("The narration is ready: press play to listen."),
    });
    this.#tip = new Tip(els.tip, els.original, (id) => this.#suggestions.get(id));
    els.suggestions.addEventListener("click", (e) => {
      const id = e.target.closest("button.quote")?.dataset.id;
      const mark = id && els.original.querySelector(`mark[data-ids~="${CSS.escape(id)}"]`);
      mark?.focus(); // focusing shows the tip
    });
  }

  /** A new submission: empty panes, the original shown with no marks yet. */
  begin(text, { rewrite, audio }) {
    this.#original = text;
    this.#originalOffsets = new Utf16Offsets(text);
    this.#rewriteOn = rewrite;
    this.#audioOn = audio;
    this.#attempt = 0;
    this.#narration.reset();
    this.#els.audio.hidden = true;
    this.#dropResults();
    this.status = "submitting";
    this.#progress("Sending…");
  }

  /** The final result, read over HTTP (GET /v1/stories/{id}) when the stream is gone. */
  showResult(story) {
    this.#dropResults();
    this.#setRewrite(story.enhanced_text ?? "");
    for (const s of story.suggestions ?? []) this.#suggestions.set(s.id, s);
    for (const i of story.insights ?? []) this.#insights.set(i.focus, i);
    this.#draw();
    this.status = story.status;
    this.#progress(`Finished (${story.status}).`);
  }

  /** The story will not go on here (refused, or no longer followed). */
  fail(why) {
    this.status = "failed";
    this.#progress(why);
  }

  /** Signed out mid-story: silence the player; the story itself goes on at the service. */
  abandon() {
    this.#narration.reset();
    if (this.status !== "idle") this.#progress("");
    this.status = "idle";
  }

  get rewriteText() {
    return this.#rewrite.text;
  }

  apply(e) {
    switch (e.type) {
      case "story.accepted":
        this.status = "queued";
        return this.#progress("Queued.");
      case "enhancement.started":
      case "enhancement.reset":
        // A later attempt: whatever the earlier ones streamed is void. (A repeated
        // enhancement.started means the work began again too.)
        if (e.attempt >= this.#attempt) this.#newAttempt(e.attempt);
        this.status = "rewriting";
        return this.#progress(
          e.type === "enhancement.reset" ? "Starting over…" : `Rewriting (${e.provider}, ${e.model})…`,
        );
      case "enhancement.delta":
        if (e.attempt > this.#attempt) this.#newAttempt(e.attempt);
        if (e.attempt === this.#attempt) {
          this.#rewrite.append(e.text);
          this.#rewriteOffsets.append(e.text);
        }
        return;
      case "suggestion":
        this.#suggestions.set(e.id, e);
        return this.#drawSoon();
      case "insight":
        this.#insights.set(e.focus, e);
        return this.#drawSoon();
      case "enhancement.completed":
        // The whole text is the authority; the deltas should add up to it.
        if (e.text !== this.#rewrite.text) this.#setRewrite(e.text);
        this.status = "narrating";
        return this.#progress(this.#audioOn ? "Narrating…" : "Finishing…");
      case "audio.started":
      case "audio.reset":
        return this.#narration.start();
      case "audio.chunk":
        return this.#narration.chunk(e.index, e.data);
      case "audio.word":
        return this.#narration.word(e);
      case "audio.completed":
        return this.#narration.complete();
      case "story.completed":
        this.status = e.status;
        return this.#progress(
          { completed: "Done.", failed: "Failed.", cancelled: "Cancelled." }[e.status] ?? e.status,
        );
      default:
        return undefined;
    }
  }

  #newAttempt(attempt) {
    this.#attempt = attempt;
    this.#dropResults();
  }

  #dropResults() {
    this.#setRewrite("");
    this.#suggestions.clear();
    this.#insights.clear();
    this.#draw();
  }

  #setRewrite(text) {
    this.#rewrite.set(text);
    this.#rewriteOffsets = new Utf16Offsets(text);
  }

  #progress(text) {
    this.#els.progress.textContent = text;
  }

  // Suggestions come in bursts: draw once per frame, not once per event.
  #drawSoon() {
    if (!this.#drawing) this.#drawing = requestAnimationFrame(() => this.#draw());
  }

  #draw() {
    cancelAnimationFrame(this.#drawing);
    this.#drawing = 0;
    const all = [...this.#suggestions.values()];
    const spans = all.map((s) => this.#span(s)).filter(Boolean);
    this.#tip.hide(); // its mark is about to be replaced
    renderMarked(this.#els.original, this.#original, spans);
    renderSuggestions(this.#els.suggestions, all, new Set(spans.map((s) => s.suggestion.id)));
    renderInsights(this.#els.insights, this.#insights);
    this.#spoken(this.#word); // the original's text nodes were replaced
  }

  /** Where a suggestion sits in the original, in UTF-16 offsets; null when not located. */
  #span(s) {
    let [start, end] = [s.start_utf16, s.end_utf16];
    if (start == null && s.start != null) {
      [start, end] = [this.#originalOffsets.toUtf16(s.start), this.#originalOffsets.toUtf16(s.end)];
    }
    const ok = start != null && end != null && start >= 0 && start < end && end <= this.#original.length;
    return ok ? { start, end, suggestion: s } : null;
  }

  // audio.word spans count code points of the narrated text: the rewrite when rewriting,
  // else the original. Converted here, against the text as it is now.
  #spoken(w) {
    this.#word = w;
    if (!w || w.start == null || w.end == null) return showSpoken(null);
    const [container, offsets] = this.#rewriteOn
      ? [this.#els.rewrite, this.#rewriteOffsets]
      : [this.#els.original, this.#originalOffsets];
    return showSpoken(container, offsets.toUtf16(w.start), offsets.toUtf16(w.end));
  }
}

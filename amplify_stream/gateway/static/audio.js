// The narration, played while it is still being made: each audio.chunk holds whole MP3
// frames, so its bytes go straight into a Media Source Extensions buffer. Where MSE cannot
// take audio/mpeg, the chunks are kept and played as one Blob at audio.completed.
// audio.word events give each word's time; onWord hears the word being spoken.

const TYPE = "audio/mpeg";
const KEEP_PLAYED_S = 30; // when the buffer is full, drop what was played before this
const LINGER_MS = 250; // a word stays lit this long past its end (the gaps between words)

export const streamingSupported = () => globalThis.MediaSource?.isTypeSupported(TYPE) === true;

export class Narration {
  #audio;
  #onWord;
  #onBlocked;
  #source = null;
  #buffer = null;
  #queue = []; // chunks waiting for the buffer (MSE) or for the end (Blob)
  #next = 0; // index of the next chunk expected
  #complete = false;
  #url = null;
  #words = []; // {offset_ms, duration_ms, start, end}, in time order
  #word = null;
  #frame = 0;

  /** on: {word(w | null), blocked()} (blocked: the browser would not start playing by itself) */
  constructor(audio, on) {
    this.#audio = audio;
    this.#onWord = on.word;
    this.#onBlocked = on.blocked;
    audio.addEventListener("playing", () => this.#follow());
    audio.addEventListener("seeked", () => this.#tick());
    audio.addEventListener("timeupdate", () => this.#pump()); // room may have freed up
  }

  /** audio.started (and audio.reset): a fresh player, nothing of an earlier attempt kept. */
  start() {
    this.reset();
    this.#audio.hidden = false;
    if (streamingSupported()) {
      const source = new MediaSource();
      this.#source = source;
      source.addEventListener("sourceopen", () => this.#opened(source), { once: true });
      this.#setUrl(URL.createObjectURL(source));
      this.#play();
    }
  }

  chunk(index, base64) {
    if (index !== this.#next && index !== 0) return; // not the next one: a repeat
    if (index === 0 && this.#next > 0) this.start(); // the narration started over
    this.#next += 1;
    this.#queue.push(decode(base64));
    this.#pump();
  }

  word(w) {
    this.#words.push(w);
  }

  complete() {
    this.#complete = true;
    if (this.#source) {
      this.#pump(); // ends the stream once the queue is in
      return;
    }
    this.#setUrl(URL.createObjectURL(new Blob(this.#queue, { type: TYPE })));
    this.#queue = [];
    this.#play();
  }

  reset() {
    cancelAnimationFrame(this.#frame);
    this.#audio.pause();
    this.#setUrl(null);
    this.#source = this.#buffer = null;
    this.#queue = [];
    this.#words = [];
    this.#next = 0;
    this.#complete = false;
    this.#show(null);
  }

  #setUrl(url) {
    if (this.#url) URL.revokeObjectURL(this.#url);
    this.#url = url;
    if (url) this.#audio.src = url;
    else {
      this.#audio.removeAttribute("src");
      this.#audio.load();
    }
  }

  #play() {
    this.#audio.play().catch((err) => {
      if (err.name === "NotAllowedError") this.#onBlocked?.();
    });
  }

  #opened(source) {
    if (source !== this.#source) return;
    this.#buffer = source.addSourceBuffer(TYPE); // MP3 has no timestamps: "sequence" mode
    this.#buffer.addEventListener("updateend", () => this.#pump());
    this.#pump();
  }

  /** Feeds the buffer one append at a time (an append while it is updating throws). */
  #pump() {
    const buffer = this.#buffer;
    if (!buffer || buffer.updating || this.#source.readyState !== "open") return;
    if (this.#queue.length) {
      const data = join(this.#queue);
      this.#queue = [];
      try {
        buffer.appendBuffer(data);
      } catch (err) {
        if (err.name !== "QuotaExceededError") throw err;
        this.#queue.unshift(data); // full: free the part already heard, try again later
        const played = this.#audio.currentTime - KEEP_PLAYED_S;
        if (played > 0) buffer.remove(0, played);
      }
      return;
    }
    if (this.#complete) this.#source.endOfStream();
  }

  // The spoken word, every frame while playing (timeupdate fires only a few times a second).
  #follow() {
    cancelAnimationFrame(this.#frame);
    const loop = () => {
      this.#tick();
      if (!this.#audio.paused && !this.#audio.ended) this.#frame = requestAnimationFrame(loop);
      else this.#show(null);
    };
    loop();
  }

  #tick() {
    const ms = this.#audio.currentTime * 1000;
    let lo = 0;
    let hi = this.#words.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#words[mid].offset_ms <= ms) lo = mid + 1;
      else hi = mid;
    }
    const w = this.#words[lo - 1];
    this.#show(w && ms < w.offset_ms + w.duration_ms + LINGER_MS ? w : null);
  }

  #show(w) {
    if (w === this.#word) return;
    this.#word = w;
    this.#onWord(w);
  }
}

function decode(base64) {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(base64);
  const bin = atob(base64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

function join(parts) {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

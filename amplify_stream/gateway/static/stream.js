// The socket to /v1/stream (docs/protocol.md section 1). It watches one story at a time and
// hands that story's events on. When the connection drops it reconnects with exponential
// backoff and asks for the story again after the last cursor it saw: the service sends
// every later event exactly once, so the page carries on where it was.
//
// Live documents (section 6) share the socket: their frames go to whoever claims them
// (on.claim), and on.open tells that owner each time the socket is (re)connected, since a
// document is not resumed but opened again.

const BACKOFF_MS = [500, 15000]; // first wait, longest wait
const STABLE_MS = 5000; // open this long (or any frame) and the backoff starts over
const GONE = ["not_found", "cursor_expired", "unauthorized"]; // resuming cannot help
// A connection can die silently (a laptop asleep, a NAT that forgot it), and the browser
// may take minutes to notice. Quiet this long: ping; still no frame this much later: gone.
const PING_MS = 20000;
const PONG_WAIT_MS = 10000;

export class StorySocket {
  #token;
  #on;
  #ws = null;
  #retries = 0;
  #timer = 0;
  #stable = 0;
  #watchdog = 0;
  #heard = 0; // when the last frame came in
  #stopped = false;
  #story = null; // the story being watched, until its story.completed
  #cursor = null; // the last cursor of that story
  #pending = null; // a story.submit not yet answered by story.accepted
  #online = () => this.#retryNow();

  /** on: {event(e), status(state, detail), refused(), open(), claim(e) -> true when taken} */
  constructor(token, on) {
    this.#token = token;
    this.#on = on;
    window.addEventListener("online", this.#online);
    this.#connect();
  }

  get storyId() {
    return this.#story;
  }

  /** A submission is waiting for its story.accepted. */
  get submitting() {
    return this.#pending !== null;
  }

  get isOpen() {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  /** Submits a story. An idempotency key makes a resend after a drop the same story. */
  submit(options) {
    this.#story = null;
    this.#cursor = null;
    this.#pending = {
      type: "story.submit",
      request_id: crypto.randomUUID(),
      idempotency_key: crypto.randomUUID(),
      ...options,
    };
    this.#send(this.#pending);
  }

  /** False when the socket is down (the caller then cancels over HTTP). */
  cancel() {
    return Boolean(this.#story) && this.#send({ type: "story.cancel", story_id: this.#story });
  }

  /** Any frame; false when the socket is down (nothing is queued: on.open says when it is up). */
  send(frame) {
    return this.#send(frame);
  }

  /** Stops for good (sign-out): no reconnect. */
  close() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#stable);
    clearInterval(this.#watchdog);
    window.removeEventListener("online", this.#online);
    this.#ws?.close(1000);
    this.#ws = null;
    this.#on.status("closed");
  }

  #send(frame) {
    if (!this.isOpen) return false; // sent on reconnect: see #opened
    this.#ws.send(JSON.stringify(frame));
    return true;
  }

  #connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // Browsers cannot set headers on a socket: the token rides in the subprotocol list.
    const ws = new WebSocket(`${scheme}://${location.host}/v1/stream`, [
      "amplify.v1",
      `bearer.${this.#token}`,
    ]);
    let opened = false;
    this.#ws = ws;
    this.#on.status(this.#retries ? "reconnecting" : "connecting");
    ws.addEventListener("open", () => {
      opened = true;
      this.#opened();
    });
    ws.addEventListener("message", (msg) => {
      if (ws !== this.#ws) return;
      this.#heard = Date.now();
      this.#received(msg.data);
    });
    ws.addEventListener("close", () => this.#lost(ws, opened));
  }

  #lost(ws, opened) {
    if (!ws || ws !== this.#ws) return; // an old socket, already replaced
    this.#ws = null;
    clearTimeout(this.#stable);
    clearInterval(this.#watchdog);
    ws.close(); // a no-op when it is closed already
    if (this.#stopped) return;
    // Refused before opening: maybe the token expired (a refused upgrade looks like any
    // other failure to a page), so let the owner check it.
    if (!opened) this.#on.refused?.();
    this.#schedule();
  }

  #opened() {
    this.#on.status("open");
    this.#stable = setTimeout(() => (this.#retries = 0), STABLE_MS);
    this.#heard = Date.now();
    this.#watchdog = setInterval(() => {
      const quiet = Date.now() - this.#heard;
      if (quiet > PING_MS + PONG_WAIT_MS) this.#lost(this.#ws, true);
      else if (quiet > PING_MS) this.#send({ type: "ping" });
    }, PONG_WAIT_MS / 2);
    if (this.#pending) this.#send(this.#pending);
    else if (this.#story) this.#send({ type: "story.resume", story_id: this.#story, cursor: this.#cursor });
    this.#on.open?.();
  }

  #schedule() {
    const [first, longest] = BACKOFF_MS;
    const ceiling = Math.min(longest, first * 2 ** this.#retries);
    // Jitter, so many pages cut off together do not all come back in the same instant.
    const delay = Math.round(ceiling * (0.5 + Math.random() / 2));
    this.#retries += 1;
    this.#on.status("waiting", delay);
    this.#timer = setTimeout(() => this.#connect(), delay);
  }

  #retryNow() {
    if (this.#stopped || this.#ws) return;
    clearTimeout(this.#timer);
    this.#connect();
  }

  #received(data) {
    let e;
    try {
      e = JSON.parse(data);
    } catch {
      return;
    }
    this.#retries = 0;
    if (e.type === "pong") return;
    if (this.#on.claim?.(e)) return; // a live document's
    if (e.type === "story.accepted" && e.request_id && e.request_id === this.#pending?.request_id) {
      this.#pending = null;
      this.#story = e.story_id;
    }
    if (e.type === "error") {
      const forSubmit = Boolean(e.request_id) && e.request_id === this.#pending?.request_id;
      const mine = forSubmit || !e.story_id || e.story_id === this.#story;
      if (forSubmit) this.#pending = null;
      // The story cannot be followed any more: stop asking for it on every reconnect.
      if (e.story_id && e.story_id === this.#story && GONE.includes(e.code)) this.#story = null;
      if (mine) this.#on.event(e); // not an earlier story's
      return;
    }
    if (!e.story_id || e.story_id !== this.#story) return; // an earlier story still running
    if (e.cursor) this.#cursor = e.cursor;
    if (e.type === "story.completed") this.#story = null;
    this.#on.event(e);
  }
}

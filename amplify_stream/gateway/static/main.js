// The live editor page: wires the account, the socket and the story on screen together.

import { Account } from "./account.js";
import { api, sentence } from "./api.js";
import { FOCUS } from "./editor.js";
import { LiveEditor } from "./livemode.js";
import { StoryScreen } from "./story.js";
import { StorySocket } from "./stream.js";

const $ = (id) => document.getElementById(id);
const running = () =>
  ["submitting", "queued", "rewriting", "narrating", "cancelling"].includes(screen.status);

const screen = new StoryScreen({
  original: $("original"),
  rewrite: $("rewrite"),
  suggestions: $("suggestions"),
  insights: $("insights"),
  progress: $("progress"),
  audio: $("narration"),
  tip: $("tip"),
});
const live = new LiveEditor(
  {
    text: $("live-text"),
    marks: $("live-marks"),
    list: $("live-suggestions"),
    insights: $("live-insights"),
    status: $("live-status"),
    say: $("live-say"),
    undo: $("live-undo"),
  },
  { error: showError, token: () => account.token },
);
let socket = null;

const account = new Account(
  {
    form: $("account"),
    username: $("username"),
    password: $("password"),
    signUp: $("signup"),
    signedIn: $("signed-in"),
    who: $("who"),
    signOut: $("signout"),
  },
  { change: connect, error: showError },
);

function connect(token) {
  socket?.close();
  socket = token
    ? new StorySocket(token, {
        event: onEvent,
        status: showConnection,
        refused: () => account.check(),
        open: () => live.connected(),
        claim: (e) => live.claim(e),
      })
    : null;
  live.attach(socket);
  if (!token) {
    screen.abandon();
    showConnection("signed-out");
  }
  update();
}

function onEvent(e) {
  if (e.type === "error") return onError(e);
  screen.apply(e);
  update();
}

async function onError(e) {
  let message = sentence(e.message);
  if (e.code === "tts_unavailable")
    message = `No narration this time: ${message} The text results are complete.`;
  else if (e.retryable) message += " You can try again.";
  showError(message);
  if (screen.status === "submitting" && !socket.submitting && !socket.storyId) {
    screen.fail("Not accepted."); // the submission was refused: fix it and send again
    showEditor(true);
  } else if (e.story_id && e.story_id !== socket.storyId && e.code === "cursor_expired") {
    // The stream's copy is gone; the stored result is still there.
    try {
      screen.showResult(await api.story(account.token, e.story_id));
    } catch (err) {
      showError(`${message} ${err.message}`);
    }
  } else if (e.story_id && e.story_id !== socket.storyId && running()) {
    screen.fail("Stopped."); // the socket let go of the story: it cannot be followed any more
  }
  // Otherwise (tts_unavailable, say) the story's stream goes on.
  update();
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function showConnection(state, delayMs) {
  const text = {
    connecting: "Connecting…",
    reconnecting: "Reconnecting…",
    open: "Connected",
    waiting: `Connection lost: trying again in ${Math.ceil((delayMs ?? 0) / 1000)} s…`,
    closed: "",
    "signed-out": "Sign in to start",
  }[state];
  $("connection").textContent = text ?? "";
  $("connection").dataset.state = state;
}

/** Buttons and views follow the state: one story at a time, edit when none is running. */
function update() {
  const busy = running();
  $("submit").disabled = !socket || busy;
  $("cancel").disabled = !busy || screen.status === "cancelling";
  $("edit").hidden = busy || !$("story").hidden;
}

function showEditor(editing) {
  $("story").hidden = !editing;
  $("original").hidden = editing;
  update();
  if (editing) $("story").focus();
}

$("compose").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("story").value;
  const focus = FOCUS.filter((f) => $(`focus-${f}`).checked);
  if (!text.trim()) return showError("Write or paste a story first.");
  if (!focus.length) return showError("Choose at least one focus.");
  const options = { text, focus, rewrite: $("rewrite-on").checked, audio: $("audio-on").checked };
  showError("");
  screen.begin(text, options);
  socket.submit(options);
  showEditor(false);
});

$("cancel").addEventListener("click", async () => {
  const id = socket?.storyId;
  if (!id) return;
  const before = screen.status;
  screen.status = "cancelling";
  update();
  // Over the socket when it is up; over HTTP when it is down (the stream still ends it).
  if (socket.cancel()) return;
  try {
    await api.cancel(account.token, id);
  } catch (err) {
    showError(err.message);
    screen.status = before;
    update();
  }
});

$("edit").addEventListener("click", () => showEditor(true));

/** Story or live: one is shown, the other keeps its state (a story streams on meanwhile). */
function showMode(mode) {
  for (const name of ["story", "live"]) {
    $(`${name}-mode`).hidden = name !== mode;
    $(`mode-${name}`).setAttribute("aria-pressed", String(name === mode));
  }
  showError("");
  (mode === "live" ? $("live-text") : $("story")).focus();
}

$("mode-story").addEventListener("click", () => showMode("story"));
$("mode-live").addEventListener("click", () => showMode("live"));

account.restore();

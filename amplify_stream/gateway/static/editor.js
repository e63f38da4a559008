// The live editor: signs in, submits over the WebSocket, shows the stream as it arrives,
// and resumes from the last cursor when the socket drops.
const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("token"), ws: null, story: null, cursor: null,
                attempt: 0, text: "", retries: 0 };

function showError(message) { $("error").textContent = message || ""; }

async function account(path) {
  const body = JSON.stringify({ username: $("username").value, password: $("password").value });
  const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body });
  const data = await res.json();
  if (!res.ok) throw new Error(data.error ? data.error.message : res.statusText);
  return data;
}

async function signIn() {
  const data = await account("/v1/auth/token");
  state.token = data.access_token;
  sessionStorage.setItem("token", state.token);
  $("who").textContent = `signed in as ${$("username").value}`;
  connect();
}

function connect() {
  if (!state.token) return;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/stream`;
  const ws = new WebSocket(url, ["amplify.v1", `bearer.${state.token}`]);
  state.ws = ws;
  ws.onopen = () => {
    state.retries = 0;
    $("submit").disabled = false;
    if (state.story) ws.send(JSON.stringify({ type: "story.resume", story_id: state.story, cursor: state.cursor }));
  };
  ws.onmessage = (msg) => onEvent(JSON.parse(msg.data));
  ws.onclose = () => {
    $("submit").disabled = true;
    const delay = Math.min(8000, 250 * 2 ** state.retries++);
    setTimeout(connect, delay);
  };
}

function highlight(text, suggestions) {
  const original = $("original");
  original.textContent = "";
  let at = 0;
  for (const s of [...suggestions].sort((a, b) => a.start - b.start)) {
    if (s.start == null || s.start < at) continue;
    original.append(text.slice(at, s.start));
    const mark = document.createElement("mark");
    mark.className = s.focus;
    mark.title = s.message + (s.replacement ? ` -> ${s.replacement}` : "");
    mark.textContent = text.slice(s.start, s.end);
    original.append(mark);
    at = s.end;
  }
  original.append(text.slice(at));
}

const suggestions = [];
function onEvent(e) {
  if (e.cursor) state.cursor = e.cursor;
  switch (e.type) {
    case "story.accepted": state.story = e.story_id; $("status").textContent = "queued"; $("cancel").disabled = false; break;
    case "enhancement.started":
      if (e.attempt !== state.attempt) { state.attempt = e.attempt; $("rewrite").textContent = ""; }
      $("status").textContent = `${e.provider} / ${e.model}`; break;
    case "enhancement.reset": $("rewrite").textContent = ""; break;
    case "enhancement.delta": $("rewrite").append(e.text); break;
    case "suggestion": {
      suggestions.push(e);
      const li = document.createElement("li");
      li.textContent = `[${e.focus}] "${e.quote}" ${e.message}${e.replacement ? ` -> ${e.replacement}` : ""}`;
      $("suggestions").append(li);
      highlight(state.text, suggestions);
      break;
    }
    case "insight": {
      const li = document.createElement("li");
      li.textContent = `${e.focus}: ${e.summary}`;
      $("insights").append(li); break;
    }
    case "enhancement.completed": $("rewrite").textContent = e.text; break;
    case "error": showError(`${e.code}: ${e.message}`); break;
    case "story.completed":
      $("status").textContent = e.status; $("cancel").disabled = true; state.story = null; break;
  }
}

$("account").addEventListener("submit", (ev) => { ev.preventDefault(); signIn().catch((e) => showError(e.message)); });
$("signup").addEventListener("click", () => account("/v1/auth/register").then(signIn).catch((e) => showError(e.message)));
$("submit").addEventListener("click", () => {
  showError("");
  state.text = $("story").value; state.cursor = null; state.attempt = 0; suggestions.length = 0;
  $("rewrite").textContent = ""; $("suggestions").textContent = ""; $("insights").textContent = "";
  highlight(state.text, []);
  state.ws.send(JSON.stringify({ type: "story.submit", text: state.text, audio: $("audio").checked }));
});
$("cancel").addEventListener("click", () => {
  if (state.story) state.ws.send(JSON.stringify({ type: "story.cancel", story_id: state.story }));
});
if (state.token) { $("who").textContent = "signed in"; connect(); }

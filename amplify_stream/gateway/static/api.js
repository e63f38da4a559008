// The HTTP API (docs/protocol.md section 2). Every failure becomes an ApiError whose message a
// person can read, taken from the contract's error body {"error": {code, message, details}}.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** "wrong username or password" -> "Wrong username or password." */
export function sentence(text) {
  const t = String(text ?? "")
    .trim()
    .replace(/^Value error, /, "");
  if (!t) return "";
  return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".");
}

async function call(method, path, { token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network", "The server cannot be reached. Check the connection and try again.");
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) throw toError(res, data);
  return data;
}

function toError(res, data) {
  const error = data?.error ?? {};
  let message = sentence(error.message) || `The server answered ${res.status} ${res.statusText}.`;
  // Validation errors name each field that is wrong: say which, not just "not valid".
  if (Array.isArray(error.details) && error.details.length) {
    message = error.details.map((d) => `${d.loc?.at(-1) ?? "value"}: ${sentence(d.msg)}`).join(" ");
  }
  const retryAfter = res.headers.get("Retry-After");
  if (retryAfter) message += ` Try again in ${retryAfter} s.`;
  return new ApiError(res.status, error.code ?? "http", message);
}

export const api = {
  register: (username, password) => call("POST", "/v1/auth/register", { body: { username, password } }),
  signIn: (username, password) => call("POST", "/v1/auth/token", { body: { username, password } }),
  me: (token) => call("GET", "/v1/auth/me", { token }),
  story: (token, id) => call("GET", `/v1/stories/${encodeURIComponent(id)}`, { token }),
  cancel: (token, id) => call("POST", `/v1/stories/${encodeURIComponent(id)}/cancel`, { token }),
  preferences: (token) => call("GET", "/v1/me/preferences", { token }),
  setPreferences: (token, body) => call("PUT", "/v1/me/preferences", { token, body }),
};

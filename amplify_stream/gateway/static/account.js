// Creating an account, signing in and out. The token is kept in sessionStorage: it lasts
// as long as the tab, survives a reload, and no other tab or site reads it.

import { ApiError, api } from "./api.js";

const KEY = "amplify.session";

export class Account {
  #els;
  #on;
  token = null;

  /** els: {form, username, password, signUp, signedIn, who, signOut}; on: {change(token), error(message)} */
  constructor(els, on) {
    this.#els = els;
    this.#on = on;
    els.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.#busy(() => this.#signIn());
    });
    els.signUp.addEventListener("click", () => {
      if (els.form.reportValidity()) this.#busy(() => this.#signUp());
    });
    els.signOut.addEventListener("click", () => this.signOut());
  }

  /** The session of an earlier visit, if the service still takes its token. */
  async restore() {
    const saved = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
    if (!saved?.token) return this.#show(null);
    try {
      const me = await api.me(saved.token);
      this.#set(saved.token, me.username);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.signOut();
      else this.#set(saved.token, saved.username); // offline now: the socket will retry
    }
  }

  /** Also when the service stops taking the token: `why` says so to the person. */
  signOut(why) {
    sessionStorage.removeItem(KEY);
    this.token = null;
    this.#show(null);
    this.#on.change(null);
    if (why) this.#on.error(why);
  }

  /** After a refused socket: is the token still good? Signs out when it is not. */
  async check() {
    if (!this.token) return;
    try {
      await api.me(this.token);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401)
        this.signOut("Your session has ended. Please sign in again.");
    }
  }

  async #signUp() {
    const { username, password } = this.#credentials();
    await api.register(username, password);
    await this.#signIn();
  }

  async #signIn() {
    const { username, password } = this.#credentials();
    const { access_token: token } = await api.signIn(username, password);
    this.#els.password.value = "";
    this.#set(token, username);
  }

  #credentials() {
    return { username: this.#els.username.value.trim(), password: this.#els.password.value };
  }

  #set(token, username) {
    sessionStorage.setItem(KEY, JSON.stringify({ token, username }));
    this.token = token;
    this.#show(username);
    this.#on.change(token);
  }

  #show(username) {
    this.#els.form.hidden = Boolean(username);
    this.#els.signedIn.hidden = !username;
    this.#els.who.textContent = username ?? "";
  }

  async #busy(work) {
    const buttons = this.#els.form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    this.#on.error("");
    try {
      await work();
    } catch (err) {
      this.#on.error(err.message);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }
}

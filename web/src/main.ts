import "./styles.css";

import { ChatApi, ChatError, backoffDelay, type Participant, type ParticipantKind } from "@chatd/client";

import { ChatApp } from "./app.js";
import { byId, h } from "./dom.js";
import { isSessionKey, loadSession, saveSession } from "./store.js";
import { KIND_NAMES, describeError } from "./words.js";

// The session (token and who we are) lives in localStorage: it survives a
// reload and a new tab, and logging out in one tab logs out the others.

const root = byId("app");
const api = new ChatApi({ baseUrl: "" });
let app: ChatApp | null = null;
let bootTimer: ReturnType<typeof setTimeout> | undefined;
let bootTicker: ReturnType<typeof setInterval> | undefined;

const KIND_ARTICLE: Record<ParticipantKind, string> = { user: "a customer", shop: "a shop", admin: "support staff" };

function logout(message?: string): void {
  app?.stop();
  app = null;
  api.token = null;
  saveSession(null);
  showAuth(message);
}

function startApp(me: Participant): void {
  stopBootRetry();
  app?.stop();
  app = new ChatApp(root, api, me, logout);
  app.start();
}

/** What a failed log-in means, in words, and which other account types to offer. */
function loginFailure(e: unknown, kind: ParticipantKind): { text: string; others: ParticipantKind[] } {
  if (e instanceof ChatError) {
    switch (e.code) {
      case "unauthorized": {
        // Usernames are per account type: a shop's username with "Customer"
        // selected is the usual mistake.
        const others = (["user", "shop", "admin"] as const).filter((k) => k !== kind && (k !== "admin" || kind === "admin"));
        return {
          text: `Wrong username or password for a ${KIND_NAMES[kind].toLowerCase()} account.` +
            (others.length ? ` Is it ${others.map((k) => KIND_ARTICLE[k]).join(" or ")} account?` : ""),
          others,
        };
      }
      case "forbidden":
        return { text: "This account is blocked. Contact support if you think this is a mistake.", others: [] };
      case "rate_limited":
        return { text: "Too many attempts. Wait a minute and try again.", others: [] };
      case "offline":
        return { text: "Cannot reach chatd. Check your connection and try again.", others: [] };
      case "unavailable":
      case "internal":
        return { text: "chatd is temporarily unavailable. Try again in a moment.", others: [] };
      case "bad_request":
        return { text: `Check the form: ${e.message}`, others: [] };
    }
  }
  return { text: describeError(e), others: [] };
}

function registerFailure(e: unknown): string {
  if (e instanceof ChatError && e.code === "conflict") return "That username is already taken. Choose another one, or log in.";
  return loginFailure(e, "user").text;
}

function showAuth(message?: string): void {
  stopBootRetry();
  let mode: "login" | "register" = "login";
  const status = h("div", { id: "auth-error", class: "error", role: "alert", hidden: !message }, message ?? "");
  const kind = h("select", { id: "kind", name: "kind" },
    h("option", { value: "user" }, "Customer"),
    h("option", { value: "shop" }, "Shop"),
    h("option", { value: "admin" }, "Support staff"),
  );
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true,
    autocapitalize: "none", spellcheck: "false",
    pattern: "[a-z0-9_.\\-]{3,32}", title: "3–32 characters: a-z 0-9 _ . -" });
  const password = h("input", { id: "password", name: "password", type: "password", required: true, minlength: 8,
    autocomplete: "current-password" });
  const displayName = h("input", { id: "display-name", name: "display_name", autocomplete: "name" });
  const description = h("input", { id: "description", name: "description" });
  const registerOnly = h("div", { class: "register-only", hidden: true },
    h("label", { for: "display-name" }, "Display name"), displayName,
    h("div", { id: "description-field" }, h("label", { for: "description" }, "Shop description (optional)"), description),
  );
  const submit = h("button", { type: "submit", id: "auth-submit" }, "Log in");
  const toggle = h("button", { type: "button", class: "link", id: "auth-toggle" }, "New here? Create an account");

  const sync = () => {
    registerOnly.hidden = mode === "login";
    displayName.required = mode === "register";
    byId("description-field").hidden = kind.value !== "shop";
    submit.textContent = mode === "login" ? "Log in" : "Register";
    toggle.textContent = mode === "login" ? "New here? Create an account" : "Have an account? Log in";
    password.autocomplete = mode === "login" ? "current-password" : "new-password";
    // Support staff accounts are created by other staff or by configuration, not here.
    (kind.querySelector('option[value="admin"]') as HTMLOptionElement).disabled = mode === "register";
    if (mode === "register" && kind.value === "admin") kind.value = "user";
    byId("auth-title").textContent = mode === "login" ? "Log in" : "Create an account";
  };
  toggle.addEventListener("click", () => {
    mode = mode === "login" ? "register" : "login";
    status.hidden = true;
    sync();
  });
  kind.addEventListener("change", sync);

  const form = h("form", { class: "auth-form", "aria-labelledby": "auth-title", novalidate: false },
    h("h1", { class: "brand" }, "chatd"),
    h("h2", { id: "auth-title" }, "Log in"),
    status,
    h("label", { for: "kind" }, "I am a"), kind,
    h("label", { for: "username" }, "Username"), username,
    h("label", { for: "password" }, "Password"), password,
    registerOnly,
    submit,
    toggle,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    status.hidden = true;
    const k = kind.value as ParticipantKind;
    try {
      if (mode === "register") {
        try {
          await api.register(k, {
            username: username.value,
            password: password.value,
            display_name: displayName.value || username.value,
            ...(k === "shop" && description.value ? { description: description.value } : {}),
          });
        } catch (e) {
          status.replaceChildren(registerFailure(e));
          status.hidden = false;
          submit.disabled = false;
          return;
        }
      }
      const r = await api.login(k, username.value, password.value);
      saveSession({ token: r.access_token, me: r.participant });
      startApp(r.participant);
    } catch (e) {
      const f = loginFailure(e, k);
      status.replaceChildren(
        h("span", {}, f.text),
        ...f.others.map((other) => h("button", { type: "button", class: "link", onclick: () => {
          kind.value = other;
          sync();
          form.requestSubmit();
        } }, `Log in as ${KIND_ARTICLE[other]}`)),
      );
      status.hidden = false;
      submit.disabled = false;
      password.focus();
    }
  });
  root.replaceChildren(h("main", { class: "auth" }, form));
  sync();
  username.focus();
}

function stopBootRetry(): void {
  clearTimeout(bootTimer);
  clearInterval(bootTicker);
  window.removeEventListener("online", retryBootNow);
}

let retryBootNow: () => void = () => {};

/**
 * Checks the kept session with GET /v1/me. Only a 401 ends it; anything else
 * (a 503 while the server restarts, no network) is retried with backoff, and
 * the page says so.
 */
async function resume(token: string, attempt: number): Promise<void> {
  stopBootRetry();
  api.token = token;
  try {
    const me = await api.me();
    saveSession({ token, me });
    startApp(me);
  } catch (e) {
    if (e instanceof ChatError && e.code === "unauthorized") {
      logout("You have been signed out. Please log in again.");
      return;
    }
    const wait = backoffDelay(attempt, { baseMs: 1000, maxMs: 15000 });
    const due = Date.now() + wait;
    const why = e instanceof ChatError && e.code === "offline"
      ? "Cannot reach chatd (you may be offline)."
      : e instanceof ChatError && e.code === "forbidden"
        ? "Your account is blocked."
        : "chatd is temporarily unavailable.";
    const countdown = h("span", { id: "resume-countdown" });
    const tick = () => {
      countdown.textContent = `Trying again in ${Math.max(1, Math.ceil((due - Date.now()) / 1000))} s…`;
    };
    tick();
    retryBootNow = () => void resume(token, attempt + 1);
    root.replaceChildren(h("main", { class: "auth" },
      h("div", { class: "auth-form", role: "status", id: "resume" },
        h("h1", { class: "brand" }, "chatd"),
        h("p", {}, `${why} Your session and unsent messages are kept. `, countdown),
        h("button", { type: "button", id: "resume-now", onclick: () => retryBootNow() }, "Try now"),
        h("button", { type: "button", class: "link", onclick: () => logout() }, "Log out"),
      )));
    bootTicker = setInterval(tick, 1000);
    bootTimer = setTimeout(() => retryBootNow(), wait);
    window.addEventListener("online", retryBootNow);
  }
}

function boot(): void {
  const s = loadSession();
  if (s) {
    root.replaceChildren(h("main", { class: "auth" }, h("p", { class: "muted", role: "status" }, "Loading…")));
    void resume(s.token, 0);
  } else {
    showAuth();
  }
}

// Logging in or out in another tab: follow it.
window.addEventListener("storage", (ev) => {
  if (!isSessionKey(ev.key)) return;
  const s = loadSession();
  if (s?.token === api.token) return;
  app?.stop();
  app = null;
  if (s) void resume(s.token, 0);
  else logout();
});

boot();

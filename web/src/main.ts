import "./styles.css";

import { ChatApi, type Participant, type ParticipantKind } from "@chatd/client";

import { ChatApp, describeError } from "./app.js";
import { byId, h } from "./dom.js";

// The token lives in sessionStorage: per tab, so two tabs can be two people,
// and gone when the tab closes.
const SESSION_KEY = "chatd.session";

interface Session {
  token: string;
  me: Participant;
}

const root = byId("app");
const api = new ChatApi({ baseUrl: "" });
let app: ChatApp | null = null;

function saveSession(s: Session | null): void {
  if (s) sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  else sessionStorage.removeItem(SESSION_KEY);
}

function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

function logout(): void {
  app?.stop();
  app = null;
  api.token = null;
  saveSession(null);
  showAuth();
}

function startApp(me: Participant): void {
  app?.stop();
  app = new ChatApp(root, api, me, logout);
  app.start();
}

function showAuth(message?: string): void {
  let mode: "login" | "register" = "login";
  const status = h("p", { id: "auth-error", class: "error", role: "alert", hidden: !message }, message ?? "");
  const kind = h("select", { id: "kind", name: "kind" },
    h("option", { value: "user" }, "Customer (user)"),
    h("option", { value: "shop" }, "Shop"),
    h("option", { value: "admin" }, "Admin"),
  );
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true,
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
    // Admins are created by another admin or by configuration, not here.
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
        await api.register(k, {
          username: username.value,
          password: password.value,
          display_name: displayName.value || username.value,
          ...(k === "shop" && description.value ? { description: description.value } : {}),
        });
      }
      const r = await api.login(k, username.value, password.value);
      saveSession({ token: r.access_token, me: r.participant });
      startApp(r.participant);
    } catch (e) {
      status.textContent = describeError(e);
      status.hidden = false;
      submit.disabled = false;
    }
  });
  root.replaceChildren(h("main", { class: "auth" }, form));
  sync();
  username.focus();
}

async function boot(): Promise<void> {
  const s = loadSession();
  if (s) {
    api.token = s.token;
    try {
      const me = await api.me();
      saveSession({ token: s.token, me });
      startApp(me);
      return;
    } catch (e) {
      saveSession(null);
      api.token = null;
      showAuth(describeError(e));
      return;
    }
  }
  showAuth();
}

void boot();

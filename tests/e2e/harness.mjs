// What the browser tests need around them: a real chatd process (started,
// stopped, restarted on the same ports and data dir), the system chromium
// driven by playwright-core, and small polling helpers. No mocks.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const sourceDir = resolve(here, "..", "..");
export const webRoot = process.env.CHATD_WEB_ROOT ?? join(sourceDir, "web", "dist");
export const chatdBinary = process.env.CHATD_BINARY ?? join(sourceDir, "build", "chatd");
export const chromiumPath = process.env.CHATD_CHROMIUM ?? "/usr/bin/chromium";
export const screenshotDir = process.env.CHATD_E2E_OUT ?? join(sourceDir, "build", "e2e-screenshots");

/** Fails (never skips) when something the tests need was not built. */
export function checkPrerequisites() {
  const missing = [];
  if (!existsSync(join(webRoot, "index.html"))) {
    missing.push(`the web client: ${webRoot}/index.html is missing; run scripts/build-web.sh first`);
  }
  if (!existsSync(chatdBinary)) missing.push(`chatd: ${chatdBinary} is missing (set CHATD_BINARY)`);
  if (!existsSync(chromiumPath)) missing.push(`chromium: ${chromiumPath} is missing (apt-get install chromium)`);
  if (missing.length) throw new Error("e2e prerequisites missing:\n  - " + missing.join("\n  - "));
}

export class Chatd {
  constructor() {
    this.dataDir = mkdtempSync(join(tmpdir(), "chatd-e2e-"));
    this.gateway = "127.0.0.1:0";
    this.chatServer = "127.0.0.1:0";
    this.proc = null;
    this.log = [];
  }

  get baseUrl() {
    return `http://${this.gateway}`;
  }

  /** Starts chatd all; resolves once both listeners are announced and /healthz answers. */
  async start() {
    const args = [
      "all",
      "--set", `gateway.listen=${this.gateway}`,
      "--set", `chat_server.listen=${this.chatServer}`,
      "--set", `storage.path=${join(this.dataDir, "data")}`,
      "--set", `gateway.web_root=${webRoot}`,
      "--set", "auth.password_cost=fast",
      "--set", "admin.username=root",
      "--set", "admin.password=change-me-now",
      // One notification per message, so a test can tell which message caused one.
      "--set", "notifications.coalesce_ms=0",
    ];
    const proc = spawn(chatdBinary, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    // Never leave a chatd behind, even when the runner is killed by a timeout.
    const reap = () => proc.kill("SIGKILL");
    process.once("exit", reap);
    proc.once("exit", () => process.off("exit", reap));
    const exited = new Promise((res) => proc.once("exit", (code, signal) => res({ code, signal })));
    this.exited = exited;
    proc.stderr.on("data", (d) => this.keepLog(d));
    const listening = new Promise((res, rej) => {
      let buf = "";
      const seen = {};
      proc.stdout.on("data", (d) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          const m = /^listening (\S+) (\S+)$/.exec(line);
          if (m) seen[m[1]] = m[2];
          if (seen.gateway && seen["chat-server"]) res(seen);
        }
      });
      exited.then(({ code, signal }) =>
        rej(new Error(`chatd exited (${code ?? signal}) before listening:\n${this.log.join("").slice(-3000)}`)));
      setTimeout(() => rej(new Error("chatd did not announce its listeners in 30 s")), 30000);
    });
    const seen = await listening;
    // Keep the ports: a restart binds the same ones, as a real deployment would.
    this.gateway = seen.gateway;
    this.chatServer = seen["chat-server"];
    await eventually(async () => (await fetch(`${this.baseUrl}/healthz`)).ok, { timeout: 15000, what: "healthz" });
  }

  keepLog(d) {
    this.log.push(d.toString());
    if (this.log.length > 2000) this.log.splice(0, 1000);
  }

  async stop() {
    if (!this.proc) return;
    const proc = this.proc;
    this.proc = null;
    proc.kill("SIGTERM");
    const killer = setTimeout(() => proc.kill("SIGKILL"), 10000);
    await this.exited;
    clearTimeout(killer);
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  async cleanup() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  // ---- the HTTP API, for setup and for checking what the pages cannot show ----

  async api(method, path, { token, body } = {}) {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return data;
  }

  async login(kind, username, password) {
    return (await this.api("POST", "/v1/auth/login", { body: { kind, username, password } })).access_token;
  }
}

export async function launchBrowser() {
  // playwright-core never downloads a browser: it drives the system chromium.
  // launch() gives the browser a fresh temporary profile (user data dir) of
  // its own and removes it on close.
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Polls `fn` until it returns something truthy; throws with `what` after `timeout`. */
export async function eventually(fn, { timeout = 10000, interval = 100, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

export function ensureScreenshotDir() {
  mkdirSync(screenshotDir, { recursive: true });
  return screenshotDir;
}

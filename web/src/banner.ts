// What the page says at the top: the connection banner (connecting, offline
// with a countdown and "Retry now", disconnected or blocked with
// "Reconnect") and the passing error and info lines.

import type { StatusEvent } from "@chatd/client";

import type { Ctx } from "./context.js";
import { byId, h } from "./dom.js";
import { closedReason } from "./words.js";

export class ConnectionBanner {
  private readonly ctx: Ctx;
  /** When the next reconnect attempt is due (the banner counts down to it). */
  private retryAt: number | null = null;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(ctx: Ctx) {
    this.ctx = ctx;
  }

  element(): HTMLElement {
    return h("div", { id: "banner", class: "banner", role: "status", "aria-live": "polite", hidden: true });
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), 1000);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The socket's new status (already in the model). */
  update(st: StatusEvent): void {
    this.retryAt = st.status === "reconnecting" && st.retryInMs !== undefined ? Date.now() + st.retryInMs : null;
    this.render();
  }

  render(): void {
    const el = document.getElementById("banner");
    if (!el) return;
    const s = this.ctx.model.status;
    el.dataset.status = s.status;
    if (s.status === "open") {
      el.hidden = true;
      el.replaceChildren();
      return;
    }
    el.hidden = false;
    if (s.status === "connecting" || s.status === "idle") {
      el.replaceChildren("Connecting…");
    } else if (s.status === "reconnecting") {
      el.replaceChildren(
        h("span", { id: "banner-text" }, this.reconnectText()), " ",
        h("button", { type: "button", class: "link", id: "retry-now", onclick: () => this.ctx.socket.reconnectNow() },
          "Retry now"),
      );
    } else if (s.status === "closed") {
      el.replaceChildren(
        h("span", { id: "banner-text" }, closedReason(s.error).text), " ",
        h("button", { type: "button", class: "link", id: "reconnect", onclick: () => this.ctx.socket.connect() },
          "Reconnect"),
      );
    }
  }

  private reconnectText(): string {
    if (this.retryAt === null) return "Offline · reconnecting…";
    const secs = Math.max(1, Math.ceil((this.retryAt - Date.now()) / 1000));
    return `Offline · reconnecting in ${secs} s`;
  }

  /** Moves the countdown without rebuilding the banner (a focused button keeps focus). */
  private tick(): void {
    if (this.ctx.model.status.status !== "reconnecting") return;
    const t = document.getElementById("banner-text");
    const text = this.reconnectText();
    if (t && t.textContent !== text) t.textContent = text;
  }
}

/** The error line (an alert, for 8 s) and the info line (polite, for 4 s). */
export class Notices {
  private errorTimer: ReturnType<typeof setTimeout> | undefined;

  elements(): HTMLElement[] {
    return [
      h("div", { id: "error", class: "error", role: "alert", hidden: true }),
      h("div", { id: "info", class: "info", role: "status", "aria-live": "polite", hidden: true }),
    ];
  }

  showError(text: string): void {
    const el = byId("error");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => {
      el.hidden = true;
    }, 8000);
  }

  showInfo(text: string): void {
    const el = byId("info");
    el.textContent = text;
    el.hidden = false;
    setTimeout(() => {
      el.hidden = true;
    }, 4000);
  }
}

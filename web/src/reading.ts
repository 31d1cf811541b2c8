// Honest read receipts: a message is marked read only once it has been on
// screen (half of it, or 60 px of a tall one) in the open conversation while
// the page is visible and focused.

import { compareIds, pagePresence, type Id } from "@chatd/client";

import type { Ctx } from "./context.js";
import type { ConvState } from "./model.js";

export class Reading {
  private readonly ctx: Ctx;
  private observer: IntersectionObserver | null = null;

  constructor(ctx: Ctx) {
    this.ctx = ctx;
  }

  stop(): void {
    this.observer?.disconnect();
  }

  /**
   * Marks read what the reader has really seen: messages from others that are
   * on screen (at least half of one, or 60 px of a tall one) in the open
   * conversation, while the page is visible and focused. Called when the
   * IntersectionObserver reports a change, when the page comes to the front
   * and when a conversation is opened, so a message that arrived while the
   * reader was scrolled up or away stays unread.
   */
  readOnScreen(): void {
    const st = this.ctx.model.active;
    const box = document.getElementById("messages");
    if (!st || st.observer || !box || pagePresence(document) !== "active") return;
    const view = box.getBoundingClientRect();
    let newest: Id | null = null;
    for (const el of box.querySelectorAll<HTMLElement>("article[data-unread]")) {
      const r = el.getBoundingClientRect();
      const shown = Math.min(r.bottom, view.bottom) - Math.max(r.top, view.top);
      if (r.height > 0 && (shown >= r.height / 2 || shown >= 60)) {
        const id = el.dataset.messageId;
        if (id && (!newest || compareIds(id, newest) > 0)) newest = id;
      }
    }
    if (newest) this.markRead(st, newest);
  }

  /** Watches the unread messages of the open conversation scroll into view. */
  watch(box: HTMLElement): void {
    if (!this.observer) {
      this.observer = new IntersectionObserver(() => this.readOnScreen(), { root: box, threshold: [0, 0.5, 1] });
    }
    this.observer.disconnect();
    for (const el of box.querySelectorAll("article[data-unread]")) this.observer.observe(el);
  }

  private markRead(st: ConvState, upTo: Id): void {
    const { model, socket, api } = this.ctx;
    const last = st.conv.last_read_message_id;
    if (last && compareIds(upTo, last) <= 0) return;
    st.conv.last_read_message_id = upTo;
    const left = model.sortedMessages(st)
      .filter((m) => m.sender.id !== model.me.id && compareIds(m.id, upTo) > 0).length;
    st.conv.unread_count = Math.min(st.conv.unread_count, left);
    this.ctx.sidebar.render();
    const box = document.getElementById("messages");
    for (const el of box?.querySelectorAll<HTMLElement>("article[data-unread]") ?? []) {
      if (compareIds(el.dataset.messageId ?? "0", upTo) <= 0) {
        el.removeAttribute("data-unread");
        this.observer?.unobserve(el);
      }
    }
    const done = socket.status === "open"
      ? socket.markRead(st.conv.id, upTo)
      : api.markRead(st.conv.id, upTo);
    done.catch(() => {
      // Try again the next time it is on screen.
      if (st.conv.last_read_message_id === upTo) st.conv.last_read_message_id = last ?? null;
    });
  }
}

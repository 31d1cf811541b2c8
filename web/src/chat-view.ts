// The open conversation's messages: day separators, groups of one sender's
// messages, the "New messages" divider, read receipts ("Seen"), pending sends
// (from the outbox), the typing line, scroll-back through history and the
// "Jump to latest" button.

import { compareIds, type Id, type Message } from "@chatd/client";

import type { Ctx } from "./context.js";
import { byId, h, linkified, timeEl, touchScreen } from "./dom.js";
import { FIRST_PAGE, PAGE, type ConvState } from "./model.js";
import { GROUP_MS, dayKey, dayLabel } from "./text.js";
import { describeError } from "./words.js";

/** Closer than this to the bottom counts as "at the latest message". */
const NEAR_BOTTOM_PX = 80;

export class ChatView {
  private readonly ctx: Ctx;

  constructor(ctx: Ctx) {
    this.ctx = ctx;
  }

  /**
   * The message list with its jump button. It is not a live region: it is
   * rendered whole, and new messages from others are announced by the alerts'
   * live region instead (alerts.ts). One tab stop; see message-keys.ts.
   */
  element(): HTMLElement {
    return h("div", { class: "messages-wrap" },
      h("p", { id: "messages-help", class: "visually-hidden" },
        "Arrow keys move between messages; Enter opens a message's actions."),
      h("div", { id: "messages", class: "messages", role: "region", "aria-label": "Messages",
        "aria-describedby": "messages-help", onscroll: () => this.onScroll(), ...this.ctx.keys.listeners() }),
      h("button", { type: "button", id: "jump", class: "jump", hidden: true, onclick: () => this.jumpToLatest() },
        "Jump to latest ↓"),
    );
  }

  typingElement(): HTMLElement {
    return h("div", { id: "typing", class: "typing", "aria-live": "polite" });
  }

  render(stickToBottom: boolean): void {
    const box = document.getElementById("messages");
    if (!box) return;
    const { model } = this.ctx;
    const st = model.active;
    if (!st) {
      box.replaceChildren();
      this.updateJump();
      return;
    }
    const nearBottom = this.nearBottom();
    const keepFocus = document.activeElement instanceof HTMLElement && box.contains(document.activeElement)
      ? document.activeElement.dataset.focusKey : undefined;
    const msgs = model.sortedMessages(st);
    // The newest of my messages each other member has read: "Seen" goes there.
    let seenId: Id | null = null;
    for (const readId of st.peerRead.values()) {
      for (const m of msgs) {
        if (m.sender.id === model.me.id && compareIds(m.id, readId) <= 0 && (!seenId || compareIds(m.id, seenId) > 0)) {
          seenId = m.id;
        }
      }
    }
    const items: HTMLElement[] = [];
    items.push(st.hasMore
      ? h("button", { type: "button", class: "older ghost", "data-item": "", "data-focus-key": "older",
        disabled: st.loadingOlder,
        onclick: () => void this.loadOlder() }, st.loadingOlder ? "Loading…" : "Load older messages")
      : h("p", { class: "muted start" }, "This is the beginning of the conversation."));
    let prev: Message | null = null;
    const now = Date.now();
    for (const m of msgs) {
      let grouped = prev !== null && prev.sender.id === m.sender.id && m.created_at - prev.created_at < GROUP_MS;
      if (!prev || dayKey(prev.created_at) !== dayKey(m.created_at)) {
        items.push(h("div", { class: "day-separator", role: "separator", "data-testid": "day-separator" },
          h("span", {}, dayLabel(m.created_at, now))));
        grouped = false;
      }
      if (m.id === st.unreadFrom) {
        items.push(h("div", { id: "new-divider", class: "new-divider", role: "separator", "data-testid": "new-divider" },
          h("span", {}, "New messages")));
        grouped = false;
      }
      items.push(this.messageItem(m, st, m.id === seenId, grouped));
      prev = m;
    }
    items.push(...this.ctx.outbox.items(st, msgs));
    box.replaceChildren(...items);
    this.ctx.keys.decorate(box);
    if (keepFocus) {
      const again = box.querySelector<HTMLElement>(`[data-focus-key="${keepFocus}"]`) ?? this.ctx.keys.tabStop(box);
      again?.focus({ preventScroll: true });
    }
    if (stickToBottom || nearBottom) box.scrollTop = box.scrollHeight;
    this.updateJump();
    if (!st.observer) this.ctx.reading.watch(box);
  }

  private messageItem(m: Message, st: ConvState, seen: boolean, grouped: boolean): HTMLElement {
    const { model } = this.ctx;
    const mine = m.sender.id === model.me.id;
    const admin = model.me.kind === "admin";
    const lastRead = st.conv.last_read_message_id;
    const unread = !mine && !st.observer && (!lastRead || compareIds(m.id, lastRead) > 0);
    const canEdit = mine && !m.deleted && !st.observer;
    const canDelete = (mine || admin) && !m.deleted;
    const author = mine ? "You" : model.name(m.sender.id);
    if (model.editing === m.id) return this.ctx.actions.editForm(m);
    return h("article", {
      class: `msg${mine ? " mine" : ""}${m.deleted ? " deleted" : ""}${grouped ? " grouped" : ""}`,
      "data-message-id": m.id,
      "data-item": "",
      "data-focus-key": `m${m.id}`,
      "data-unread": unread ? "" : undefined,
      "aria-label": `${author}: ${m.deleted ? "message deleted" : m.body}`,
    },
      mine || grouped ? null : h("header", { class: "author" }, author),
      m.deleted
        ? h("p", { class: "body tombstone" }, "This message was deleted.")
        : h("p", { class: "body" }, ...linkified(m.body)),
      h("footer", { class: "meta" },
        timeEl(m.created_at),
        m.edited_at && !m.deleted ? h("span", {}, " · edited") : null,
        mine && !m.deleted ? h("span", { class: "receipt", "data-testid": seen ? "seen" : "sent" },
          seen ? " · Seen" : " · Sent") : null,
        ...this.ctx.actions.buttons(m, canEdit, canDelete),
      ),
    );
  }

  renderTyping(): void {
    const el = document.getElementById("typing");
    if (!el) return;
    const { model } = this.ctx;
    const st = model.active;
    const now = Date.now();
    const who: string[] = [];
    if (st) {
      for (const [id, until] of st.typing) {
        if (until > now) who.push(model.name(id));
        else st.typing.delete(id);
      }
    }
    const text = who.length === 0 ? "" : who.length === 1 ? `${who[0]} is typing…` : `${who.join(", ")} are typing…`;
    if (el.textContent !== text) el.textContent = text;
  }

  nearBottom(): boolean {
    const box = document.getElementById("messages");
    return !box || box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
  }

  /** Shows "Jump to latest" when scrolled up, with the number of new messages below. */
  updateJump(): void {
    const jump = document.getElementById("jump");
    if (!jump) return;
    const st = this.ctx.model.active;
    const near = this.nearBottom();
    if (st && near) st.newBelow = 0;
    jump.hidden = !st || near;
    const n = st?.newBelow ?? 0;
    const text = n > 0 ? `${n} new message${n === 1 ? "" : "s"} ↓` : "Jump to latest ↓";
    if (jump.textContent !== text) jump.textContent = text;
    jump.classList.toggle("has-new", n > 0);
  }

  private jumpToLatest(): void {
    const box = byId("messages");
    box.scrollTop = box.scrollHeight;
    this.updateJump();
    // On a phone focusing the composer would open the keyboard over what was just jumped to.
    if (!touchScreen()) this.ctx.composer.focus();
  }

  private onScroll(): void {
    const box = byId("messages");
    if (box.scrollTop < 40) void this.loadOlder();
    this.updateJump();
  }

  async loadOlder(): Promise<void> {
    const { model, socket, api } = this.ctx;
    const st = model.active;
    if (!st || st.loadingOlder || !st.hasMore) return;
    st.loadingOlder = true;
    this.render(false);
    const oldest = model.sortedMessages(st)[0];
    const box = byId("messages");
    const before = box.scrollHeight - box.scrollTop;
    try {
      const opts: { before?: Id; limit: number } = { limit: oldest ? PAGE : FIRST_PAGE };
      if (oldest) opts.before = oldest.id;
      const page = socket.status === "open" && !st.observer
        ? await socket.history(st.conv.id, opts)
        : await api.history(st.conv.id, opts);
      for (const m of page.messages) st.messages.set(m.id, m);
      st.hasMore = page.has_more;
    } catch (e) {
      this.ctx.notices.showError(describeError(e));
    } finally {
      st.loadingOlder = false;
    }
    this.render(false);
    // Keep the message that was at the top where it was.
    box.scrollTop = box.scrollHeight - before;
  }
}

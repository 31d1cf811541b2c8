// The notifications panel: what the server notified me of while I was away
// (GET /v1/notifications); each opens its conversation.

import type { Notification as ChatNotification } from "@chatd/client";

import type { Ctx } from "./context.js";
import { h, timeEl } from "./dom.js";
import { describeError } from "./words.js";

export class NotificationsPanel {
  private readonly ctx: Ctx;
  /** The panel is shown instead of the chat. */
  open = false;
  private list: ChatNotification[] = [];

  constructor(ctx: Ctx) {
    this.ctx = ctx;
  }

  element(): HTMLElement {
    return h("section", { id: "notifications", class: "notifications", "aria-labelledby": "notif-title", hidden: true },
      h("div", { class: "chat-header" },
        h("h2", { id: "notif-title" }, "Notifications"),
        h("button", { type: "button", class: "ghost", onclick: () => void this.refresh() }, "Refresh"),
        h("button", { type: "button", class: "ghost", onclick: () => void this.toggle() }, "Close"),
      ),
      this.ctx.alerts.settings(),
      h("ul", { id: "notification-list", class: "notif-list" }),
    );
  }

  async toggle(): Promise<void> {
    this.open = !this.open;
    if (this.open) await this.refresh();
    this.ctx.renderAll();
  }

  async refresh(): Promise<void> {
    try {
      this.list = await this.ctx.api.notifications(50);
    } catch (e) {
      this.ctx.notices.showError(describeError(e));
    }
    this.render();
  }

  render(): void {
    this.ctx.alerts.renderSettings();
    const ul = document.getElementById("notification-list");
    if (!ul) return;
    if (this.list.length === 0) {
      ul.replaceChildren(h("li", { class: "muted empty" }, "No notifications."));
      return;
    }
    ul.replaceChildren(...this.list.map((n) => h("li", {},
      h("button", { type: "button", class: "notif", "data-notification-id": n.id,
        onclick: () => void this.ctx.openConversation(n.conversation_id) },
        h("strong", {}, n.sender.display_name),
        n.count > 1 ? h("span", { class: "badge" }, `${n.count}`) : null,
        h("span", { class: "conv-preview" }, n.preview),
        timeEl(n.created_at, "muted small"),
      ))));
  }
}

// The sidebar: "start a chat with a shop" (search by name), support staff's
// tools, and the conversation list ordered by activity, with unread badges,
// presence and the last message; the total unread count goes into the tab's
// title.

import { compareIds, type ParticipantRef } from "@chatd/client";

import type { Ctx } from "./context.js";
import { byId, h, timeEl } from "./dom.js";
import { describeError, presenceWord } from "./words.js";

export class Sidebar {
  private readonly ctx: Ctx;

  constructor(ctx: Ctx) {
    this.ctx = ctx;
  }

  element(): HTMLElement {
    const kind = this.ctx.model.me.kind;
    const listTitle = kind === "shop" ? "Customer conversations" : kind === "admin" ? "Your conversations" : "Conversations";
    return h("aside", { class: "sidebar", "aria-label": "Conversations" },
      kind !== "shop" ? this.searchForm() : null,
      kind === "admin" ? this.ctx.admin.element() : null,
      h("h2", { id: "list-title" }, listTitle),
      h("ul", { id: "conversation-list", class: "conv-list", "aria-labelledby": "list-title" }),
    );
  }

  render(): void {
    const ul = document.getElementById("conversation-list");
    if (!ul) return;
    const { model } = this.ctx;
    const me = model.me;
    const list = [...model.convs.values()]
      .filter((s) => !s.observer)
      .sort((a, b) => b.conv.updated_at - a.conv.updated_at || compareIds(b.conv.id, a.conv.id));
    // The unread count in the tab's title, as mail and chat pages do.
    const unread = list.reduce((n, st) => n + st.conv.unread_count, 0);
    const title = unread > 0 ? `(${unread > 99 ? "99+" : unread}) chatd` : "chatd";
    if (document.title !== title) document.title = title;
    if (list.length === 0) {
      ul.replaceChildren(h("li", { class: "muted empty" },
        me.kind === "shop" ? "No customer has written yet." : "No conversations yet."));
      return;
    }
    ul.replaceChildren(...list.map((st) => {
      const c = st.conv;
      const peer = model.peer(c);
      const state = peer ? model.presenceOf(peer.id) : null;
      const last = c.last_message;
      const preview = last ? (last.deleted ? "Message deleted" : last.body) : "No messages yet";
      const unread = c.unread_count;
      const title = model.title(c);
      return h("li", {},
        h("button", {
          type: "button",
          class: `conv${c.id === model.activeId ? " active" : ""}`,
          "aria-current": c.id === model.activeId ? "true" : undefined,
          "data-conversation-id": c.id,
          onclick: () => void this.ctx.openConversation(c.id),
        },
          state ? h("span", { class: `dot ${state}`, "data-testid": "presence", "data-state": state }) : null,
          h("span", { class: "conv-text" },
            h("span", { class: "conv-title" }, title),
            h("span", { class: "conv-preview muted" },
              last && last.sender.id === me.id ? `You: ${preview}` : preview),
          ),
          h("span", { class: "conv-meta" },
            last ? timeEl(last.created_at, "muted") : null,
            state ? h("span", { class: "presence-word" }, presenceWord(state)) : null,
            unread ? h("span", { class: "badge", "data-testid": "unread" }, unread > 99 ? "99+" : String(unread),
              h("span", { class: "visually-hidden" }, " unread")) : null,
          ),
        ),
      );
    }));
  }

  private searchForm(): HTMLElement {
    const kind = "shop";
    let seq = 0;
    const run = async (q: string) => {
      const mine = ++seq;
      const out = byId("search-results");
      if (!q.trim()) {
        out.replaceChildren();
        return;
      }
      try {
        const found = await this.ctx.api.searchParticipants({ kind, q: q.trim(), limit: 8 });
        if (mine !== seq) return;
        out.replaceChildren(...(found.length
          ? found.map((p) => h("li", {},
            h("button", { type: "button", class: "result", onclick: () => void this.startChat(p) },
              h("strong", {}, p.display_name), ` @${p.username ?? ""}`,
              p.description ? h("span", { class: "muted" }, ` — ${p.description}`) : null)))
          : [h("li", { class: "muted" }, "No shop found")]));
      } catch (e) {
        this.ctx.notices.showError(describeError(e));
      }
    };
    return h("form", { class: "panel", role: "search", onsubmit: (ev: Event) => {
      ev.preventDefault();
      void run(byId<HTMLInputElement>("search").value);
    } },
      h("label", { for: "search" }, "Start a chat with a shop"),
      h("div", { class: "row" },
        h("input", { id: "search", type: "search", autocomplete: "off", placeholder: "Shop name",
          oninput: (ev: Event) => void run((ev.target as HTMLInputElement).value) }),
        h("button", { type: "submit" }, "Search"),
      ),
      h("ul", { id: "search-results", class: "results", "aria-label": "Shops found" }),
    );
  }

  private async startChat(shop: ParticipantRef): Promise<void> {
    try {
      const c = await this.ctx.api.createConversation({ kind: "direct", members: [shop.id] });
      this.ctx.model.upsertConversation(c);
      byId<HTMLInputElement>("search").value = "";
      byId("search-results").replaceChildren();
      await this.ctx.openConversation(c.id);
      void this.ctx.header.loadPresence();
    } catch (e) {
      this.ctx.notices.showError(describeError(e));
    }
  }
}

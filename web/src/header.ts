// Who is who: the top bar (me, Notifications, Log out), the open
// conversation's header (its name, the other side's presence in words, the
// way back on a phone, support staff's ban buttons), and where presence comes
// from (asked over HTTP for everyone in the list, then the live frames).

import type { Id } from "@chatd/client";

import type { Ctx } from "./context.js";
import { h } from "./dom.js";
import { KIND_NAMES, presenceWord } from "./words.js";

export class Header {
  private readonly ctx: Ctx;

  constructor(ctx: Ctx) {
    this.ctx = ctx;
  }

  topBar(onLogout: () => void): HTMLElement {
    const me = this.ctx.model.me;
    return h("header", { class: "topbar" },
      h("a", { href: "#composer", class: "skip-link visually-hidden", onclick: (ev: Event) => {
        ev.preventDefault();
        this.ctx.composer.skipHere();
      } }, "Skip to message box"),
      h("h1", { class: "brand" }, "chatd"),
      h("span", { class: "me", "data-testid": "me" }, `${me.display_name} · ${KIND_NAMES[me.kind]}`),
      h("button", {
        type: "button", id: "notif-button", class: "ghost", "aria-expanded": "false",
        "aria-controls": "notifications", onclick: () => void this.ctx.notifications.toggle(),
      }, "Notifications"),
      h("button", { type: "button", class: "ghost", onclick: () => {
        history.replaceState(null, "", "/");
        onLogout();
      } }, "Log out"),
    );
  }

  chatHeader(): HTMLElement {
    return h("div", { id: "chat-header", class: "chat-header" });
  }

  render(): void {
    const el = document.getElementById("chat-header");
    if (!el) return;
    const { model } = this.ctx;
    const st = model.active;
    if (!st) {
      el.replaceChildren(h("p", { class: "muted" },
        model.me.kind === "shop" ? "Choose a customer conversation." : "Choose a conversation or start one."));
      return;
    }
    const c = st.conv;
    const peer = model.peer(c);
    const state = peer ? model.presenceOf(peer.id) : null;
    const others = c.members.filter((m) => m.id !== model.me.id);
    el.replaceChildren(
      h("button", { type: "button", class: "back ghost", "aria-label": "Back to conversations", onclick: () => {
        this.ctx.closeConversation();
        history.pushState(null, "", "/");
      } }, "←"),
      h("div", { class: "chat-title" },
        h("h2", { id: "chat-title" }, model.title(c)),
        h("span", { class: "muted small" },
          state ? h("span", { class: `dot ${state}` }) : null,
          state ? ` ${presenceWord(state)}` : "",
          st.observer ? `${state ? " · " : ""}viewing as support staff (not a member)` : ""),
      ),
      model.me.kind === "admin" ? this.ctx.admin.banButtons(others) : "",
    );
  }

  /** Asks for the presence of everyone in the list whose presence is not known yet. */
  async loadPresence(): Promise<void> {
    const { model, api } = this.ctx;
    const ids = new Set<Id>();
    for (const st of model.convs.values()) {
      for (const m of st.conv.members) if (m.id !== model.me.id) ids.add(m.id);
    }
    await Promise.all([...ids].filter((id) => !model.presence.has(id)).map(async (id) => {
      try {
        const p = await api.presence(id);
        if (!model.presence.has(id)) model.presence.set(id, p.state);
      } catch {
        // Presence is decoration.
      }
    }));
    this.ctx.sidebar.render();
    this.render();
  }
}

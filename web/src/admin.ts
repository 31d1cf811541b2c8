// Support staff's tools: open any conversation by id (read over HTTP and
// polled, since staff who are not members get no live frames), and ban /
// unban a participant by id or from the chat header.

import type { Id, ParticipantRef } from "@chatd/client";

import type { Ctx } from "./context.js";
import { byId, h } from "./dom.js";
import { PAGE } from "./model.js";
import { describeError } from "./words.js";

/** How often a conversation watched from outside is read again. */
const POLL_MS = 3000;

export class AdminTools {
  private readonly ctx: Ctx;
  private pollTimer: ReturnType<typeof setInterval> | undefined;

  constructor(ctx: Ctx) {
    this.ctx = ctx;
  }

  /** The sidebar panel: open by id, ban / unban by id. */
  element(): HTMLElement {
    return h("div", { class: "panel admin-tools" },
      h("form", { onsubmit: (ev: Event) => {
        ev.preventDefault();
        const v = byId<HTMLInputElement>("open-id").value.trim();
        if (v) void this.ctx.openConversation(v);
      } },
        h("label", { for: "open-id" }, "Open conversation by id"),
        h("div", { class: "row" },
          h("input", { id: "open-id", inputmode: "numeric", autocomplete: "off" }),
          h("button", { type: "submit" }, "Open"),
        ),
      ),
      h("form", { onsubmit: (ev: Event) => ev.preventDefault() },
        h("label", { for: "ban-id" }, "Participant id"),
        h("div", { class: "row" },
          h("input", { id: "ban-id", inputmode: "numeric", autocomplete: "off" }),
          h("button", { type: "button", onclick: () => {
            const v = byId<HTMLInputElement>("ban-id").value.trim();
            if (v) void this.setBan(v, true);
          } }, "Ban"),
          h("button", { type: "button", onclick: () => {
            const v = byId<HTMLInputElement>("ban-id").value.trim();
            if (v) void this.setBan(v, false);
          } }, "Unban"),
        ),
      ),
    );
  }

  /** Ban / Unban for each other member, in the chat header. */
  banButtons(others: ParticipantRef[]): HTMLElement {
    return h("div", { class: "admin-actions" }, ...others.map((m) => h("span", { class: "row" },
      h("button", { type: "button", class: "ghost small", "aria-label": `Ban ${m.display_name}`,
        onclick: () => void this.setBan(m.id, true) }, `Ban ${m.display_name}`),
      h("button", { type: "button", class: "ghost small", "aria-label": `Unban ${m.display_name}`,
        onclick: () => void this.setBan(m.id, false) }, "Unban"))));
  }

  async setBan(id: Id, banned: boolean): Promise<void> {
    const { api, notices, model } = this.ctx;
    try {
      if (banned) await api.ban(id);
      else await api.unban(id);
      notices.showInfo(`${model.name(id)} ${banned ? "banned" : "unbanned"}.`);
    } catch (e) {
      notices.showError(describeError(e));
    }
  }

  /** Polls the newest page of a conversation watched from outside (no live frames come for it). */
  watch(id: Id): void {
    this.unwatch();
    this.pollTimer = setInterval(() => void this.refresh(id), POLL_MS);
  }

  unwatch(): void {
    clearInterval(this.pollTimer);
  }

  private async refresh(id: Id): Promise<void> {
    const { model, api } = this.ctx;
    const st = model.convs.get(id);
    if (!st || model.activeId !== id) return;
    try {
      const page = await api.history(id, { limit: PAGE });
      let changed = false;
      for (const m of page.messages) {
        const old = st.messages.get(m.id);
        if (!old || old.deleted !== m.deleted || old.body !== m.body) changed = true;
        st.messages.set(m.id, m);
      }
      if (changed) this.ctx.chat.render(false);
    } catch {
      // Next tick.
    }
  }
}

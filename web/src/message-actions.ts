// What can be done to a message: edit my own (in place, Enter saves, Escape
// cancels) and delete my own, or any as support staff (for everyone, after a
// confirmation).

import type { Message } from "@chatd/client";

import type { Ctx } from "./context.js";
import { byId, enterSends, h, touchScreen } from "./dom.js";
import { describeError } from "./words.js";

export class MessageActions {
  private readonly ctx: Ctx;

  constructor(ctx: Ctx) {
    this.ctx = ctx;
  }

  /** The Edit and Delete buttons in a message's footer. */
  buttons(m: Message, canEdit: boolean, canDelete: boolean): (HTMLElement | null)[] {
    return [
      canEdit ? h("button", { type: "button", class: "link", "data-focus-key": `e${m.id}`,
        "aria-label": `Edit message: ${m.body}`, onclick: () => this.startEdit(m) }, "Edit") : null,
      canDelete ? h("button", { type: "button", class: "link danger", "data-focus-key": `d${m.id}`,
        "aria-label": `Delete message: ${m.body}`, onclick: () => void this.remove(m) }, "Delete") : null,
    ];
  }

  /** The form that stands in for a message of mine while it is edited. */
  editForm(m: Message): HTMLElement {
    const id = `edit-${m.id}`;
    // Still the list's stop for this message (message-keys.ts), so the tab stop stays on it.
    return h("article", { class: "msg mine editing", "data-message-id": m.id, "data-item": "",
      "data-focus-key": `m${m.id}`, "aria-label": "Editing your message" },
      h("form", { class: "edit", onsubmit: (ev: Event) => {
        ev.preventDefault();
        void this.save(m, byId<HTMLTextAreaElement>(id).value);
      } },
        h("label", { for: id, class: "visually-hidden" }, "Edit message"),
        h("textarea", { id, rows: 2, "data-focus-key": id, onkeydown: (ev: Event) => {
          const k = ev as KeyboardEvent;
          if (k.key === "Escape") {
            k.preventDefault();
            this.cancelEdit();
          } else if (enterSends(k)) {
            k.preventDefault();
            void this.save(m, (k.target as HTMLTextAreaElement).value);
          }
        } }, m.body),
        h("div", { class: "row" },
          h("button", { type: "submit" }, "Save"),
          h("button", { type: "button", class: "ghost", onclick: () => this.cancelEdit() }, "Cancel")),
      ));
  }

  startEdit(m: Message): void {
    this.ctx.model.editing = m.id;
    this.ctx.chat.render(false);
    (document.getElementById(`edit-${m.id}`) as HTMLTextAreaElement | null)?.focus();
  }

  /** Leaves edit mode; the focus goes back to the composer (on a phone that would open the keyboard). */
  cancelEdit(): void {
    this.ctx.model.editing = null;
    this.ctx.chat.render(false);
    if (!touchScreen()) this.ctx.composer.focus();
  }

  private async save(m: Message, body: string): Promise<void> {
    const text = body.trim();
    if (!text) return;
    try {
      const updated = await this.ctx.socket.edit(m.id, text);
      const wasEditing = this.ctx.model.editing === m.id;
      this.ctx.model.editing = null;
      this.ctx.model.convs.get(updated.conversation_id)?.messages.set(updated.id, updated);
      this.ctx.chat.render(false);
      if (wasEditing && !touchScreen()) this.ctx.composer.focus();
    } catch (e) {
      this.ctx.notices.showError(describeError(e));
    }
  }

  private async remove(m: Message): Promise<void> {
    if (!window.confirm("Delete this message for everyone?")) return;
    const { model, socket, api } = this.ctx;
    try {
      const st = model.convs.get(m.conversation_id);
      const updated = st?.observer || socket.status !== "open"
        ? await api.deleteMessage(m.id)
        : await socket.delete(m.id);
      st?.messages.set(updated.id, updated);
      this.ctx.chat.render(false);
      this.ctx.sidebar.render();
    } catch (e) {
      this.ctx.notices.showError(describeError(e));
    }
  }
}

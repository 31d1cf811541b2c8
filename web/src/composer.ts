// Writing a message: the text box (Enter sends, Shift+Enter is a new line; on
// a touch screen Enter is a new line and the Send button sends), the
// character counter, the draft kept per conversation, and whether sending is
// possible at all (blocked, or support staff looking in from outside).

import { newClientMsgId, type Id } from "@chatd/client";

import type { Ctx } from "./context.js";
import { byId, codePoints, enterSends, h, touchScreen } from "./dom.js";
import { MAX_BODY } from "./words.js";

export class Composer {
  private readonly ctx: Ctx;

  constructor(ctx: Ctx) {
    this.ctx = ctx;
  }

  element(): HTMLElement {
    return h("form", { id: "composer-form", class: "composer", onsubmit: (ev: Event) => {
      ev.preventDefault();
      this.send(byId<HTMLTextAreaElement>("composer").value);
    } },
      h("label", { for: "composer", class: "visually-hidden" }, "Message"),
      h("textarea", {
        id: "composer", rows: 2, placeholder: "Write a message…",
        "aria-describedby": "counter",
        onkeydown: (ev: Event) => {
          const k = ev as KeyboardEvent;
          if (enterSends(k)) {
            k.preventDefault();
            this.send((k.target as HTMLTextAreaElement).value);
          }
        },
        oninput: (ev: Event) => {
          this.updateCounter();
          const { model, store, socket } = this.ctx;
          if (!model.activeId) return;
          store.setDraft(model.activeId, (ev.target as HTMLTextAreaElement).value);
          if (!model.convs.get(model.activeId)?.observer) socket.typing(model.activeId);
        },
      }),
      h("span", { id: "counter", class: "counter muted" }),
      // mousedown's default would move focus (and close a phone's keyboard): keep it in the composer.
      h("button", { type: "submit", id: "send-button", onmousedown: (ev: Event) => ev.preventDefault() }, "Send"),
    );
  }

  focus(): void {
    byId<HTMLTextAreaElement>("composer").focus();
  }

  /** The skip link: to the composer, or to the conversation list while no conversation can be written to. */
  skipHere(): void {
    const box = byId<HTMLTextAreaElement>("composer");
    if (!box.disabled && box.offsetParent !== null) box.focus();
    else document.querySelector<HTMLElement>("#conversation-list button.active, #conversation-list button")?.focus();
  }

  /** Puts a conversation's kept draft in the box and the focus there. */
  showDraft(id: Id): void {
    const composer = byId<HTMLTextAreaElement>("composer");
    composer.value = this.ctx.store.draft(id);
    this.updateCounter();
    composer.focus();
  }

  renderState(): void {
    const composer = document.getElementById("composer") as HTMLTextAreaElement | null;
    const button = document.getElementById("send-button") as HTMLButtonElement | null;
    if (!composer || !button) return;
    const { model } = this.ctx;
    const st = model.active;
    const blocked = model.sendingBlocked;
    composer.disabled = !st || st.observer || blocked;
    button.disabled = composer.disabled;
    composer.placeholder = blocked
      ? "You cannot send messages while your account is blocked."
      : st?.observer ? "Viewing as support staff: you are not a member of this conversation."
      : touchScreen() ? "Write a message…" : "Write a message… (Enter to send, Shift+Enter for a new line)";
  }

  private send(text: string): void {
    const { model, notices, store } = this.ctx;
    const st = model.active;
    if (!st) return;
    const body = text.trim();
    if (!body) return;
    const n = codePoints(body);
    if (n > MAX_BODY) {
      notices.showError(`Message too large: ${n} characters, at most ${MAX_BODY}.`);
      return;
    }
    if (st.observer) {
      notices.showError("You are viewing this conversation as support staff and are not a member.");
      return;
    }
    if (model.sendingBlocked) return;
    this.ctx.outbox.send(st.conv.id, body, newClientMsgId());
    byId<HTMLTextAreaElement>("composer").value = "";
    store.setDraft(st.conv.id, "");
    this.updateCounter();
  }

  private updateCounter(): void {
    const n = codePoints(byId<HTMLTextAreaElement>("composer").value);
    const c = byId("counter");
    c.textContent = n > MAX_BODY - 500 ? `${n}/${MAX_BODY}` : "";
    c.classList.toggle("over", n > MAX_BODY);
  }
}

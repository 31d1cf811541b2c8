// Telling the person that a message came from someone else: a polite live
// region reads it out (sender and text) to screen readers.

import type { Message } from "@chatd/client";

import type { Ctx } from "./context.js";
import { h } from "./dom.js";

/** Spoken announcements kept in the live region (older ones are dropped). */
const KEEP_ANNOUNCED = 5;

export class Alerts {
  private readonly ctx: Ctx;

  constructor(ctx: Ctx) {
    this.ctx = ctx;
  }

  /** The live region new messages are announced in. */
  announcer(): HTMLElement {
    return h("div", { id: "announcer", class: "visually-hidden", role: "log", "aria-live": "polite",
      "aria-label": "Incoming messages" });
  }

  /** A new message arrived (not a replay of one already known). */
  incoming(m: Message): void {
    const { model } = this.ctx;
    if (m.sender.id === model.me.id || m.deleted) return;
    const who = model.name(m.sender.id);
    this.announce(m.conversation_id === model.activeId ? `${who}: ${m.body}` : `New message from ${who}: ${m.body}`);
  }

  private announce(text: string): void {
    const el = document.getElementById("announcer");
    if (!el) return;
    el.append(h("p", {}, text));
    while (el.childElementCount > KEEP_ANNOUNCED) el.firstElementChild?.remove();
  }
}

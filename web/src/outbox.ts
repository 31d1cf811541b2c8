// Messages written but not acknowledged yet. Each waits in the device's
// outbox (localStorage) with its client_msg_id until the server acks it, is
// sent again after a reload with the same id (so the server stores it once),
// and shows in the chat as "Sending…", "Waiting for connection…",
// "Retrying…" or "Not sent: …" with Retry / Discard.

import { ChatError, type Id, type Message, type SendStateEvent } from "@chatd/client";

import type { Ctx } from "./context.js";
import { h, linkified } from "./dom.js";
import type { ConvState } from "./model.js";
import { describeError } from "./words.js";

export class Outbox {
  private readonly ctx: Ctx;

  constructor(ctx: Ctx) {
    this.ctx = ctx;
  }

  /** Something is not sent yet (leaving the page would delay it). */
  get hasUnsent(): boolean {
    return this.ctx.model.pending.size > 0;
  }

  /**
   * Messages written before a reload (or in another tab that closed) and not
   * acknowledged: send them again with their client_msg_id, so one that did
   * arrive is not stored twice. Refused ones wait for Retry or Discard.
   */
  restore(): void {
    const { model, store, socket } = this.ctx;
    for (const item of store.outbox()) {
      if (item.failed) {
        model.pending.set(item.client_msg_id, {
          client_msg_id: item.client_msg_id,
          conversation_id: item.conversation_id,
          body: item.body,
          state: "failed",
          attempt: 0,
          error: new ChatError(item.failed.code, item.failed.message),
        });
      } else {
        socket.send(item.conversation_id, item.body, item.client_msg_id).catch(() => {});
      }
    }
  }

  /** Keeps a new message on this device, then sends it. */
  send(conversationId: Id, body: string, clientMsgId: string): void {
    this.ctx.store.putOutbox({ client_msg_id: clientMsgId, conversation_id: conversationId, body, created_at: Date.now() });
    this.ctx.socket.send(conversationId, body, clientMsgId).catch(() => {
      // send_state shows the failure next to the message.
    });
  }

  /** The socket's news about a send. */
  onSendState(e: SendStateEvent): void {
    const { model, store, notices } = this.ctx;
    if (e.state === "sent") {
      model.pending.delete(e.client_msg_id);
      store.removeOutbox(e.client_msg_id);
      if (e.message) this.ctx.addMessage(e.message);
    } else if (e.state === "failed" && e.error?.code === "cancelled") {
      model.pending.delete(e.client_msg_id);
      store.removeOutbox(e.client_msg_id);
    } else {
      model.pending.set(e.client_msg_id, e);
      if (e.state === "retrying" && e.error?.code === "rate_limited") notices.showError(describeError(e.error));
      if (e.state === "failed" && e.error) {
        const error = { code: e.error.code, message: e.error.message };
        store.updateOutbox(e.client_msg_id, (i) => ({ ...i, failed: error }));
        notices.showError(describeError(e.error));
      }
    }
    if (e.conversation_id === model.activeId) this.ctx.chat.render(e.state === "sending" || e.state === "sent");
  }

  /** The pending messages of a conversation, below its stored ones. */
  items(st: ConvState, msgs: Message[]): HTMLElement[] {
    const { model } = this.ctx;
    const known = new Set(msgs.filter((m) => m.sender.id === model.me.id).map((m) => m.client_msg_id));
    const items: HTMLElement[] = [];
    for (const p of model.pending.values()) {
      // Stored already (its ack was lost, then the history came): shown once, as the message.
      if (p.conversation_id !== st.conv.id || known.has(p.client_msg_id)) continue;
      const label = p.state === "failed" ? `Not sent: ${p.error ? describeError(p.error) : "failed"}`
        : p.state === "retrying" ? `Retrying${p.error ? ` (${p.error.code.replace("_", " ")})` : ""}…`
        : p.state === "queued" ? "Waiting for connection…" : "Sending…";
      items.push(h("article", { class: `msg mine pending ${p.state}`, "data-client-msg-id": p.client_msg_id,
        "data-item": "", "data-focus-key": `p${p.client_msg_id}`, "aria-label": `You: ${p.body} (${label})` },
        h("p", { class: "body" }, ...linkified(p.body)),
        h("footer", { class: "meta" }, h("span", {}, label),
          p.state === "failed"
            ? h("button", { type: "button", class: "link", onclick: () => this.retry(p) }, "Retry")
            : null,
          p.state === "failed" || p.state === "queued" || p.state === "retrying"
            ? h("button", { type: "button", class: "link", onclick: () => this.discard(p) }, "Discard")
            : null),
      ));
    }
    return items;
  }

  /** Sends a message that failed again, with its client_msg_id. */
  private retry(p: SendStateEvent): void {
    this.ctx.store.updateOutbox(p.client_msg_id, ({ failed: _f, ...rest }) => rest);
    this.ctx.socket.send(p.conversation_id, p.body, p.client_msg_id).catch(() => {});
  }

  private discard(p: SendStateEvent): void {
    const { model, store, socket } = this.ctx;
    model.pending.delete(p.client_msg_id);
    store.removeOutbox(p.client_msg_id);
    socket.cancelSend(p.client_msg_id);
    if (p.conversation_id === model.activeId) this.ctx.chat.render(false);
  }
}

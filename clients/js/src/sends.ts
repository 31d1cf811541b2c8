// Sends until acknowledged: each waits in an outbox while offline, goes out
// after the next `ready`, is sent again with the same client_msg_id when no
// ack comes in time or after a reconnect (the server stores it once), and is
// retried with backoff on retryable errors, up to maxSendAttempts.

import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { ChatError, isRetryable } from "./errors.js";
import type { SendState, SendStateEvent } from "./socket-types.js";
import type { ClientFrame, Id, Message, ServerFrame } from "./types.js";

interface OutboxEntry {
  conversation_id: Id;
  client_msg_id: string;
  body: string;
  attempt: number;
  requestId: string | null;
  timer: ReturnType<typeof setTimeout> | undefined;
  resolve: (m: Message) => void;
  reject: (e: ChatError) => void;
}

/** What the sends need of the socket. */
export interface SendLink {
  isOpen(): boolean;
  write(frame: ClientFrame): void;
  newRequestId(): string;
  emit(ev: SendStateEvent): void;
  /** The server stored a message of ours: it counts as received. */
  acked(m: Message): void;
}

export interface SendOptions {
  backoff?: BackoffOptions;
  ackTimeoutMs?: number;
  maxSendAttempts?: number;
}

export class Sends {
  private readonly link: SendLink;
  private readonly opts: SendOptions;
  private readonly outbox = new Map<string, OutboxEntry>();

  constructor(link: SendLink, opts: SendOptions) {
    this.link = link;
    this.opts = opts;
  }

  /** Sends not acknowledged yet, oldest first. */
  list(): SendStateEvent[] {
    return [...this.outbox.values()].map((e) => ({
      client_msg_id: e.client_msg_id,
      conversation_id: e.conversation_id,
      body: e.body,
      state: "queued" as const,
      attempt: e.attempt,
    }));
  }

  /** Resolves with the stored message once acked; a send already waiting with this id is joined, not repeated. */
  add(conversationId: Id, body: string, clientMsgId: string): Promise<Message> {
    const existing = this.outbox.get(clientMsgId);
    if (existing) return new Promise((resolve, reject) => {
      const prev = { resolve: existing.resolve, reject: existing.reject };
      existing.resolve = (m) => { prev.resolve(m); resolve(m); };
      existing.reject = (e) => { prev.reject(e); reject(e); };
    });
    return new Promise<Message>((resolve, reject) => {
      const entry: OutboxEntry = {
        conversation_id: conversationId,
        client_msg_id: clientMsgId,
        body,
        attempt: 0,
        requestId: null,
        timer: undefined,
        resolve,
        reject,
      };
      this.outbox.set(clientMsgId, entry);
      this.emitSend(entry, this.link.isOpen() ? "sending" : "queued");
      if (this.link.isOpen()) this.transmit(entry);
    });
  }

  /** Gives up a queued send (its promise rejects with `cancelled`). */
  cancel(clientMsgId: string): void {
    const e = this.outbox.get(clientMsgId);
    if (!e) return;
    this.finish(e);
    const err = new ChatError("cancelled", "cancelled");
    this.emitSend(e, "failed", undefined, err);
    e.reject(err);
  }

  /** A new connection is ready: everything waiting goes out. */
  transmitAll(): void {
    for (const e of this.outbox.values()) this.transmit(e);
  }

  /** The connection was lost: every send waits again for the next one. */
  requeue(error: ChatError): void {
    for (const e of this.outbox.values()) {
      clearTimeout(e.timer);
      e.timer = undefined;
      e.requestId = null;
      this.emitSend(e, "queued", undefined, error);
    }
  }

  /** Closed for good: every send fails with `offline`. */
  failAll(): void {
    for (const e of this.outbox.values()) {
      clearTimeout(e.timer);
      e.reject(new ChatError("offline", "the connection was closed"));
    }
    this.outbox.clear();
  }

  /** Handles the answer to a send's request id; false when it is not one. */
  answer(requestId: string, f: ServerFrame): boolean {
    for (const e of this.outbox.values()) {
      if (e.requestId === requestId) {
        this.onAnswer(e, f);
        return true;
      }
    }
    return false;
  }

  private transmit(e: OutboxEntry): void {
    if (!this.link.isOpen()) return;
    clearTimeout(e.timer);
    e.attempt++;
    e.requestId = this.link.newRequestId();
    this.emitSend(e, e.attempt > 1 ? "retrying" : "sending");
    this.link.write({
      type: "send",
      id: e.requestId,
      conversation_id: e.conversation_id,
      client_msg_id: e.client_msg_id,
      body: e.body,
    });
    // No answer in time: send again with the same client_msg_id. If the first
    // one did arrive, the server answers with the original message.
    e.timer = setTimeout(() => {
      e.requestId = null;
      this.transmit(e);
    }, this.opts.ackTimeoutMs ?? 10000);
  }

  private onAnswer(e: OutboxEntry, f: ServerFrame): void {
    clearTimeout(e.timer);
    e.timer = undefined;
    e.requestId = null;
    if (f.type === "ack") {
      this.finish(e);
      this.link.acked(f.message);
      this.emitSend(e, "sent", f.message);
      e.resolve(f.message);
      return;
    }
    if (f.type !== "error") return;
    const err = new ChatError(f.code, f.message);
    if (isRetryable(f.code) && e.attempt < (this.opts.maxSendAttempts ?? 10)) {
      const delay = backoffDelay(e.attempt - 1, this.opts.backoff);
      this.emitSend(e, "retrying", undefined, err);
      e.timer = setTimeout(() => this.transmit(e), delay);
      return;
    }
    this.finish(e);
    this.emitSend(e, "failed", undefined, err);
    e.reject(err);
  }

  private finish(e: OutboxEntry): void {
    clearTimeout(e.timer);
    this.outbox.delete(e.client_msg_id);
  }

  private emitSend(e: OutboxEntry, state: SendState, message?: Message, error?: ChatError): void {
    const ev: SendStateEvent = {
      client_msg_id: e.client_msg_id,
      conversation_id: e.conversation_id,
      body: e.body,
      state,
      attempt: e.attempt,
    };
    if (message) ev.message = message;
    if (error) ev.error = error;
    this.link.emit(ev);
  }
}

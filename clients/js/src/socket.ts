import { Connection } from "./connection.js";
import { Emitter } from "./emitter.js";
import { ChatError } from "./errors.js";
import { ackedMessage, answerId, decodeFrame, encodeFrame, historyPage } from "./frames.js";
import { newClientMsgId } from "./ids.js";
import { Received } from "./received.js";
import { Requests } from "./requests.js";
import { Sends } from "./sends.js";
import type {
  ConnectionStatus,
  SendStateEvent,
  SocketEvents,
  SocketOptions,
  WebSocketCtor,
} from "./socket-types.js";
import type { ClientFrame, HistoryPage, Id, Message, ReadyFrame, ServerFrame } from "./types.js";

export type {
  ConnectionStatus,
  SendState,
  SendStateEvent,
  SocketEvents,
  SocketOptions,
  StatusEvent,
  WebSocketCtor,
  WebSocketLike,
} from "./socket-types.js";

/**
 * The real-time channel: discovery, connect with the token in the URL,
 * reconnect with exponential backoff and jitter, `since=` recovery, sends that
 * are retried (same client_msg_id, so the server deduplicates) until acked,
 * request/answer matching by id, typing throttling and presence.
 *
 * The parts: connection.ts (the connection's state machine), sends.ts (sends
 * until acked), requests.ts (requests waiting for answers), received.ts
 * (since= and duplicates), frames.ts (the wire format). This class routes
 * frames between them and is the API.
 */
export class ChatSocket extends Emitter<SocketEvents> {
  private readonly opts: SocketOptions;
  private readonly conn: Connection;
  private readonly requests = new Requests();
  private readonly sends: Sends;
  private readonly received: Received;
  private readonly typingSentAt = new Map<Id, number>();
  private presenceState: "active" | "inactive" = "active";

  constructor(opts: SocketOptions) {
    super();
    this.opts = opts;
    if (!opts.WebSocket && !(globalThis as { WebSocket?: WebSocketCtor }).WebSocket) {
      throw new Error("no WebSocket implementation");
    }
    this.received = new Received(opts.since ?? null);
    this.conn = new Connection(opts, {
      status: (s) => this.emit("status", s),
      error: (e) => this.emit("error", e),
      frame: (data) => this.onFrame(data),
      lost: (error) => {
        this.requests.failAll();
        // Sends stay in the outbox and go out again after the next ready.
        this.sends.requeue(error);
      },
      since: () => this.received.lastMessageId,
      ping: (timeoutMs) => this.request({ type: "ping" }, timeoutMs),
    });
    this.sends = new Sends({
      isOpen: () => this.conn.isOpen(),
      write: (f) => this.write(f),
      newRequestId: () => this.requests.newId(),
      emit: (ev) => this.emit("send_state", ev),
      acked: (m) => {
        this.received.note(m);
        this.received.markSeen(m.id);
      },
    }, opts);
  }

  get status(): ConnectionStatus {
    return this.conn.status;
  }

  /** The newest message id seen: the next connection asks for everything after it. */
  get lastMessageId(): Id | null {
    return this.received.lastMessageId;
  }

  /** Sends not acknowledged yet, oldest first (the UI shows them as "sending"). */
  pendingSends(): SendStateEvent[] {
    return this.sends.list();
  }

  connect(): void {
    this.conn.start();
  }

  /** Closes for good (logout). Queued sends fail with `offline`. */
  close(): void {
    this.conn.stop();
    this.sends.failAll();
    this.conn.markClosed();
  }

  /**
   * Skips the backoff wait (e.g. on the browser's `online` event, or when the
   * page becomes visible again). An attempt already under way is dropped and
   * started afresh: after a network change it may hang on the old network.
   * Does nothing while connected or after the socket was stopped.
   */
  reconnectNow(): void {
    this.conn.reconnectNow();
  }

  // ---- requests ----

  /**
   * Sends a message; resolves with the stored message once the server acked it.
   * While offline it waits in the outbox and goes out after the next `ready`;
   * retryable failures (rate_limited, unavailable, lost answers) are retried
   * with the same client_msg_id, so the server stores it once.
   */
  send(conversationId: Id, body: string, clientMsgId: string = newClientMsgId()): Promise<Message> {
    return this.sends.add(conversationId, body, clientMsgId);
  }

  /** Gives up a queued send (its promise rejects with `cancelled`). */
  cancelSend(clientMsgId: string): void {
    this.sends.cancel(clientMsgId);
  }

  async history(conversationId: Id, opts: { before?: Id; limit?: number } = {}): Promise<HistoryPage> {
    const frame: ClientFrame = { type: "history", conversation_id: conversationId };
    if (opts.before) frame.before = opts.before;
    if (opts.limit) frame.limit = opts.limit;
    return historyPage(await this.request(frame));
  }

  async markRead(conversationId: Id, messageId: Id): Promise<void> {
    await this.request({ type: "read", conversation_id: conversationId, message_id: messageId });
  }

  /** Says "typing" at most once per typingThrottleMs per conversation; false when throttled or offline. */
  typing(conversationId: Id): boolean {
    const now = Date.now();
    const last = this.typingSentAt.get(conversationId);
    if (!this.conn.isOpen() || (last !== undefined && now - last < (this.opts.typingThrottleMs ?? 3000))) return false;
    this.typingSentAt.set(conversationId, now);
    this.request({ type: "typing", conversation_id: conversationId }).catch(() => {
      // Typing is best effort.
    });
    return true;
  }

  /** The page's state; repeated values are not resent. Kept across reconnects. */
  setPresence(state: "active" | "inactive"): void {
    if (state === this.presenceState) return;
    this.presenceState = state;
    if (this.conn.isOpen()) this.request({ type: "presence", state }).catch(() => {});
  }

  get presence(): "active" | "inactive" {
    return this.presenceState;
  }

  async edit(messageId: Id, body: string): Promise<Message> {
    return ackedMessage(await this.request({ type: "edit", message_id: messageId, body }));
  }

  async delete(messageId: Id): Promise<Message> {
    return ackedMessage(await this.request({ type: "delete", message_id: messageId }));
  }

  async ping(): Promise<void> {
    await this.request({ type: "ping" });
  }

  /**
   * Hands the open connection a newer token of the same participant (after a
   * fresh login), so that it is not closed with 4001 when the old one
   * expires. The token is also used for the next connection.
   */
  async refresh(accessToken: string): Promise<void> {
    await this.request({ type: "refresh", access_token: accessToken });
    this.opts.api.token = accessToken;
  }

  /** One request with an id; resolves with its answer, rejects with its error frame. */
  request(frame: ClientFrame, timeoutMs = this.opts.requestTimeoutMs ?? 15000): Promise<ServerFrame> {
    if (!this.conn.isOpen()) return Promise.reject(new ChatError("offline", "not connected"));
    return this.requests.start(frame, timeoutMs, (f) => this.write(f));
  }

  private write(frame: ClientFrame): void {
    this.conn.write(encodeFrame(frame));
  }

  // ---- frames ----

  private onFrame(data: unknown): void {
    const f = decodeFrame(data);
    if (!f) return;
    switch (f.type) {
      case "ready":
        this.onReady(f);
        return;
      case "message":
        this.received.note(f.message);
        if (this.received.markSeen(f.message.id)) this.emit("message", f.message);
        return;
      case "message_updated":
        this.emit("message_updated", f.message);
        return;
      case "read":
        this.emit("read", f);
        return;
      case "typing":
        this.emit("typing", f);
        return;
      case "presence":
        this.emit("presence", f);
        return;
      case "ack":
      case "history":
      case "ok":
      case "pong":
      case "error":
        this.onAnswer(f);
        return;
    }
  }

  private onReady(f: ReadyFrame): void {
    const hadSince = this.received.lastMessageId !== null;
    for (const c of f.conversations) {
      for (const m of c.messages ?? []) this.received.markSeen(m.id);
      // lastMessageId moves only through the messages this client really got;
      // a gap (more than 20 missed) is filled by the since= replay that follows.
      if (!hadSince) this.received.note(c.messages?.[0]);
    }
    this.conn.markOpen();
    this.emit("ready", f);
    // A new connection counts as active; say so if the page is not.
    if (this.presenceState !== "active") this.request({ type: "presence", state: this.presenceState }).catch(() => {});
    this.sends.transmitAll();
    this.conn.startHeartbeat();
  }

  private onAnswer(f: Extract<ServerFrame, { id: unknown }>): void {
    const id = answerId(f);
    if (id !== null && (this.sends.answer(id, f) || this.requests.answer(id, f))) return;
    if (f.type === "error") this.emit("error", new ChatError(f.code, f.message));
  }
}

import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { ChatError, isRetryable } from "./errors.js";
import type { ChatApi } from "./http.js";
import { compareIds, maxId, newClientMsgId } from "./ids.js";
import type {
  ClientFrame,
  HistoryPage,
  Id,
  Message,
  PresenceFrame,
  ReadFrame,
  ReadyFrame,
  ServerFrame,
  TypingFrame,
} from "./types.js";

/** The part of the browser WebSocket the client uses (a fake one in tests). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketCtor = new (url: string) => WebSocketLike;

export type ConnectionStatus = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export interface StatusEvent {
  status: ConnectionStatus;
  /** Reconnect attempts since the last successful `ready`. */
  attempt: number;
  /** When reconnecting: milliseconds until the next attempt. */
  retryInMs?: number;
  /** Why the last connection ended or failed, when known. */
  error?: ChatError;
}

export type SendState = "queued" | "sending" | "retrying" | "sent" | "failed";

export interface SendStateEvent {
  client_msg_id: string;
  conversation_id: Id;
  body: string;
  state: SendState;
  attempt: number;
  message?: Message;
  error?: ChatError;
}

export interface SocketEvents extends Record<string, unknown> {
  status: StatusEvent;
  ready: ReadyFrame;
  /** A new message (duplicates by id are dropped: delivery is at least once). */
  message: Message;
  message_updated: Message;
  read: ReadFrame;
  typing: TypingFrame;
  presence: PresenceFrame;
  /** Errors no request waits for, and fatal ones (auth) that stop reconnecting. */
  error: ChatError;
  send_state: SendStateEvent;
}

export interface SocketOptions {
  /** Used for discovery (and its token goes into the URL). */
  api: ChatApi;
  /** A fixed WebSocket URL instead of discovery. */
  url?: string;
  discoveryHint?: { lat?: number; lon?: number; region?: string };
  WebSocket?: WebSocketCtor;
  backoff?: BackoffOptions;
  /** Resend a send that got no answer after this long (default 10 s). */
  ackTimeoutMs?: number;
  /** Other requests fail with `timeout` after this long (default 15 s). */
  requestTimeoutMs?: number;
  /** Ping period; a ping unanswered by the next tick drops the connection (default 20 s; 0: off). */
  heartbeatMs?: number;
  /** Give a send up after this many retryable failures (default 10). */
  maxSendAttempts?: number;
  /** At most one typing frame per conversation per this long (default 3 s). */
  typingThrottleMs?: number;
  /** Recover from here on the first connect (e.g. persisted by the app). */
  since?: Id | null;
}

interface Pending {
  resolve: (f: ServerFrame) => void;
  reject: (e: ChatError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

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

const OPEN = 1;
/** The close code of a connection whose access token expired (no `refresh` came in time). */
const TOKEN_EXPIRED = 4001;
const SEEN_LIMIT = 10000;

/**
 * The real-time channel: discovery, connect with the token in the URL,
 * reconnect with exponential backoff and jitter, `since=` recovery, sends that
 * are retried (same client_msg_id, so the server deduplicates) until acked,
 * request/answer matching by id, typing throttling and presence.
 */
export class ChatSocket extends Emitter<SocketEvents> {
  private readonly opts: SocketOptions;
  private ws: WebSocketLike | null = null;
  private statusValue: ConnectionStatus = "idle";
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private pingOutstanding = false;
  private stopped = true;
  private nextRequest = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly outbox = new Map<string, OutboxEntry>();
  private readonly seen = new Set<Id>();
  private readonly typingSentAt = new Map<Id, number>();
  private presenceState: "active" | "inactive" = "active";
  private lastMessageIdValue: Id | null;
  private lastUrl: string | null = null;
  private generation = 0;

  constructor(opts: SocketOptions) {
    super();
    this.opts = opts;
    if (!opts.WebSocket && !(globalThis as { WebSocket?: WebSocketCtor }).WebSocket) {
      throw new Error("no WebSocket implementation");
    }
    this.lastMessageIdValue = opts.since ?? null;
  }

  get status(): ConnectionStatus {
    return this.statusValue;
  }

  /** The newest message id seen: the next connection asks for everything after it. */
  get lastMessageId(): Id | null {
    return this.lastMessageIdValue;
  }

  /** Sends not acknowledged yet, oldest first (the UI shows them as "sending"). */
  pendingSends(): SendStateEvent[] {
    return [...this.outbox.values()].map((e) => ({
      client_msg_id: e.client_msg_id,
      conversation_id: e.conversation_id,
      body: e.body,
      state: "queued" as const,
      attempt: e.attempt,
    }));
  }

  connect(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempt = 0;
    void this.open();
  }

  /** Closes for good (logout). Queued sends fail with `offline`. */
  close(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.dropSocket(1000, "client closed");
    for (const e of this.outbox.values()) {
      clearTimeout(e.timer);
      e.reject(new ChatError("offline", "the connection was closed"));
    }
    this.outbox.clear();
    this.setStatus({ status: "closed", attempt: this.attempt });
  }

  /**
   * Skips the backoff wait (e.g. on the browser's `online` event, or when the
   * page becomes visible again). An attempt already under way is dropped and
   * started afresh: after a network change it may hang on the old network.
   * Does nothing while connected or after the socket was stopped.
   */
  reconnectNow(): void {
    if (this.stopped || this.statusValue === "open") return;
    clearTimeout(this.reconnectTimer);
    this.dropSocket(1000, "reconnecting");
    void this.open();
  }

  // ---- requests ----

  /**
   * Sends a message; resolves with the stored message once the server acked it.
   * While offline it waits in the outbox and goes out after the next `ready`;
   * retryable failures (rate_limited, unavailable, lost answers) are retried
   * with the same client_msg_id, so the server stores it once.
   */
  send(conversationId: Id, body: string, clientMsgId: string = newClientMsgId()): Promise<Message> {
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
      this.emitSend(entry, this.isOpen() ? "sending" : "queued");
      if (this.isOpen()) this.transmit(entry);
    });
  }

  /** Gives up a queued send (its promise rejects with `cancelled`). */
  cancelSend(clientMsgId: string): void {
    const e = this.outbox.get(clientMsgId);
    if (!e) return;
    this.finishSend(e);
    const err = new ChatError("cancelled", "cancelled");
    this.emitSend(e, "failed", undefined, err);
    e.reject(err);
  }

  async history(conversationId: Id, opts: { before?: Id; limit?: number } = {}): Promise<HistoryPage> {
    const frame: ClientFrame = { type: "history", conversation_id: conversationId };
    if (opts.before) frame.before = opts.before;
    if (opts.limit) frame.limit = opts.limit;
    const f = await this.request(frame);
    if (f.type !== "history") throw new ChatError("internal", `unexpected ${f.type}`);
    return { messages: f.messages, has_more: f.has_more };
  }

  async markRead(conversationId: Id, messageId: Id): Promise<void> {
    await this.request({ type: "read", conversation_id: conversationId, message_id: messageId });
  }

  /** Says "typing" at most once per typingThrottleMs per conversation; false when throttled or offline. */
  typing(conversationId: Id): boolean {
    const now = Date.now();
    const last = this.typingSentAt.get(conversationId);
    if (!this.isOpen() || (last !== undefined && now - last < (this.opts.typingThrottleMs ?? 3000))) return false;
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
    if (this.isOpen()) this.request({ type: "presence", state }).catch(() => {});
  }

  get presence(): "active" | "inactive" {
    return this.presenceState;
  }

  async edit(messageId: Id, body: string): Promise<Message> {
    const f = await this.request({ type: "edit", message_id: messageId, body });
    if (f.type !== "ack") throw new ChatError("internal", `unexpected ${f.type}`);
    return f.message;
  }

  async delete(messageId: Id): Promise<Message> {
    const f = await this.request({ type: "delete", message_id: messageId });
    if (f.type !== "ack") throw new ChatError("internal", `unexpected ${f.type}`);
    return f.message;
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
    if (!this.isOpen()) return Promise.reject(new ChatError("offline", "not connected"));
    const id = this.newRequestId();
    return new Promise((resolve, reject) => {
      const p: Pending = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.pending.delete(id);
          reject(new ChatError("timeout", `no answer to ${frame.type} in ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.pending.set(id, p);
      this.write({ ...frame, id });
    });
  }

  // ---- connection ----

  private async open(): Promise<void> {
    const gen = ++this.generation;
    this.setStatus({ status: this.attempt === 0 ? "connecting" : "reconnecting", attempt: this.attempt });
    let url: string;
    try {
      url = await this.resolveUrl();
    } catch (err) {
      if (gen !== this.generation || this.stopped) return;
      const e = err instanceof ChatError ? err : new ChatError("offline", String(err));
      if (e.code === "unauthorized" || e.code === "forbidden") {
        // A bad or banned token will not get better by retrying.
        this.stopped = true;
        this.emit("error", e);
        this.setStatus({ status: "closed", attempt: this.attempt, error: e });
        return;
      }
      this.scheduleReconnect(e);
      return;
    }
    if (gen !== this.generation || this.stopped) return;
    // Looked up per connection, not once: a WebSocket wrapper installed after
    // start-up (a polyfill, a proxy shim, a test's interceptor) is used too.
    const WS = this.opts.WebSocket ?? (globalThis as unknown as { WebSocket: WebSocketCtor }).WebSocket;
    const ws = new WS(this.withQuery(url));
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (this.ws === ws) this.onFrame(ev.data);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const why = `connection closed (${ev.code}${ev.reason ? ": " + ev.reason : ""})`;
      if (ev.code === TOKEN_EXPIRED) {
        // Reconnecting with the same token cannot succeed: stop, and let the
        // app log in again (then connect()).
        const e = new ChatError("unauthorized", why);
        this.stopped = true;
        this.onDisconnect(e);
        this.emit("error", e);
        this.setStatus({ status: "closed", attempt: this.attempt, error: e });
        return;
      }
      this.onDisconnect(new ChatError(ev.code === 1008 ? "forbidden" : "offline", why));
    };
    ws.onerror = () => {
      // onclose follows with the code.
    };
  }

  private async resolveUrl(): Promise<string> {
    if (this.opts.url) return this.opts.url;
    try {
      const servers = await this.opts.api.discovery(this.opts.discoveryHint ?? {});
      const best = servers[0];
      if (!best) throw new ChatError("unavailable", "no chat server is available");
      this.lastUrl = best.url;
      return best.url;
    } catch (err) {
      // Discovery down but a server known: try it (the gateway may be the part that is down).
      const e = err as ChatError;
      if (this.lastUrl && e.code !== "unauthorized" && e.code !== "forbidden") return this.lastUrl;
      throw err;
    }
  }

  private withQuery(url: string): string {
    const u = new URL(url);
    if (this.opts.api.token) u.searchParams.set("access_token", this.opts.api.token);
    if (this.lastMessageIdValue) u.searchParams.set("since", this.lastMessageIdValue);
    return u.toString();
  }

  private onDisconnect(error: ChatError): void {
    this.stopHeartbeat();
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ChatError("offline", "connection lost"));
      this.pending.delete(id);
    }
    // Sends stay in the outbox and go out again after the next ready.
    for (const e of this.outbox.values()) {
      clearTimeout(e.timer);
      e.timer = undefined;
      e.requestId = null;
      this.emitSend(e, "queued", undefined, error);
    }
    if (this.stopped) return;
    this.scheduleReconnect(error);
  }

  private scheduleReconnect(error: ChatError): void {
    const delay = backoffDelay(this.attempt, this.opts.backoff);
    this.attempt++;
    this.setStatus({ status: "reconnecting", attempt: this.attempt, retryInMs: delay, error });
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.open(), delay);
  }

  /** Drops the current socket at once, without waiting for the close handshake. */
  private dropSocket(code: number, reason: string): void {
    const ws = this.ws;
    this.ws = null;
    this.stopHeartbeat();
    if (!ws) return;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
    try {
      ws.close(code, reason);
    } catch {
      // Already closed.
    }
  }

  private isOpen(): boolean {
    return this.statusValue === "open" && this.ws !== null && this.ws.readyState === OPEN;
  }

  private write(frame: ClientFrame): void {
    this.ws?.send(JSON.stringify(frame));
  }

  private newRequestId(): string {
    return `c${this.nextRequest++}`;
  }

  private setStatus(s: StatusEvent): void {
    this.statusValue = s.status;
    this.emit("status", s);
  }

  private startHeartbeat(): void {
    const period = this.opts.heartbeatMs ?? 20000;
    if (period <= 0) return;
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => {
      if (this.pingOutstanding) {
        // No pong for a whole period: the connection is dead even if the
        // browser has not noticed (e.g. after a laptop slept).
        this.dropSocket(4000, "heartbeat timeout");
        this.onDisconnect(new ChatError("timeout", "the server stopped answering"));
        return;
      }
      this.pingOutstanding = true;
      this.request({ type: "ping" }, period * 2)
        .then(() => {
          this.pingOutstanding = false;
        })
        .catch(() => {});
    }, period);
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    this.pingOutstanding = false;
  }

  // ---- frames ----

  private onFrame(data: unknown): void {
    if (typeof data !== "string") return;
    let f: ServerFrame;
    try {
      f = JSON.parse(data) as ServerFrame;
    } catch {
      return;
    }
    switch (f.type) {
      case "ready":
        this.onReady(f);
        return;
      case "message":
        this.noteMessage(f.message);
        if (this.markSeen(f.message.id)) this.emit("message", f.message);
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
    this.attempt = 0;
    const hadSince = this.lastMessageIdValue !== null;
    for (const c of f.conversations) {
      for (const m of c.messages ?? []) this.markSeen(m.id);
      // lastMessageId moves only through the messages this client really got;
      // a gap (more than 20 missed) is filled by the since= replay that follows.
      if (!hadSince) this.noteMessage(c.messages?.[0]);
    }
    this.setStatus({ status: "open", attempt: 0 });
    this.emit("ready", f);
    // A new connection counts as active; say so if the page is not.
    if (this.presenceState !== "active") this.request({ type: "presence", state: this.presenceState }).catch(() => {});
    for (const e of this.outbox.values()) this.transmit(e);
    this.startHeartbeat();
  }

  private onAnswer(f: Extract<ServerFrame, { id: unknown }>): void {
    const id = f.id === null || f.id === undefined ? null : String(f.id);
    if (id !== null) {
      const send = this.findSend(id);
      if (send) {
        this.onSendAnswer(send, f);
        return;
      }
      const p = this.pending.get(id);
      if (p) {
        this.pending.delete(id);
        clearTimeout(p.timer);
        if (f.type === "error") p.reject(new ChatError(f.code, f.message));
        else p.resolve(f);
        return;
      }
    }
    if (f.type === "error") this.emit("error", new ChatError(f.code, f.message));
  }

  // ---- sends ----

  private findSend(requestId: string): OutboxEntry | undefined {
    for (const e of this.outbox.values()) {
      if (e.requestId === requestId) return e;
    }
    return undefined;
  }

  private transmit(e: OutboxEntry): void {
    if (!this.isOpen()) return;
    clearTimeout(e.timer);
    e.attempt++;
    e.requestId = this.newRequestId();
    this.emitSend(e, e.attempt > 1 ? "retrying" : "sending");
    this.write({
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

  private onSendAnswer(e: OutboxEntry, f: ServerFrame): void {
    clearTimeout(e.timer);
    e.timer = undefined;
    e.requestId = null;
    if (f.type === "ack") {
      this.finishSend(e);
      this.noteMessage(f.message);
      this.markSeen(f.message.id);
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
    this.finishSend(e);
    this.emitSend(e, "failed", undefined, err);
    e.reject(err);
  }

  private finishSend(e: OutboxEntry): void {
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
    this.emit("send_state", ev);
  }

  // ---- bookkeeping ----

  private noteMessage(m: Message | undefined): void {
    if (m) this.lastMessageIdValue = maxId(this.lastMessageIdValue, m.id);
  }

  /** True the first time an id is seen. */
  private markSeen(id: Id): boolean {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    if (this.seen.size > SEEN_LIMIT) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    return true;
  }
}



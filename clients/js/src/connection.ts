// The connection's state machine: discovery (falling back to the last server
// known), connect with the token and since= in the URL, reconnect with
// exponential backoff and jitter, reconnectNow, a heartbeat that drops a
// connection that stopped answering, and stopping for good on an expired or
// banned token.

import { backoffDelay } from "./backoff.js";
import { ChatError } from "./errors.js";
import type { ConnectionStatus, SocketOptions, StatusEvent, WebSocketCtor, WebSocketLike } from "./socket-types.js";
import type { Id } from "./types.js";

const OPEN = 1;
/** The close code of a connection whose access token expired (no `refresh` came in time). */
const TOKEN_EXPIRED = 4001;

/** What the connection tells the socket, and asks of it. */
export interface ConnectionHooks {
  status(s: StatusEvent): void;
  error(e: ChatError): void;
  /** A message from the current WebSocket. */
  frame(data: unknown): void;
  /** The connection was lost: requests fail, sends wait for the next one. */
  lost(error: ChatError): void;
  /** Where the next connection recovers from (since=). */
  since(): Id | null;
  /** A ping; settles with its pong (the heartbeat). */
  ping(timeoutMs: number): Promise<unknown>;
}

export class Connection {
  private readonly opts: SocketOptions;
  private readonly hooks: ConnectionHooks;
  private ws: WebSocketLike | null = null;
  private statusValue: ConnectionStatus = "idle";
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private pingOutstanding = false;
  private stopped = true;
  private lastUrl: string | null = null;
  private generation = 0;

  constructor(opts: SocketOptions, hooks: ConnectionHooks) {
    this.opts = opts;
    this.hooks = hooks;
  }

  get status(): ConnectionStatus {
    return this.statusValue;
  }

  /** Connected, and the server's ready frame came. */
  isOpen(): boolean {
    return this.statusValue === "open" && this.ws !== null && this.ws.readyState === OPEN;
  }

  write(text: string): void {
    this.ws?.send(text);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempt = 0;
    void this.open();
  }

  /** Stops for good: no reconnecting; the socket is dropped. Then markClosed(). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.dropSocket(1000, "client closed");
  }

  markClosed(): void {
    this.setStatus({ status: "closed", attempt: this.attempt });
  }

  /** Skips the backoff wait; an attempt under way is dropped and started afresh. */
  reconnectNow(): void {
    if (this.stopped || this.statusValue === "open") return;
    clearTimeout(this.reconnectTimer);
    this.dropSocket(1000, "reconnecting");
    void this.open();
  }

  /** The server's ready frame came: the connection is usable and the backoff starts over. */
  markOpen(): void {
    this.attempt = 0;
    this.setStatus({ status: "open", attempt: 0 });
  }

  startHeartbeat(): void {
    const period = this.opts.heartbeatMs ?? 20000;
    if (period <= 0) return;
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => {
      if (this.pingOutstanding) {
        // No pong for a whole period: the connection is dead even if the
        // browser has not noticed (e.g. after a laptop slept).
        this.dropSocket(4000, "heartbeat timeout");
        this.disconnected(new ChatError("timeout", "the server stopped answering"));
        return;
      }
      this.pingOutstanding = true;
      this.hooks.ping(period * 2)
        .then(() => {
          this.pingOutstanding = false;
        })
        .catch(() => {});
    }, period);
  }

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
        this.hooks.error(e);
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
      if (this.ws === ws) this.hooks.frame(ev.data);
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
        this.disconnected(e);
        this.hooks.error(e);
        this.setStatus({ status: "closed", attempt: this.attempt, error: e });
        return;
      }
      this.disconnected(new ChatError(ev.code === 1008 ? "forbidden" : "offline", why));
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
    const since = this.hooks.since();
    if (since) u.searchParams.set("since", since);
    return u.toString();
  }

  private disconnected(error: ChatError): void {
    this.stopHeartbeat();
    this.hooks.lost(error);
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

  private setStatus(s: StatusEvent): void {
    this.statusValue = s.status;
    this.hooks.status(s);
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    this.pingOutstanding = false;
  }
}

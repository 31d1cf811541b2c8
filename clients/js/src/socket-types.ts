// The public types of the real-time channel: the WebSocket it needs, its
// connection states, the events it emits and its options. Exported through
// socket.ts and index.ts.

import type { BackoffOptions } from "./backoff.js";
import type { ChatError } from "./errors.js";
import type { ChatApi } from "./http.js";
import type { Id, Message, PresenceFrame, ReadFrame, ReadyFrame, TypingFrame } from "./types.js";

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

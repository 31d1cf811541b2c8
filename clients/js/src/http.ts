import { ChatError } from "./errors.js";
import type {
  ChatServer,
  Conversation,
  HistoryPage,
  Id,
  LoginResult,
  Message,
  Notification,
  Participant,
  ParticipantKind,
  ParticipantRef,
  PresenceInfo,
} from "./types.js";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiOptions {
  /** Gateway base URL, e.g. "http://127.0.0.1:8080"; "" for the page's own origin. */
  baseUrl?: string;
  token?: string | null;
  fetch?: FetchLike;
}

export interface Registration {
  username: string;
  password: string;
  display_name: string;
  /** Shops only. */
  description?: string;
}

/** The gateway's HTTP API. Every method throws ChatError with the contract's code. */
export class ChatApi {
  baseUrl: string;
  token: string | null;
  private readonly fetchImpl: FetchLike;

  constructor(opts: ApiOptions = {}) {
    this.baseUrl = (opts.baseUrl ?? "").replace(/\/+$/, "");
    this.token = opts.token ?? null;
    const f = opts.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (!f) throw new Error("no fetch implementation");
    // Bound, so that window.fetch is not called with another `this`.
    this.fetchImpl = (input, init) => f(input, init);
  }

  async request<T>(method: string, path: string, body?: unknown, query?: Record<string, unknown>): Promise<T> {
    let url = this.baseUrl + path;
    if (query) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        if (v !== undefined && v !== null && v !== "") qs.set(k, String(v));
      }
      const s = qs.toString();
      if (s) url += "?" + s;
    }
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.token) headers["Authorization"] = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ChatError("offline", `cannot reach the server: ${(err as Error).message ?? err}`);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let data: unknown = undefined;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        if (!res.ok) throw new ChatError(codeForStatus(res.status), text.slice(0, 200), res.status);
        throw new ChatError("internal", "the server answered something that is not JSON", res.status);
      }
    }
    if (!res.ok) {
      const e = (data as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ChatError(e?.code ?? codeForStatus(res.status), e?.message ?? `HTTP ${res.status}`, res.status);
    }
    return data as T;
  }

  // ---- participants and auth ----

  register(kind: ParticipantKind, r: Registration): Promise<Participant> {
    const path = kind === "user" ? "/v1/users" : kind === "shop" ? "/v1/shops" : "/v1/admins";
    const body: Record<string, string> = { username: r.username, password: r.password, display_name: r.display_name };
    if (kind === "shop" && r.description !== undefined) body.description = r.description;
    return this.request("POST", path, body);
  }

  /** Logs in and keeps the token for the next calls. */
  async login(kind: ParticipantKind, username: string, password: string): Promise<LoginResult> {
    const r = await this.request<LoginResult>("POST", "/v1/auth/login", { kind, username, password });
    this.token = r.access_token;
    return r;
  }

  me(): Promise<Participant> {
    return this.request("GET", "/v1/me");
  }

  participant(id: Id): Promise<ParticipantRef> {
    return this.request("GET", `/v1/participants/${enc(id)}`);
  }

  async searchParticipants(q: { kind?: ParticipantKind; q?: string; limit?: number } = {}): Promise<Participant[]> {
    const r = await this.request<{ participants: Participant[] }>("GET", "/v1/participants", undefined, q);
    return r.participants;
  }

  ban(id: Id): Promise<void> {
    return this.request("POST", `/v1/participants/${enc(id)}/ban`, {});
  }

  unban(id: Id): Promise<void> {
    return this.request("POST", `/v1/participants/${enc(id)}/unban`, {});
  }

  // ---- discovery ----

  async discovery(hint: { lat?: number; lon?: number; region?: string } = {}): Promise<ChatServer[]> {
    const r = await this.request<{ servers: ChatServer[] }>("GET", "/v1/discovery", undefined, hint);
    return r.servers;
  }

  // ---- conversations ----

  createConversation(c: { kind: "direct" | "group"; members: Id[]; title?: string }): Promise<Conversation> {
    return this.request("POST", "/v1/conversations", c);
  }

  async listConversations(limit?: number): Promise<Conversation[]> {
    const r = await this.request<{ conversations: Conversation[] }>("GET", "/v1/conversations", undefined, { limit });
    return r.conversations;
  }

  getConversation(id: Id): Promise<Conversation> {
    return this.request("GET", `/v1/conversations/${enc(id)}`);
  }

  /** A page of history, newest first; `before` pages back. */
  history(id: Id, opts: { before?: Id; limit?: number } = {}): Promise<HistoryPage> {
    return this.request("GET", `/v1/conversations/${enc(id)}/messages`, undefined, opts);
  }

  markRead(id: Id, messageId: Id): Promise<void> {
    return this.request("POST", `/v1/conversations/${enc(id)}/read`, { message_id: messageId });
  }

  /** Admins join any conversation with their own id; a group's creator and admins add others (anyone else: 403). */
  addMember(id: Id, participantId: Id): Promise<Conversation> {
    return this.request("POST", `/v1/conversations/${enc(id)}/members`, { participant_id: participantId });
  }

  // ---- messages ----

  sendMessage(conversationId: Id, body: string, clientMsgId?: string): Promise<Message> {
    const b: Record<string, string> = { body };
    if (clientMsgId) b.client_msg_id = clientMsgId;
    return this.request("POST", `/v1/conversations/${enc(conversationId)}/messages`, b);
  }

  editMessage(id: Id, body: string): Promise<Message> {
    return this.request("PATCH", `/v1/messages/${enc(id)}`, { body });
  }

  deleteMessage(id: Id): Promise<Message> {
    return this.request("DELETE", `/v1/messages/${enc(id)}`);
  }

  // ---- presence and notifications ----

  presence(id: Id): Promise<PresenceInfo> {
    return this.request("GET", `/v1/presence/${enc(id)}`);
  }

  async notifications(limit?: number): Promise<Notification[]> {
    const r = await this.request<{ notifications: Notification[] }>("GET", "/v1/notifications", undefined, { limit });
    return r.notifications;
  }
}

function enc(id: string): string {
  return encodeURIComponent(id);
}

export function codeForStatus(status: number): string {
  switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 409: return "conflict";
    case 413: return "too_large";
    case 429: return "rate_limited";
    case 503: return "unavailable";
    default: return status >= 500 ? "internal" : "bad_request";
  }
}

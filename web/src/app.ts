import {
  ChatApi,
  ChatError,
  ChatSocket,
  compareIds,
  newClientMsgId,
  watchPagePresence,
  pagePresence,
  type Conversation,
  type Id,
  type Message,
  type Notification,
  type Participant,
  type ParticipantRef,
  type PresenceState,
  type SendStateEvent,
  type StatusEvent,
} from "@chatd/client";

import { byId, codePoints, formatTime, h } from "./dom.js";
import { DeviceStore } from "./store.js";
import { GROUP_MS, dayKey, dayLabel, fullDate, splitLinks } from "./text.js";

const MAX_BODY = 4000;
const PAGE = 30;
/** The first page of a conversation opened before the ready frame brought it (as many as ready has). */
const FIRST_PAGE = 20;
/** Closer than this to the bottom counts as "at the latest message". */
const NEAR_BOTTOM_PX = 80;
const TYPING_SHOWN_MS = 4000;

interface ConvState {
  conv: Conversation;
  /** By id; rendered in id order. */
  messages: Map<Id, Message>;
  hasMore: boolean;
  loadingOlder: boolean;
  /** participant id -> when their "typing" expires. */
  typing: Map<Id, number>;
  /** Other members' read markers learnt live. */
  peerRead: Map<Id, Id>;
  /** Admin viewing a conversation they are not a member of: no live frames, so it is polled. */
  observer: boolean;
  /** The first message that was unread when the conversation was opened: the "New messages" divider goes above it. */
  unreadFrom: Id | null;
  /** Messages from others that arrived below the visible part (the "new messages ↓" button counts them). */
  newBelow: number;
}

/** The path of a conversation's page, and back. */
export function conversationPath(id: Id): string {
  return `/c/${encodeURIComponent(id)}`;
}

export function conversationFromPath(path: string): Id | null {
  const m = /^\/c\/(\d{1,20})\/?$/.exec(path);
  return m ? (m[1] as Id) : null;
}

/** A friendly sentence for an error code (the contract's or the client's). */
export function describeError(e: unknown): string {
  if (!(e instanceof ChatError)) return `Something went wrong: ${String(e)}`;
  switch (e.code) {
    case "rate_limited":
      return "You are sending too fast. Wait a moment and try again.";
    case "too_large":
      return `Message too long: at most ${MAX_BODY} characters.`;
    case "offline":
      return "You are offline. Messages are kept and sent when the connection is back.";
    case "timeout":
      return "The server did not answer in time.";
    case "unauthorized":
      return "You have been signed out. Please log in again.";
    case "forbidden":
      return "You are not allowed to do that. If your account was blocked, contact support.";
    case "not_found":
      return "That conversation or message does not exist, or you cannot see it.";
    case "conflict":
      return "That is already taken.";
    case "bad_request":
      return `That was not accepted: ${e.message}`;
    case "unavailable":
      return "The service is temporarily unavailable. Try again in a moment.";
    default:
      return e.message || e.code;
  }
}

/** The banner's text when the connection closed for good, and whether sending is impossible. */
function closedReason(e: ChatError | undefined): { text: string; blocked: boolean } {
  if (e?.code === "forbidden") {
    return {
      text: "Disconnected: your account has been blocked by support, so you cannot send or receive messages. " +
        "Messages you already wrote are kept.",
      blocked: true,
    };
  }
  return { text: "Disconnected.", blocked: false };
}

/** On a touch screen (a phone) Enter is a line break and the Send button sends, as in phone chat apps. */
function touchScreen(): boolean {
  return window.matchMedia("(pointer: coarse)").matches;
}

function enterSends(k: KeyboardEvent): boolean {
  return k.key === "Enter" && !k.shiftKey && !k.isComposing && !touchScreen();
}

/** A message body as text nodes and http(s) links that open in a new tab, built with DOM calls only. */
function linkified(body: string): Node[] {
  return splitLinks(body).map((p) => "href" in p
    ? h("a", { href: p.href, target: "_blank", rel: "noopener noreferrer" }, p.text)
    : document.createTextNode(p.text));
}

/** A time as people read it, with the full date on hover and the exact instant for machines. */
function timeEl(ms: number, cls?: string): HTMLElement {
  return h("time", { datetime: new Date(ms).toISOString(), title: fullDate(ms), class: cls }, formatTime(ms));
}

const KIND_NAMES: Record<string, string> = { user: "Customer", shop: "Shop", admin: "Support staff" };

export function presenceWord(state: PresenceState | "unknown"): string {
  return state === "active" ? "online" : state === "inactive" ? "away" : state === "offline" ? "offline"
    : "status unknown";
}

export class ChatApp {
  private readonly root: HTMLElement;
  private readonly api: ChatApi;
  private readonly me: Participant;
  private readonly socket: ChatSocket;
  private readonly onLogout: (message?: string) => void;
  private readonly store: DeviceStore;

  private readonly convs = new Map<Id, ConvState>();
  private readonly people = new Map<Id, ParticipantRef>();
  private readonly presence = new Map<Id, PresenceState>();
  private readonly pending = new Map<string, SendStateEvent>();
  private activeId: Id | null = null;
  private status: StatusEvent = { status: "connecting", attempt: 0 };
  private showNotifications = false;
  private notifications: Notification[] = [];
  private editing: Id | null = null;
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private typingTimer: ReturnType<typeof setInterval> | undefined;
  private stopPresence: (() => void) | undefined;
  private errorTimer: ReturnType<typeof setTimeout> | undefined;
  private bannerTimer: ReturnType<typeof setInterval> | undefined;
  /** When the next reconnect attempt is due (the banner counts down to it). */
  private retryAt: number | null = null;
  private seenObserver: IntersectionObserver | null = null;

  constructor(root: HTMLElement, api: ChatApi, me: Participant, onLogout: (message?: string) => void) {
    this.root = root;
    this.api = api;
    this.me = me;
    this.onLogout = onLogout;
    this.store = new DeviceStore(me.id);
    this.people.set(me.id, me);
    // A short cap: after a server restart the page is back within seconds.
    this.socket = new ChatSocket({ api, backoff: { baseMs: 500, maxMs: 5000 } });
  }

  start(): void {
    this.renderShell();
    const s = this.socket;
    s.on("status", (st) => {
      const wasOpen = this.status.status === "open";
      this.status = st;
      this.retryAt = st.status === "reconnecting" && st.retryInMs !== undefined ? Date.now() + st.retryInMs : null;
      this.renderBanner();
      this.renderComposerState();
      // While our own connection is down, nobody's presence is known.
      if (wasOpen !== (st.status === "open")) {
        this.renderList();
        this.renderChatHeader();
      }
    });
    s.on("error", (e) => {
      if (e.code === "unauthorized") {
        this.onLogout(describeError(e));
        return;
      }
      // A ban: the banner says it (status "closed" with the error).
      if (e.code === "forbidden" && s.status !== "open") return;
      this.showError(describeError(e));
    });
    s.on("ready", (r) => {
      for (const c of r.conversations) {
        const known = (this.convs.get(c.id)?.messages.size ?? 0) > 0;
        const st = this.upsertConversation(c);
        for (const m of c.messages) st.messages.set(m.id, m);
        // The ready frame has the newest 20; older pages come from history.
        if (!known) st.hasMore = c.messages.length >= 20;
      }
      // Presence learnt before the connection dropped may be stale: ask again.
      this.presence.clear();
      void this.loadPresence();
      this.renderList();
      // Not renderChat(): a reconnect must not scroll a reader who scrolled up.
      this.renderComposerState();
      this.renderChatHeader();
      this.renderMessages(false);
    });
    s.on("message", (m) => this.onMessage(m));
    s.on("message_updated", (m) => {
      const st = this.convs.get(m.conversation_id);
      if (!st) return;
      st.messages.set(m.id, m);
      if (st.conv.last_message?.id === m.id) st.conv.last_message = m;
      if (this.editing === m.id && m.deleted) this.editing = null;
      this.renderList();
      if (m.conversation_id === this.activeId) this.renderMessages(false);
    });
    s.on("read", (r) => {
      const st = this.convs.get(r.conversation_id);
      if (!st) return;
      if (r.participant_id === this.me.id) {
        st.conv.unread_count = 0; // read on another device
        this.renderList();
        return;
      }
      const prev = st.peerRead.get(r.participant_id);
      if (!prev || compareIds(r.message_id, prev) > 0) st.peerRead.set(r.participant_id, r.message_id);
      if (r.conversation_id === this.activeId) this.renderMessages(false);
    });
    s.on("typing", (t) => {
      const st = this.convs.get(t.conversation_id);
      if (!st || t.participant_id === this.me.id) return;
      st.typing.set(t.participant_id, Date.now() + TYPING_SHOWN_MS);
      if (t.conversation_id === this.activeId) this.renderTyping();
    });
    s.on("presence", (p) => {
      this.presence.set(p.participant_id, p.state);
      this.renderList();
      this.renderChatHeader();
    });
    s.on("send_state", (e) => {
      if (e.state === "sent") {
        this.pending.delete(e.client_msg_id);
        this.store.removeOutbox(e.client_msg_id);
        if (e.message) this.addMessage(e.message);
      } else if (e.state === "failed" && e.error?.code === "cancelled") {
        this.pending.delete(e.client_msg_id);
        this.store.removeOutbox(e.client_msg_id);
      } else {
        this.pending.set(e.client_msg_id, e);
        if (e.state === "retrying" && e.error?.code === "rate_limited") this.showError(describeError(e.error));
        if (e.state === "failed" && e.error) {
          const error = { code: e.error.code, message: e.error.message };
          this.store.updateOutbox(e.client_msg_id, (i) => ({ ...i, failed: error }));
          this.showError(describeError(e.error));
        }
      }
      if (e.conversation_id === this.activeId) this.renderMessages(e.state === "sending" || e.state === "sent");
    });

    // Messages written before a reload (or in another tab that closed) and
    // not acknowledged: send them again with their client_msg_id, so one that
    // did arrive is not stored twice.
    for (const item of this.store.outbox()) {
      if (item.failed) {
        this.pending.set(item.client_msg_id, {
          client_msg_id: item.client_msg_id,
          conversation_id: item.conversation_id,
          body: item.body,
          state: "failed",
          attempt: 0,
          error: new ChatError(item.failed.code, item.failed.message),
        });
      } else {
        this.socket.send(item.conversation_id, item.body, item.client_msg_id).catch(() => {});
      }
    }

    this.stopPresence = watchPagePresence(this.socket);
    // Reading happens when the page comes back to the front.
    document.addEventListener("visibilitychange", this.onVisibility);
    window.addEventListener("focus", this.onVisibility);
    window.addEventListener("online", this.onOnline);
    window.addEventListener("beforeunload", this.onBeforeUnload);
    window.addEventListener("popstate", this.onPopState);
    this.typingTimer = setInterval(() => this.renderTyping(), 1000);
    this.bannerTimer = setInterval(() => this.tickBanner(), 1000);
    this.socket.connect();
    // The list over HTTP too: the gateway may answer while the chat server does not.
    void this.api.listConversations(100).then((list) => {
      // Only what the ready frame did not bring: live state wins over this snapshot.
      for (const c of list) if (!this.convs.has(c.id)) this.upsertConversation(c);
      void this.loadPresence();
      this.renderList();
      this.renderChat();
    }).catch(() => {
      // The ready frame brings it when the connection is up.
    });
    // A reload, a new tab or a link to /c/<id> reopens that conversation.
    const fromUrl = conversationFromPath(location.pathname);
    if (fromUrl) void this.openConversation(fromUrl, false);
  }

  stop(): void {
    this.socket.close();
    this.seenObserver?.disconnect();
    this.stopPresence?.();
    document.removeEventListener("visibilitychange", this.onVisibility);
    window.removeEventListener("focus", this.onVisibility);
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("beforeunload", this.onBeforeUnload);
    window.removeEventListener("popstate", this.onPopState);
    document.title = "chatd";
    clearInterval(this.pollTimer);
    clearInterval(this.typingTimer);
    clearInterval(this.bannerTimer);
  }

  private readonly onVisibility = () => {
    // Back in front while offline: try at once instead of waiting out the backoff.
    if (document.visibilityState === "visible" && this.status.status === "reconnecting") this.socket.reconnectNow();
    // Back in front: what is on screen now has been seen.
    this.readOnScreen();
  };
  private readonly onOnline = () => this.socket.reconnectNow();
  private readonly onBeforeUnload = (ev: BeforeUnloadEvent) => {
    // Unsent messages are kept on this device, but leaving now delays them: ask.
    if (this.pending.size === 0) return;
    ev.preventDefault();
    ev.returnValue = "";
  };

  /** Nothing can be sent (blocked), as opposed to merely offline (sends wait in the outbox). */
  private get sendingBlocked(): boolean {
    return this.status.status === "closed" && closedReason(this.status.error).blocked;
  }

  // ---- state ----

  private upsertConversation(c: Conversation, observer = false): ConvState {
    for (const m of c.members) this.people.set(m.id, m);
    let st = this.convs.get(c.id);
    if (!st) {
      st = {
        conv: c,
        messages: new Map(),
        hasMore: c.last_message !== null,
        loadingOlder: false,
        typing: new Map(),
        peerRead: new Map(),
        observer,
        unreadFrom: null,
        newBelow: 0,
      };
      this.convs.set(c.id, st);
    } else {
      const { messages: _drop, ...rest } = c as Conversation & { messages?: unknown };
      st.conv = { ...st.conv, ...rest };
      st.observer = observer && st.observer;
    }
    return st;
  }

  private onMessage(m: Message): void {
    const st = this.convs.get(m.conversation_id);
    if (!st) {
      // A conversation someone just started with us: fetch it.
      void this.api.getConversation(m.conversation_id).then((c) => {
        // The conversation may have been read before the message was stored:
        // count it unless the answer already includes it.
        const counted = c.last_message !== null && compareIds(c.last_message.id, m.id) >= 0;
        const s2 = this.upsertConversation(c);
        if (!counted && m.sender.id !== this.me.id) s2.conv.unread_count += 1;
        this.addMessage(m);
        void this.loadPresence();
      }).catch(() => {});
      return;
    }
    const mine = m.sender.id === this.me.id;
    const active = m.conversation_id === this.activeId;
    const atBottom = active && this.nearBottom();
    if (!mine && active && !atBottom) {
      // Arrived below what the reader is looking at: count it for the "new messages ↓" button.
      st.newBelow += 1;
      if (!st.unreadFrom) st.unreadFrom = m.id;
    }
    // Unread until it has been on screen in a visible page (readOnScreen, after it is rendered).
    // A message older than the newest one the ready frame brought is a replay
    // (since=) that the ready frame's unread_count already counts.
    const last = st.conv.last_message;
    const lastRead = st.conv.last_read_message_id;
    if (!mine) {
      st.typing.delete(m.sender.id);
      if ((!last || compareIds(m.id, last.id) > 0) && (!lastRead || compareIds(m.id, lastRead) > 0)) {
        st.conv.unread_count += 1;
      }
    }
    this.addMessage(m);
    this.renderList();
  }

  private nearBottom(): boolean {
    const box = document.getElementById("messages");
    return !box || box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
  }

  /** The oldest loaded message from someone else that is unread. */
  private firstUnread(st: ConvState): Id | null {
    const others = this.sortedMessages(st).filter((m) => m.sender.id !== this.me.id && !m.deleted);
    const last = st.conv.last_read_message_id;
    if (last) return others.find((m) => compareIds(m.id, last) > 0)?.id ?? null;
    if (st.conv.unread_count > 0) return others.at(-Math.min(st.conv.unread_count, others.length))?.id ?? null;
    return null;
  }

  private addMessage(m: Message): void {
    const st = this.convs.get(m.conversation_id);
    if (!st) return;
    st.messages.set(m.id, m);
    if (!st.conv.last_message || compareIds(m.id, st.conv.last_message.id) >= 0) {
      st.conv.last_message = m;
      st.conv.updated_at = Math.max(st.conv.updated_at, m.created_at);
    }
    if (m.conversation_id === this.activeId) this.renderMessages(m.sender.id === this.me.id);
    this.renderList();
  }

  private sortedMessages(st: ConvState): Message[] {
    return [...st.messages.values()].sort((a, b) => compareIds(a.id, b.id));
  }

  /**
   * Marks read what the reader has really seen: messages from others that are
   * on screen (at least half of one, or 60 px of a tall one) in the open
   * conversation, while the page is visible and focused. Called when the
   * IntersectionObserver reports a change, when the page comes to the front
   * and when a conversation is opened, so a message that arrived while the
   * reader was scrolled up or away stays unread.
   */
  private readOnScreen(): void {
    const st = this.activeId ? this.convs.get(this.activeId) : undefined;
    const box = document.getElementById("messages");
    if (!st || st.observer || !box || pagePresence(document) !== "active") return;
    const view = box.getBoundingClientRect();
    let newest: Id | null = null;
    for (const el of box.querySelectorAll<HTMLElement>("article[data-unread]")) {
      const r = el.getBoundingClientRect();
      const shown = Math.min(r.bottom, view.bottom) - Math.max(r.top, view.top);
      if (r.height > 0 && (shown >= r.height / 2 || shown >= 60)) {
        const id = el.dataset.messageId;
        if (id && (!newest || compareIds(id, newest) > 0)) newest = id;
      }
    }
    if (newest) this.markRead(st, newest);
  }

  private markRead(st: ConvState, upTo: Id): void {
    const last = st.conv.last_read_message_id;
    if (last && compareIds(upTo, last) <= 0) return;
    st.conv.last_read_message_id = upTo;
    const left = this.sortedMessages(st)
      .filter((m) => m.sender.id !== this.me.id && compareIds(m.id, upTo) > 0).length;
    st.conv.unread_count = Math.min(st.conv.unread_count, left);
    this.renderList();
    const box = document.getElementById("messages");
    for (const el of box?.querySelectorAll<HTMLElement>("article[data-unread]") ?? []) {
      if (compareIds(el.dataset.messageId ?? "0", upTo) <= 0) {
        el.removeAttribute("data-unread");
        this.seenObserver?.unobserve(el);
      }
    }
    const done = this.socket.status === "open"
      ? this.socket.markRead(st.conv.id, upTo)
      : this.api.markRead(st.conv.id, upTo);
    done.catch(() => {
      // Try again the next time it is on screen.
      if (st.conv.last_read_message_id === upTo) st.conv.last_read_message_id = last ?? null;
    });
  }

  /** Watches the unread messages of the open conversation scroll into view. */
  private watchUnread(box: HTMLElement): void {
    if (!this.seenObserver) {
      this.seenObserver = new IntersectionObserver(() => this.readOnScreen(), { root: box, threshold: [0, 0.5, 1] });
    }
    this.seenObserver.disconnect();
    for (const el of box.querySelectorAll("article[data-unread]")) this.seenObserver.observe(el);
  }

  private async loadPresence(): Promise<void> {
    const ids = new Set<Id>();
    for (const st of this.convs.values()) {
      for (const m of st.conv.members) if (m.id !== this.me.id) ids.add(m.id);
    }
    await Promise.all([...ids].filter((id) => !this.presence.has(id)).map(async (id) => {
      try {
        const p = await this.api.presence(id);
        if (!this.presence.has(id)) this.presence.set(id, p.state);
      } catch {
        // Presence is decoration.
      }
    }));
    this.renderList();
    this.renderChatHeader();
  }

  private title(c: Conversation): string {
    if (c.title) return c.title;
    const others = c.members.filter((m) => m.id !== this.me.id);
    if (others.length === 0) return "Just you";
    return others.map((m) => m.display_name).join(", ");
  }

  /** The other person of a direct conversation of mine (support staff looking in from outside have none). */
  private peer(c: Conversation): ParticipantRef | undefined {
    if (c.kind !== "direct" || !c.members.some((m) => m.id === this.me.id)) return undefined;
    return c.members.find((m) => m.id !== this.me.id);
  }

  private name(id: Id): string {
    if (id === this.me.id) return "You";
    return this.people.get(id)?.display_name ?? "Someone";
  }

  // ---- actions ----

  /** Opens a conversation; `push` adds /c/<id> to the browser history (not when following it). */
  private async openConversation(id: Id, push = true): Promise<void> {
    this.activeId = id;
    this.editing = null;
    this.showNotifications = false;
    clearInterval(this.pollTimer);
    if (push && location.pathname !== conversationPath(id)) history.pushState({ c: id }, "", conversationPath(id));
    let st = this.convs.get(id);
    if (!st) {
      try {
        const c = await this.api.getConversation(id);
        const observer = !c.members.some((m) => m.id === this.me.id);
        st = this.upsertConversation(c, observer);
        if (st.messages.size === 0) {
          const page = await this.api.history(id, { limit: FIRST_PAGE });
          for (const m of page.messages) st.messages.set(m.id, m);
          st.hasMore = page.has_more;
        }
      } catch (e) {
        if (this.activeId !== id) return;
        this.activeId = null;
        if (conversationFromPath(location.pathname) === id) history.replaceState(null, "", "/");
        this.showError(describeError(e));
        this.renderAll();
        return;
      }
      if (this.activeId !== id) return; // another was opened meanwhile
    }
    st.unreadFrom = this.firstUnread(st);
    st.newBelow = 0;
    if (st.observer) {
      // An admin watching from outside gets no live frames: poll the newest page.
      this.pollTimer = setInterval(() => void this.refreshObserved(id), 3000);
    }
    this.renderAll();
    // Start at the first unread message, else at the latest.
    const divider = document.getElementById("new-divider");
    if (divider) divider.scrollIntoView({ block: "start" });
    this.updateJump();
    // Known from the list but none of its messages yet (offline start): the newest page.
    if (st.messages.size === 0 && st.hasMore) void this.loadOlder();
    const composer = byId<HTMLTextAreaElement>("composer");
    composer.value = this.store.draft(id);
    this.updateCounter();
    composer.focus();
    this.readOnScreen();
  }

  private async refreshObserved(id: Id): Promise<void> {
    const st = this.convs.get(id);
    if (!st || this.activeId !== id) return;
    try {
      const page = await this.api.history(id, { limit: PAGE });
      let changed = false;
      for (const m of page.messages) {
        const old = st.messages.get(m.id);
        if (!old || old.deleted !== m.deleted || old.body !== m.body) changed = true;
        st.messages.set(m.id, m);
      }
      if (changed) this.renderMessages(false);
    } catch {
      // Next tick.
    }
  }

  private async loadOlder(): Promise<void> {
    const st = this.activeId ? this.convs.get(this.activeId) : undefined;
    if (!st || st.loadingOlder || !st.hasMore) return;
    st.loadingOlder = true;
    this.renderMessages(false);
    const oldest = this.sortedMessages(st)[0];
    const box = byId("messages");
    const before = box.scrollHeight - box.scrollTop;
    try {
      const opts: { before?: Id; limit: number } = { limit: oldest ? PAGE : FIRST_PAGE };
      if (oldest) opts.before = oldest.id;
      const page = this.socket.status === "open" && !st.observer
        ? await this.socket.history(st.conv.id, opts)
        : await this.api.history(st.conv.id, opts);
      for (const m of page.messages) st.messages.set(m.id, m);
      st.hasMore = page.has_more;
    } catch (e) {
      this.showError(describeError(e));
    } finally {
      st.loadingOlder = false;
    }
    this.renderMessages(false);
    // Keep the message that was at the top where it was.
    box.scrollTop = box.scrollHeight - before;
  }

  private send(text: string): void {
    const st = this.activeId ? this.convs.get(this.activeId) : undefined;
    if (!st) return;
    const body = text.trim();
    if (!body) return;
    const n = codePoints(body);
    if (n > MAX_BODY) {
      this.showError(`Message too large: ${n} characters, at most ${MAX_BODY}.`);
      return;
    }
    if (st.observer) {
      this.showError("You are viewing this conversation as support staff and are not a member.");
      return;
    }
    if (this.sendingBlocked) return;
    const id = newClientMsgId();
    this.store.putOutbox({ client_msg_id: id, conversation_id: st.conv.id, body, created_at: Date.now() });
    this.socket.send(st.conv.id, body, id).catch(() => {
      // send_state shows the failure next to the message.
    });
    byId<HTMLTextAreaElement>("composer").value = "";
    this.store.setDraft(st.conv.id, "");
    this.updateCounter();
  }

  /** Sends a message that failed again, with its client_msg_id. */
  private retrySend(p: SendStateEvent): void {
    this.store.updateOutbox(p.client_msg_id, ({ failed: _f, ...rest }) => rest);
    this.socket.send(p.conversation_id, p.body, p.client_msg_id).catch(() => {});
  }

  private discardSend(p: SendStateEvent): void {
    this.pending.delete(p.client_msg_id);
    this.store.removeOutbox(p.client_msg_id);
    this.socket.cancelSend(p.client_msg_id);
    if (p.conversation_id === this.activeId) this.renderMessages(false);
  }

  private async editMessage(m: Message, body: string): Promise<void> {
    const text = body.trim();
    if (!text) return;
    try {
      const updated = await this.socket.edit(m.id, text);
      this.editing = null;
      this.convs.get(updated.conversation_id)?.messages.set(updated.id, updated);
      this.renderMessages(false);
    } catch (e) {
      this.showError(describeError(e));
    }
  }

  private async deleteMessage(m: Message): Promise<void> {
    if (!window.confirm("Delete this message for everyone?")) return;
    try {
      const st = this.convs.get(m.conversation_id);
      const updated = st?.observer || this.socket.status !== "open"
        ? await this.api.deleteMessage(m.id)
        : await this.socket.delete(m.id);
      st?.messages.set(updated.id, updated);
      this.renderMessages(false);
      this.renderList();
    } catch (e) {
      this.showError(describeError(e));
    }
  }

  private async startChat(shop: ParticipantRef): Promise<void> {
    try {
      const c = await this.api.createConversation({ kind: "direct", members: [shop.id] });
      this.upsertConversation(c);
      byId<HTMLInputElement>("search").value = "";
      byId("search-results").replaceChildren();
      await this.openConversation(c.id);
      void this.loadPresence();
    } catch (e) {
      this.showError(describeError(e));
    }
  }

  private async setBan(id: Id, banned: boolean): Promise<void> {
    try {
      if (banned) await this.api.ban(id);
      else await this.api.unban(id);
      this.showInfo(`${this.name(id)} ${banned ? "banned" : "unbanned"}.`);
    } catch (e) {
      this.showError(describeError(e));
    }
  }

  private async toggleNotifications(): Promise<void> {
    this.showNotifications = !this.showNotifications;
    if (this.showNotifications) await this.refreshNotifications();
    this.renderAll();
  }

  private async refreshNotifications(): Promise<void> {
    try {
      this.notifications = await this.api.notifications(50);
    } catch (e) {
      this.showError(describeError(e));
    }
    this.renderNotifications();
  }

  private showError(text: string): void {
    const el = byId("error");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => {
      el.hidden = true;
    }, 8000);
  }

  private showInfo(text: string): void {
    const el = byId("info");
    el.textContent = text;
    el.hidden = false;
    setTimeout(() => {
      el.hidden = true;
    }, 4000);
  }

  // ---- rendering ----

  private renderShell(): void {
    const kind = this.me.kind;
    const listTitle = kind === "shop" ? "Customer conversations" : kind === "admin" ? "Your conversations" : "Conversations";
    this.root.replaceChildren(
      h("header", { class: "topbar" },
        h("h1", { class: "brand" }, "chatd"),
        h("span", { class: "me", "data-testid": "me" }, `${this.me.display_name} · ${KIND_NAMES[kind]}`),
        h("button", {
          type: "button", id: "notif-button", class: "ghost", "aria-expanded": "false",
          "aria-controls": "notifications", onclick: () => void this.toggleNotifications(),
        }, "Notifications"),
        h("button", { type: "button", class: "ghost", onclick: () => {
          history.replaceState(null, "", "/");
          this.onLogout();
        } }, "Log out"),
      ),
      h("div", { id: "banner", class: "banner", role: "status", "aria-live": "polite", hidden: true }),
      h("div", { id: "error", class: "error", role: "alert", hidden: true }),
      h("div", { id: "info", class: "info", role: "status", "aria-live": "polite", hidden: true }),
      h("main", { id: "layout", class: "layout" },
        h("aside", { class: "sidebar", "aria-label": "Conversations" },
          kind !== "shop" ? this.searchForm() : null,
          kind === "admin" ? this.adminTools() : null,
          h("h2", { id: "list-title" }, listTitle),
          h("ul", { id: "conversation-list", class: "conv-list", "aria-labelledby": "list-title" }),
        ),
        h("section", { id: "chat", class: "chat", "aria-label": "Chat" },
          h("div", { id: "chat-header", class: "chat-header" }),
          h("div", { class: "messages-wrap" },
            h("div", { id: "messages", class: "messages", role: "log", "aria-live": "polite", "aria-label": "Messages",
              tabindex: 0, onscroll: () => this.onScroll() }),
            h("button", { type: "button", id: "jump", class: "jump", hidden: true, onclick: () => this.jumpToLatest() },
              "Jump to latest ↓"),
          ),
          h("div", { id: "typing", class: "typing", "aria-live": "polite" }),
          this.composer(),
        ),
        h("section", { id: "notifications", class: "notifications", "aria-labelledby": "notif-title", hidden: true },
          h("div", { class: "chat-header" },
            h("h2", { id: "notif-title" }, "Notifications"),
            h("button", { type: "button", class: "ghost", onclick: () => void this.refreshNotifications() }, "Refresh"),
            h("button", { type: "button", class: "ghost", onclick: () => void this.toggleNotifications() }, "Close"),
          ),
          h("ul", { id: "notification-list", class: "notif-list" }),
        ),
      ),
    );
    this.renderAll();
  }

  private searchForm(): HTMLElement {
    const kind = this.me.kind === "admin" ? "shop" : "shop";
    let seq = 0;
    const run = async (q: string) => {
      const mine = ++seq;
      const out = byId("search-results");
      if (!q.trim()) {
        out.replaceChildren();
        return;
      }
      try {
        const found = await this.api.searchParticipants({ kind, q: q.trim(), limit: 8 });
        if (mine !== seq) return;
        out.replaceChildren(...(found.length
          ? found.map((p) => h("li", {},
            h("button", { type: "button", class: "result", onclick: () => void this.startChat(p) },
              h("strong", {}, p.display_name), ` @${p.username ?? ""}`,
              p.description ? h("span", { class: "muted" }, ` — ${p.description}`) : null)))
          : [h("li", { class: "muted" }, "No shop found")]));
      } catch (e) {
        this.showError(describeError(e));
      }
    };
    return h("form", { class: "panel", role: "search", onsubmit: (ev: Event) => {
      ev.preventDefault();
      void run(byId<HTMLInputElement>("search").value);
    } },
      h("label", { for: "search" }, "Start a chat with a shop"),
      h("div", { class: "row" },
        h("input", { id: "search", type: "search", autocomplete: "off", placeholder: "Shop name",
          oninput: (ev: Event) => void run((ev.target as HTMLInputElement).value) }),
        h("button", { type: "submit" }, "Search"),
      ),
      h("ul", { id: "search-results", class: "results", "aria-label": "Shops found" }),
    );
  }

  private adminTools(): HTMLElement {
    return h("div", { class: "panel admin-tools" },
      h("form", { onsubmit: (ev: Event) => {
        ev.preventDefault();
        const v = byId<HTMLInputElement>("open-id").value.trim();
        if (v) void this.openConversation(v);
      } },
        h("label", { for: "open-id" }, "Open conversation by id"),
        h("div", { class: "row" },
          h("input", { id: "open-id", inputmode: "numeric", autocomplete: "off" }),
          h("button", { type: "submit" }, "Open"),
        ),
      ),
      h("form", { onsubmit: (ev: Event) => ev.preventDefault() },
        h("label", { for: "ban-id" }, "Participant id"),
        h("div", { class: "row" },
          h("input", { id: "ban-id", inputmode: "numeric", autocomplete: "off" }),
          h("button", { type: "button", onclick: () => {
            const v = byId<HTMLInputElement>("ban-id").value.trim();
            if (v) void this.setBan(v, true);
          } }, "Ban"),
          h("button", { type: "button", onclick: () => {
            const v = byId<HTMLInputElement>("ban-id").value.trim();
            if (v) void this.setBan(v, false);
          } }, "Unban"),
        ),
      ),
    );
  }

  private composer(): HTMLElement {
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
          if (!this.activeId) return;
          this.store.setDraft(this.activeId, (ev.target as HTMLTextAreaElement).value);
          if (!this.convs.get(this.activeId)?.observer) this.socket.typing(this.activeId);
        },
      }),
      h("span", { id: "counter", class: "counter muted" }),
      // mousedown's default would move focus (and close a phone's keyboard): keep it in the composer.
      h("button", { type: "submit", id: "send-button", onmousedown: (ev: Event) => ev.preventDefault() }, "Send"),
    );
  }

  private updateCounter(): void {
    const n = codePoints(byId<HTMLTextAreaElement>("composer").value);
    const c = byId("counter");
    c.textContent = n > MAX_BODY - 500 ? `${n}/${MAX_BODY}` : "";
    c.classList.toggle("over", n > MAX_BODY);
  }

  private renderAll(): void {
    const layout = byId("layout");
    layout.classList.toggle("has-active", this.activeId !== null || this.showNotifications);
    byId("chat").hidden = this.showNotifications;
    byId("notifications").hidden = !this.showNotifications;
    byId("notif-button").setAttribute("aria-expanded", String(this.showNotifications));
    this.renderBanner();
    this.renderList();
    this.renderChat();
    this.renderNotifications();
  }

  private renderBanner(): void {
    const el = document.getElementById("banner");
    if (!el) return;
    const s = this.status;
    el.dataset.status = s.status;
    if (s.status === "open") {
      el.hidden = true;
      el.replaceChildren();
      return;
    }
    el.hidden = false;
    if (s.status === "connecting" || s.status === "idle") {
      el.replaceChildren("Connecting…");
    } else if (s.status === "reconnecting") {
      el.replaceChildren(
        h("span", { id: "banner-text" }, this.reconnectText()), " ",
        h("button", { type: "button", class: "link", id: "retry-now", onclick: () => this.socket.reconnectNow() },
          "Retry now"),
      );
    } else if (s.status === "closed") {
      el.replaceChildren(
        h("span", { id: "banner-text" }, closedReason(s.error).text), " ",
        h("button", { type: "button", class: "link", id: "reconnect", onclick: () => this.socket.connect() },
          "Reconnect"),
      );
    }
  }

  private reconnectText(): string {
    if (this.retryAt === null) return "Offline · reconnecting…";
    const secs = Math.max(1, Math.ceil((this.retryAt - Date.now()) / 1000));
    return `Offline · reconnecting in ${secs} s`;
  }

  /** Moves the countdown without rebuilding the banner (a focused button keeps focus). */
  private tickBanner(): void {
    if (this.status.status !== "reconnecting") return;
    const t = document.getElementById("banner-text");
    const text = this.reconnectText();
    if (t && t.textContent !== text) t.textContent = text;
  }

  private renderComposerState(): void {
    const composer = document.getElementById("composer") as HTMLTextAreaElement | null;
    const button = document.getElementById("send-button") as HTMLButtonElement | null;
    if (!composer || !button) return;
    const st = this.activeId ? this.convs.get(this.activeId) : undefined;
    const blocked = this.sendingBlocked;
    composer.disabled = !st || st.observer || blocked;
    button.disabled = composer.disabled;
    composer.placeholder = blocked
      ? "You cannot send messages while your account is blocked."
      : st?.observer ? "Viewing as support staff: you are not a member of this conversation."
      : touchScreen() ? "Write a message…" : "Write a message… (Enter to send, Shift+Enter for a new line)";
  }

  /** A participant's presence as far as we know: "unknown" while our own connection is down. */
  private presenceOf(id: Id): PresenceState | "unknown" {
    if (this.status.status !== "open") return "unknown";
    return this.presence.get(id) ?? "unknown"; // not asked yet, or the answer did not come
  }

  private renderList(): void {
    const ul = document.getElementById("conversation-list");
    if (!ul) return;
    const list = [...this.convs.values()]
      .filter((s) => !s.observer)
      .sort((a, b) => b.conv.updated_at - a.conv.updated_at || compareIds(b.conv.id, a.conv.id));
    // The unread count in the tab's title, as mail and chat pages do.
    const unread = list.reduce((n, st) => n + st.conv.unread_count, 0);
    const title = unread > 0 ? `(${unread > 99 ? "99+" : unread}) chatd` : "chatd";
    if (document.title !== title) document.title = title;
    if (list.length === 0) {
      ul.replaceChildren(h("li", { class: "muted empty" },
        this.me.kind === "shop" ? "No customer has written yet." : "No conversations yet."));
      return;
    }
    ul.replaceChildren(...list.map((st) => {
      const c = st.conv;
      const peer = this.peer(c);
      const state = peer ? this.presenceOf(peer.id) : null;
      const last = c.last_message;
      const preview = last ? (last.deleted ? "Message deleted" : last.body) : "No messages yet";
      const unread = c.unread_count;
      const title = this.title(c);
      return h("li", {},
        h("button", {
          type: "button",
          class: `conv${c.id === this.activeId ? " active" : ""}`,
          "aria-current": c.id === this.activeId ? "true" : undefined,
          "data-conversation-id": c.id,
          onclick: () => void this.openConversation(c.id),
        },
          state ? h("span", { class: `dot ${state}`, "data-testid": "presence", "data-state": state }) : null,
          h("span", { class: "conv-text" },
            h("span", { class: "conv-title" }, title),
            h("span", { class: "conv-preview muted" },
              last && last.sender.id === this.me.id ? `You: ${preview}` : preview),
          ),
          h("span", { class: "conv-meta" },
            last ? timeEl(last.created_at, "muted") : null,
            state ? h("span", { class: "presence-word" }, presenceWord(state)) : null,
            unread ? h("span", { class: "badge", "data-testid": "unread" }, unread > 99 ? "99+" : String(unread),
              h("span", { class: "visually-hidden" }, " unread")) : null,
          ),
        ),
      );
    }));
  }

  private renderChat(): void {
    const chat = document.getElementById("chat");
    if (!chat) return;
    const st = this.activeId ? this.convs.get(this.activeId) : undefined;
    chat.classList.toggle("empty", !st);
    this.renderComposerState();
    this.renderChatHeader();
    this.renderMessages(true);
    this.renderTyping();
  }

  private renderChatHeader(): void {
    const el = document.getElementById("chat-header");
    if (!el) return;
    const st = this.activeId ? this.convs.get(this.activeId) : undefined;
    if (!st) {
      el.replaceChildren(h("p", { class: "muted" },
        this.me.kind === "shop" ? "Choose a customer conversation." : "Choose a conversation or start one."));
      return;
    }
    const c = st.conv;
    const peer = this.peer(c);
    const state = peer ? this.presenceOf(peer.id) : null;
    const others = c.members.filter((m) => m.id !== this.me.id);
    el.replaceChildren(
      h("button", { type: "button", class: "back ghost", "aria-label": "Back to conversations", onclick: () => {
        this.closeConversation();
        history.pushState(null, "", "/");
      } }, "←"),
      h("div", { class: "chat-title" },
        h("h2", { id: "chat-title" }, this.title(c)),
        h("span", { class: "muted small" },
          state ? h("span", { class: `dot ${state}` }) : null,
          state ? ` ${presenceWord(state)}` : "",
          st.observer ? `${state ? " · " : ""}viewing as support staff (not a member)` : ""),
      ),
      this.me.kind === "admin"
        ? h("div", { class: "admin-actions" }, ...others.map((m) => h("span", { class: "row" },
          h("button", { type: "button", class: "ghost small", "aria-label": `Ban ${m.display_name}`,
            onclick: () => void this.setBan(m.id, true) }, `Ban ${m.display_name}`),
          h("button", { type: "button", class: "ghost small", "aria-label": `Unban ${m.display_name}`,
            onclick: () => void this.setBan(m.id, false) }, "Unban"))))
        : "",
    );
  }

  private onScroll(): void {
    const box = byId("messages");
    if (box.scrollTop < 40) void this.loadOlder();
    this.updateJump();
  }

  private closeConversation(): void {
    this.activeId = null;
    this.editing = null;
    clearInterval(this.pollTimer);
    this.renderAll();
  }

  /** Follows the browser's back / forward between /c/<id> pages. */
  private readonly onPopState = () => {
    const id = conversationFromPath(location.pathname);
    if (id && id !== this.activeId) void this.openConversation(id, false);
    else if (!id && this.activeId) this.closeConversation();
  };

  private jumpToLatest(): void {
    const box = byId("messages");
    box.scrollTop = box.scrollHeight;
    this.updateJump();
    // On a phone focusing the composer would open the keyboard over what was just jumped to.
    if (!touchScreen()) byId<HTMLTextAreaElement>("composer").focus();
  }

  /** Shows "Jump to latest" when scrolled up, with the number of new messages below. */
  private updateJump(): void {
    const jump = document.getElementById("jump");
    if (!jump) return;
    const st = this.activeId ? this.convs.get(this.activeId) : undefined;
    const near = this.nearBottom();
    if (st && near) st.newBelow = 0;
    jump.hidden = !st || near;
    const n = st?.newBelow ?? 0;
    const text = n > 0 ? `${n} new message${n === 1 ? "" : "s"} ↓` : "Jump to latest ↓";
    if (jump.textContent !== text) jump.textContent = text;
    jump.classList.toggle("has-new", n > 0);
  }

  private renderMessages(stickToBottom: boolean): void {
    const box = document.getElementById("messages");
    if (!box) return;
    const st = this.activeId ? this.convs.get(this.activeId) : undefined;
    if (!st) {
      box.replaceChildren();
      this.updateJump();
      return;
    }
    const nearBottom = this.nearBottom();
    const keepFocus = document.activeElement instanceof HTMLElement && box.contains(document.activeElement)
      ? document.activeElement.dataset.focusKey : undefined;
    const msgs = this.sortedMessages(st);
    // The newest of my messages each other member has read: "Seen" goes there.
    let seenId: Id | null = null;
    for (const readId of st.peerRead.values()) {
      for (const m of msgs) {
        if (m.sender.id === this.me.id && compareIds(m.id, readId) <= 0 && (!seenId || compareIds(m.id, seenId) > 0)) {
          seenId = m.id;
        }
      }
    }
    const items: HTMLElement[] = [];
    items.push(st.hasMore
      ? h("button", { type: "button", class: "older ghost", "data-focus-key": "older", disabled: st.loadingOlder,
        onclick: () => void this.loadOlder() }, st.loadingOlder ? "Loading…" : "Load older messages")
      : h("p", { class: "muted start" }, "This is the beginning of the conversation."));
    let prev: Message | null = null;
    const now = Date.now();
    for (const m of msgs) {
      let grouped = prev !== null && prev.sender.id === m.sender.id && m.created_at - prev.created_at < GROUP_MS;
      if (!prev || dayKey(prev.created_at) !== dayKey(m.created_at)) {
        items.push(h("div", { class: "day-separator", role: "separator", "data-testid": "day-separator" },
          h("span", {}, dayLabel(m.created_at, now))));
        grouped = false;
      }
      if (m.id === st.unreadFrom) {
        items.push(h("div", { id: "new-divider", class: "new-divider", role: "separator", "data-testid": "new-divider" },
          h("span", {}, "New messages")));
        grouped = false;
      }
      items.push(this.messageItem(m, st, m.id === seenId, grouped));
      prev = m;
    }
    const known = new Set(msgs.filter((m) => m.sender.id === this.me.id).map((m) => m.client_msg_id));
    for (const p of this.pending.values()) {
      // Stored already (its ack was lost, then the history came): shown once, as the message.
      if (p.conversation_id !== st.conv.id || known.has(p.client_msg_id)) continue;
      const label = p.state === "failed" ? `Not sent: ${p.error ? describeError(p.error) : "failed"}`
        : p.state === "retrying" ? `Retrying${p.error ? ` (${p.error.code.replace("_", " ")})` : ""}…`
        : p.state === "queued" ? "Waiting for connection…" : "Sending…";
      items.push(h("article", { class: `msg mine pending ${p.state}`, "data-client-msg-id": p.client_msg_id },
        h("p", { class: "body" }, ...linkified(p.body)),
        h("footer", { class: "meta" }, h("span", {}, label),
          p.state === "failed"
            ? h("button", { type: "button", class: "link", onclick: () => this.retrySend(p) }, "Retry")
            : null,
          p.state === "failed" || p.state === "queued" || p.state === "retrying"
            ? h("button", { type: "button", class: "link", onclick: () => this.discardSend(p) }, "Discard")
            : null),
      ));
    }
    box.replaceChildren(...items);
    if (keepFocus) (box.querySelector(`[data-focus-key="${keepFocus}"]`) as HTMLElement | null)?.focus();
    if (stickToBottom || nearBottom) box.scrollTop = box.scrollHeight;
    this.updateJump();
    if (!st.observer) this.watchUnread(box);
  }

  private messageItem(m: Message, st: ConvState, seen: boolean, grouped: boolean): HTMLElement {
    const mine = m.sender.id === this.me.id;
    const admin = this.me.kind === "admin";
    const lastRead = st.conv.last_read_message_id;
    const unread = !mine && !st.observer && (!lastRead || compareIds(m.id, lastRead) > 0);
    const canEdit = mine && !m.deleted && !st.observer;
    const canDelete = (mine || admin) && !m.deleted;
    const author = mine ? "You" : this.name(m.sender.id);
    if (this.editing === m.id) {
      const id = `edit-${m.id}`;
      return h("article", { class: "msg mine editing", "data-message-id": m.id },
        h("form", { class: "edit", onsubmit: (ev: Event) => {
          ev.preventDefault();
          void this.editMessage(m, byId<HTMLTextAreaElement>(id).value);
        } },
          h("label", { for: id, class: "visually-hidden" }, "Edit message"),
          h("textarea", { id, rows: 2, "data-focus-key": id, onkeydown: (ev: Event) => {
            const k = ev as KeyboardEvent;
            if (k.key === "Escape") {
              this.editing = null;
              this.renderMessages(false);
            } else if (enterSends(k)) {
              k.preventDefault();
              void this.editMessage(m, (k.target as HTMLTextAreaElement).value);
            }
          } }, m.body),
          h("div", { class: "row" },
            h("button", { type: "submit" }, "Save"),
            h("button", { type: "button", class: "ghost", onclick: () => {
              this.editing = null;
              this.renderMessages(false);
            } }, "Cancel")),
        ));
    }
    return h("article", {
      class: `msg${mine ? " mine" : ""}${m.deleted ? " deleted" : ""}${grouped ? " grouped" : ""}`,
      "data-message-id": m.id,
      "data-unread": unread ? "" : undefined,
      "aria-label": `${author}: ${m.deleted ? "message deleted" : m.body}`,
    },
      mine || grouped ? null : h("header", { class: "author" }, author),
      m.deleted
        ? h("p", { class: "body tombstone" }, "This message was deleted.")
        : h("p", { class: "body" }, ...linkified(m.body)),
      h("footer", { class: "meta" },
        timeEl(m.created_at),
        m.edited_at && !m.deleted ? h("span", {}, " · edited") : null,
        mine && !m.deleted ? h("span", { class: "receipt", "data-testid": seen ? "seen" : "sent" },
          seen ? " · Seen" : " · Sent") : null,
        canEdit ? h("button", { type: "button", class: "link", "data-focus-key": `e${m.id}`,
          "aria-label": `Edit message: ${m.body}`, onclick: () => {
            this.editing = m.id;
            this.renderMessages(false);
            (document.getElementById(`edit-${m.id}`) as HTMLTextAreaElement | null)?.focus();
          } }, "Edit") : null,
        canDelete ? h("button", { type: "button", class: "link danger", "data-focus-key": `d${m.id}`,
          "aria-label": `Delete message: ${m.body}`, onclick: () => void this.deleteMessage(m) }, "Delete") : null,
      ),
    );
  }

  private renderTyping(): void {
    const el = document.getElementById("typing");
    if (!el) return;
    const st = this.activeId ? this.convs.get(this.activeId) : undefined;
    const now = Date.now();
    const who: string[] = [];
    if (st) {
      for (const [id, until] of st.typing) {
        if (until > now) who.push(this.name(id));
        else st.typing.delete(id);
      }
    }
    const text = who.length === 0 ? "" : who.length === 1 ? `${who[0]} is typing…` : `${who.join(", ")} are typing…`;
    if (el.textContent !== text) el.textContent = text;
  }

  private renderNotifications(): void {
    const ul = document.getElementById("notification-list");
    if (!ul) return;
    if (this.notifications.length === 0) {
      ul.replaceChildren(h("li", { class: "muted empty" }, "No notifications."));
      return;
    }
    ul.replaceChildren(...this.notifications.map((n) => h("li", {},
      h("button", { type: "button", class: "notif", "data-notification-id": n.id,
        onclick: () => void this.openConversation(n.conversation_id) },
        h("strong", {}, n.sender.display_name),
        n.count > 1 ? h("span", { class: "badge" }, `${n.count}`) : null,
        h("span", { class: "conv-preview" }, n.preview),
        timeEl(n.created_at, "muted small"),
      ))));
  }
}

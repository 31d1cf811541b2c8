// The chat app once logged in: builds the parts of the page (each in its own
// module, sharing the model through context.ts), follows the socket, the
// page's visibility and the browser's history, and opens conversations.

import { ChatApi, ChatSocket, watchPagePresence, type Id, type Message, type Participant } from "@chatd/client";

import { AdminTools } from "./admin.js";
import { Alerts } from "./alerts.js";
import { ConnectionBanner, Notices } from "./banner.js";
import { ChatView } from "./chat-view.js";
import { Composer } from "./composer.js";
import type { Ctx } from "./context.js";
import { byId, h } from "./dom.js";
import { Header } from "./header.js";
import { followSocket } from "./live.js";
import { MessageActions } from "./message-actions.js";
import { MessageKeys } from "./message-keys.js";
import { ChatModel, FIRST_PAGE } from "./model.js";
import { NotificationsPanel } from "./notifications.js";
import { Outbox } from "./outbox.js";
import { Reading } from "./reading.js";
import { Sidebar } from "./sidebar.js";
import { DeviceStore } from "./store.js";
import { describeError } from "./words.js";

/** The path of a conversation's page, and back. */
export function conversationPath(id: Id): string {
  return `/c/${encodeURIComponent(id)}`;
}

export function conversationFromPath(path: string): Id | null {
  const m = /^\/c\/(\d{1,20})\/?$/.exec(path);
  return m ? (m[1] as Id) : null;
}

export class ChatApp implements Ctx {
  readonly api: ChatApi;
  readonly socket: ChatSocket;
  readonly store: DeviceStore;
  readonly model: ChatModel;

  readonly notices = new Notices();
  readonly banner: ConnectionBanner = new ConnectionBanner(this);
  readonly header: Header = new Header(this);
  readonly sidebar: Sidebar = new Sidebar(this);
  readonly chat: ChatView = new ChatView(this);
  readonly actions: MessageActions = new MessageActions(this);
  readonly keys: MessageKeys = new MessageKeys(this);
  readonly reading: Reading = new Reading(this);
  readonly composer: Composer = new Composer(this);
  readonly outbox: Outbox = new Outbox(this);
  readonly admin: AdminTools = new AdminTools(this);
  readonly notifications: NotificationsPanel = new NotificationsPanel(this);
  readonly alerts: Alerts = new Alerts(this);

  private readonly root: HTMLElement;
  private readonly onLogout: (message?: string) => void;
  private typingTimer: ReturnType<typeof setInterval> | undefined;
  private stopPresence: (() => void) | undefined;

  constructor(root: HTMLElement, api: ChatApi, me: Participant, onLogout: (message?: string) => void) {
    this.root = root;
    this.api = api;
    this.onLogout = onLogout;
    this.store = new DeviceStore(me.id);
    this.model = new ChatModel(me);
    // A short cap: after a server restart the page is back within seconds.
    this.socket = new ChatSocket({ api, backoff: { baseMs: 500, maxMs: 5000 } });
  }

  start(): void {
    this.renderShell();
    followSocket(this, this.onLogout);
    this.outbox.restore();
    this.alerts.start();

    this.stopPresence = watchPagePresence(this.socket);
    // Reading happens when the page comes back to the front.
    document.addEventListener("visibilitychange", this.onVisibility);
    window.addEventListener("focus", this.onVisibility);
    window.addEventListener("online", this.onOnline);
    window.addEventListener("beforeunload", this.onBeforeUnload);
    window.addEventListener("popstate", this.onPopState);
    document.addEventListener("keydown", this.onKeyDown);
    this.typingTimer = setInterval(() => this.chat.renderTyping(), 1000);
    this.banner.start();
    this.socket.connect();
    // The list over HTTP too: the gateway may answer while the chat server does not.
    void this.api.listConversations(100).then((list) => {
      // Only what the ready frame did not bring: live state wins over this snapshot.
      for (const c of list) if (!this.model.convs.has(c.id)) this.model.upsertConversation(c);
      void this.header.loadPresence();
      this.sidebar.render();
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
    this.reading.stop();
    this.stopPresence?.();
    document.removeEventListener("visibilitychange", this.onVisibility);
    window.removeEventListener("focus", this.onVisibility);
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("beforeunload", this.onBeforeUnload);
    window.removeEventListener("popstate", this.onPopState);
    document.removeEventListener("keydown", this.onKeyDown);
    this.alerts.stop();
    document.title = "chatd";
    this.admin.unwatch();
    clearInterval(this.typingTimer);
    this.banner.stop();
  }

  private readonly onVisibility = () => {
    // Back in front while offline: try at once instead of waiting out the backoff.
    if (document.visibilityState === "visible" && this.model.status.status === "reconnecting") this.socket.reconnectNow();
    // Back in front: what is on screen now has been seen.
    this.reading.readOnScreen();
  };
  private readonly onOnline = () => this.socket.reconnectNow();
  private readonly onBeforeUnload = (ev: BeforeUnloadEvent) => {
    // Unsent messages are kept on this device, but leaving now delays them: ask.
    if (!this.outbox.hasUnsent) return;
    ev.preventDefault();
    ev.returnValue = "";
  };

  /** Escape closes an open panel (a message's menu and edit mode handle their own Escape first). */
  private readonly onKeyDown = (ev: KeyboardEvent) => {
    if (ev.key !== "Escape" || ev.defaultPrevented || !this.notifications.open) return;
    ev.preventDefault();
    void this.notifications.toggle();
    byId("notif-button").focus();
  };

  /** Follows the browser's back / forward between /c/<id> pages. */
  private readonly onPopState = () => {
    const id = conversationFromPath(location.pathname);
    if (id && id !== this.model.activeId) void this.openConversation(id, false);
    else if (!id && this.model.activeId) this.closeConversation();
  };

  async openConversation(id: Id, push = true): Promise<void> {
    const { model } = this;
    model.activeId = id;
    model.editing = null;
    this.notifications.open = false;
    this.admin.unwatch();
    if (push && location.pathname !== conversationPath(id)) history.pushState({ c: id }, "", conversationPath(id));
    let st = model.convs.get(id);
    if (!st) {
      try {
        const c = await this.api.getConversation(id);
        const observer = !c.members.some((m) => m.id === model.me.id);
        st = model.upsertConversation(c, observer);
        if (st.messages.size === 0) {
          const page = await this.api.history(id, { limit: FIRST_PAGE });
          for (const m of page.messages) st.messages.set(m.id, m);
          st.hasMore = page.has_more;
        }
      } catch (e) {
        if (model.activeId !== id) return;
        model.activeId = null;
        if (conversationFromPath(location.pathname) === id) history.replaceState(null, "", "/");
        this.notices.showError(describeError(e));
        this.renderAll();
        return;
      }
      if (model.activeId !== id) return; // another was opened meanwhile
    }
    st.unreadFrom = model.firstUnread(st);
    st.newBelow = 0;
    // Support staff watching from outside get no live frames: poll the newest page.
    if (st.observer) this.admin.watch(id);
    this.renderAll();
    // Start at the first unread message, else at the latest.
    const divider = document.getElementById("new-divider");
    if (divider) divider.scrollIntoView({ block: "start" });
    this.chat.updateJump();
    // Known from the list but none of its messages yet (offline start): the newest page.
    if (st.messages.size === 0 && st.hasMore) void this.chat.loadOlder();
    this.composer.showDraft(id);
    this.reading.readOnScreen();
  }

  closeConversation(): void {
    this.model.activeId = null;
    this.model.editing = null;
    this.admin.unwatch();
    this.renderAll();
  }

  addMessage(m: Message): void {
    if (!this.model.putMessage(m)) return;
    if (m.conversation_id === this.model.activeId) this.chat.render(m.sender.id === this.model.me.id);
    this.sidebar.render();
  }

  renderChat(): void {
    const chat = document.getElementById("chat");
    if (!chat) return;
    chat.classList.toggle("empty", !this.model.active);
    this.composer.renderState();
    this.header.render();
    this.chat.render(true);
    this.chat.renderTyping();
  }

  renderAll(): void {
    const open = this.notifications.open;
    byId("layout").classList.toggle("has-active", this.model.activeId !== null || open);
    byId("chat").hidden = open;
    byId("notifications").hidden = !open;
    byId("notif-button").setAttribute("aria-expanded", String(open));
    this.banner.render();
    this.sidebar.render();
    this.renderChat();
    this.notifications.render();
  }

  private renderShell(): void {
    this.root.replaceChildren(
      this.header.topBar(() => this.onLogout()),
      this.banner.element(),
      ...this.notices.elements(),
      this.alerts.announcer(),
      h("main", { id: "layout", class: "layout" },
        this.sidebar.element(),
        h("section", { id: "chat", class: "chat", "aria-label": "Chat" },
          this.header.chatHeader(),
          this.chat.element(),
          this.chat.typingElement(),
          this.composer.element(),
        ),
        this.notifications.element(),
      ),
    );
    this.renderAll();
  }
}

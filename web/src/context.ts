// What the parts of the page share: the services, the model, and each other.
// app.ts builds the parts and hands itself to each as this context; a part
// renders its own elements and asks the others through it.

import type { ChatApi, ChatSocket, Id, Message } from "@chatd/client";

import type { AdminTools } from "./admin.js";
import type { Alerts } from "./alerts.js";
import type { ConnectionBanner, Notices } from "./banner.js";
import type { ChatView } from "./chat-view.js";
import type { Composer } from "./composer.js";
import type { Header } from "./header.js";
import type { MessageActions } from "./message-actions.js";
import type { MessageKeys } from "./message-keys.js";
import type { ChatModel } from "./model.js";
import type { NotificationsPanel } from "./notifications.js";
import type { Outbox } from "./outbox.js";
import type { Reading } from "./reading.js";
import type { Sidebar } from "./sidebar.js";
import type { DeviceStore } from "./store.js";

export interface Ctx {
  readonly api: ChatApi;
  readonly socket: ChatSocket;
  readonly store: DeviceStore;
  readonly model: ChatModel;

  readonly notices: Notices;
  readonly banner: ConnectionBanner;
  readonly header: Header;
  readonly sidebar: Sidebar;
  readonly chat: ChatView;
  readonly actions: MessageActions;
  readonly keys: MessageKeys;
  readonly reading: Reading;
  readonly composer: Composer;
  readonly outbox: Outbox;
  readonly admin: AdminTools;
  readonly notifications: NotificationsPanel;
  readonly alerts: Alerts;

  /** Opens a conversation; `push` adds /c/<id> to the browser history (not when following it). */
  openConversation(id: Id, push?: boolean): Promise<void>;
  closeConversation(): void;
  /** Keeps a message and shows it (the list, and the chat if it is open). */
  addMessage(m: Message): void;
  /** The open conversation's pane: header, messages (scrolled down), typing line, composer. */
  renderChat(): void;
  renderAll(): void;
}

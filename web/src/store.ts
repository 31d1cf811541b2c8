// What the page keeps on this device (localStorage), so that nothing typed is
// lost to a reload, a crash or a closed tab: the session, the outbox (messages
// not acknowledged by the server yet, with their client_msg_id so that a
// resend is deduplicated) and each conversation's draft; and the person's
// choice of alerts (desktop notifications, sound).

import type { Id, Participant } from "@chatd/client";

export interface Session {
  token: string;
  me: Participant;
}

export interface OutboxItem {
  client_msg_id: string;
  conversation_id: Id;
  body: string;
  created_at: number;
  /** Set when the server refused it for good; such an item waits for Retry or Discard. */
  failed?: { code: string; message: string };
}

/** How the person wants to hear of messages that arrive while the page is hidden. */
export interface AlertPrefs {
  desktop: boolean;
  sound: boolean;
}

const SESSION_KEY = "chatd.session";

function read<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(key);
    return raw ? (JSON.parse(raw) as T) : fallback;
  } catch {
    return fallback;
  }
}

function write(key: string, value: unknown): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: the page still works, only without keeping it.
  }
}

export function loadSession(): Session | null {
  const s = read<Session | null>(SESSION_KEY, null);
  return s && typeof s.token === "string" && s.me && typeof s.me.id === "string" ? s : null;
}

export function saveSession(s: Session | null): void {
  write(SESSION_KEY, s);
}

export function isSessionKey(key: string | null): boolean {
  return key === null || key === SESSION_KEY;
}

/** One participant's outbox, drafts and alert choices (a shared computer may have several). */
export class DeviceStore {
  private readonly outboxKey: string;
  private readonly draftsKey: string;
  private readonly alertsKey: string;

  constructor(owner: Id) {
    this.outboxKey = `chatd.outbox.${owner}`;
    this.draftsKey = `chatd.drafts.${owner}`;
    this.alertsKey = `chatd.alerts.${owner}`;
  }

  /** Both off until the person turns them on. Read afresh: another tab may have changed them. */
  alerts(): AlertPrefs {
    const v = read<Partial<AlertPrefs> | null>(this.alertsKey, null);
    return { desktop: v?.desktop === true, sound: v?.sound === true };
  }

  setAlerts(prefs: AlertPrefs): void {
    write(this.alertsKey, prefs.desktop || prefs.sound ? { desktop: prefs.desktop, sound: prefs.sound } : null);
  }

  /** Oldest first. Read afresh each time: another tab may have changed it. */
  outbox(): OutboxItem[] {
    const list = read<OutboxItem[]>(this.outboxKey, []);
    return Array.isArray(list) ? list.filter((i) => i && typeof i.client_msg_id === "string") : [];
  }

  putOutbox(item: OutboxItem): void {
    const list = this.outbox().filter((i) => i.client_msg_id !== item.client_msg_id);
    list.push(item);
    list.sort((a, b) => a.created_at - b.created_at);
    write(this.outboxKey, list);
  }

  updateOutbox(clientMsgId: string, change: (i: OutboxItem) => OutboxItem): void {
    const list = this.outbox();
    const i = list.findIndex((x) => x.client_msg_id === clientMsgId);
    if (i < 0) return;
    list[i] = change(list[i] as OutboxItem);
    write(this.outboxKey, list);
  }

  removeOutbox(clientMsgId: string): void {
    const list = this.outbox();
    const left = list.filter((i) => i.client_msg_id !== clientMsgId);
    if (left.length !== list.length) write(this.outboxKey, left.length ? left : null);
  }

  draft(conversationId: Id): string {
    return read<Record<string, string>>(this.draftsKey, {})[conversationId] ?? "";
  }

  setDraft(conversationId: Id, text: string): void {
    const all = read<Record<string, string>>(this.draftsKey, {});
    if (text) all[conversationId] = text;
    else delete all[conversationId];
    write(this.draftsKey, Object.keys(all).length ? all : null);
  }
}

// What the page knows: the conversations with their loaded messages, the
// people in them and their presence, the sends not acknowledged yet, which
// conversation is open, and the connection's state. No DOM here: the parts of
// the page (context.ts) read it and render it.

import {
  compareIds,
  type Conversation,
  type Id,
  type Message,
  type Participant,
  type ParticipantRef,
  type PresenceState,
  type SendStateEvent,
  type StatusEvent,
} from "@chatd/client";

import { closedReason } from "./words.js";

/** A page of history when scrolling back. */
export const PAGE = 30;
/** The first page of a conversation opened before the ready frame brought it (as many as ready has). */
export const FIRST_PAGE = 20;

export interface ConvState {
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

export class ChatModel {
  readonly me: Participant;
  readonly convs = new Map<Id, ConvState>();
  readonly people = new Map<Id, ParticipantRef>();
  readonly presence = new Map<Id, PresenceState>();
  /** Sends not acknowledged yet (or refused), by client_msg_id. */
  readonly pending = new Map<string, SendStateEvent>();
  activeId: Id | null = null;
  status: StatusEvent = { status: "connecting", attempt: 0 };
  /** The message of mine being edited. */
  editing: Id | null = null;

  constructor(me: Participant) {
    this.me = me;
    this.people.set(me.id, me);
  }

  /** The open conversation, once it is known. */
  get active(): ConvState | undefined {
    return this.activeId ? this.convs.get(this.activeId) : undefined;
  }

  /** Nothing can be sent (blocked), as opposed to merely offline (sends wait in the outbox). */
  get sendingBlocked(): boolean {
    return this.status.status === "closed" && closedReason(this.status.error).blocked;
  }

  upsertConversation(c: Conversation, observer = false): ConvState {
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
    // What the server keeps ("Seen" after a reload); live read frames only move it forward.
    for (const r of c.read_states ?? []) {
      const prev = st.peerRead.get(r.participant_id);
      if (!prev || compareIds(r.message_id, prev) > 0) st.peerRead.set(r.participant_id, r.message_id);
    }
    return st;
  }

  /** Keeps a message of a known conversation and moves its last message and activity time. */
  putMessage(m: Message): ConvState | undefined {
    const st = this.convs.get(m.conversation_id);
    if (!st) return undefined;
    st.messages.set(m.id, m);
    if (!st.conv.last_message || compareIds(m.id, st.conv.last_message.id) >= 0) {
      st.conv.last_message = m;
      st.conv.updated_at = Math.max(st.conv.updated_at, m.created_at);
    }
    return st;
  }

  sortedMessages(st: ConvState): Message[] {
    return [...st.messages.values()].sort((a, b) => compareIds(a.id, b.id));
  }

  /** The oldest loaded message from someone else that is unread. */
  firstUnread(st: ConvState): Id | null {
    const others = this.sortedMessages(st).filter((m) => m.sender.id !== this.me.id && !m.deleted);
    const last = st.conv.last_read_message_id;
    if (last) return others.find((m) => compareIds(m.id, last) > 0)?.id ?? null;
    if (st.conv.unread_count > 0) return others.at(-Math.min(st.conv.unread_count, others.length))?.id ?? null;
    return null;
  }

  title(c: Conversation): string {
    if (c.title) return c.title;
    const others = c.members.filter((m) => m.id !== this.me.id);
    if (others.length === 0) return "Just you";
    return others.map((m) => m.display_name).join(", ");
  }

  /** The other person of a direct conversation of mine (support staff looking in from outside have none). */
  peer(c: Conversation): ParticipantRef | undefined {
    if (c.kind !== "direct" || !c.members.some((m) => m.id === this.me.id)) return undefined;
    return c.members.find((m) => m.id !== this.me.id);
  }

  name(id: Id): string {
    if (id === this.me.id) return "You";
    return this.people.get(id)?.display_name ?? "Someone";
  }

  /** A participant's presence as far as we know: "unknown" while our own connection is down. */
  presenceOf(id: Id): PresenceState | "unknown" {
    if (this.status.status !== "open") return "unknown";
    return this.presence.get(id) ?? "unknown"; // not asked yet, or the answer did not come
  }
}

// The socket's events, applied to the model and shown by the parts: the
// connection's status, the ready frame, live messages (with unread counting
// that does not count a since= replay twice), edits and deletes, read
// markers, typing, presence and the state of my sends.

import { compareIds, type Message } from "@chatd/client";

import type { Ctx } from "./context.js";
import { describeError } from "./words.js";

/** How long "… is typing" stays after a typing frame. */
const TYPING_SHOWN_MS = 4000;

export function followSocket(ctx: Ctx, onLogout: (message?: string) => void): void {
  const { socket: s, model } = ctx;
  s.on("status", (st) => {
    const wasOpen = model.status.status === "open";
    model.status = st;
    ctx.banner.update(st);
    ctx.composer.renderState();
    // While our own connection is down, nobody's presence is known.
    if (wasOpen !== (st.status === "open")) {
      ctx.sidebar.render();
      ctx.header.render();
    }
  });
  s.on("error", (e) => {
    if (e.code === "unauthorized") {
      onLogout(describeError(e));
      return;
    }
    // A ban: the banner says it (status "closed" with the error).
    if (e.code === "forbidden" && s.status !== "open") return;
    ctx.notices.showError(describeError(e));
  });
  s.on("ready", (r) => {
    for (const c of r.conversations) {
      const known = (model.convs.get(c.id)?.messages.size ?? 0) > 0;
      const st = model.upsertConversation(c);
      for (const m of c.messages) st.messages.set(m.id, m);
      // The ready frame has the newest 20; older pages come from history.
      if (!known) st.hasMore = c.messages.length >= 20;
    }
    // Presence learnt before the connection dropped may be stale: ask again.
    model.presence.clear();
    void ctx.header.loadPresence();
    ctx.sidebar.render();
    // Not renderChat(): a reconnect must not scroll a reader who scrolled up.
    ctx.composer.renderState();
    ctx.header.render();
    ctx.chat.render(false);
  });
  s.on("message", (m) => onMessage(ctx, m));
  s.on("message_updated", (m) => {
    const st = model.convs.get(m.conversation_id);
    if (!st) return;
    st.messages.set(m.id, m);
    if (st.conv.last_message?.id === m.id) st.conv.last_message = m;
    if (model.editing === m.id && m.deleted) model.editing = null;
    ctx.sidebar.render();
    if (m.conversation_id === model.activeId) ctx.chat.render(false);
  });
  s.on("read", (r) => {
    const st = model.convs.get(r.conversation_id);
    if (!st) return;
    if (r.participant_id === model.me.id) {
      st.conv.unread_count = 0; // read on another device
      ctx.sidebar.render();
      return;
    }
    const prev = st.peerRead.get(r.participant_id);
    if (!prev || compareIds(r.message_id, prev) > 0) st.peerRead.set(r.participant_id, r.message_id);
    if (r.conversation_id === model.activeId) ctx.chat.render(false);
  });
  s.on("typing", (t) => {
    const st = model.convs.get(t.conversation_id);
    if (!st || t.participant_id === model.me.id) return;
    st.typing.set(t.participant_id, Date.now() + TYPING_SHOWN_MS);
    if (t.conversation_id === model.activeId) ctx.chat.renderTyping();
  });
  s.on("presence", (p) => {
    model.presence.set(p.participant_id, p.state);
    ctx.sidebar.render();
    ctx.header.render();
  });
  s.on("send_state", (e) => ctx.outbox.onSendState(e));
}

function onMessage(ctx: Ctx, m: Message): void {
  const { model, api } = ctx;
  const st = model.convs.get(m.conversation_id);
  if (!st) {
    // A conversation someone just started with us: fetch it.
    void api.getConversation(m.conversation_id).then((c) => {
      // The conversation may have been read before the message was stored:
      // count it unless the answer already includes it.
      const counted = c.last_message !== null && compareIds(c.last_message.id, m.id) >= 0;
      const s2 = model.upsertConversation(c);
      if (!counted && m.sender.id !== model.me.id) s2.conv.unread_count += 1;
      ctx.addMessage(m);
      ctx.alerts.incoming(m);
      void ctx.header.loadPresence();
    }).catch(() => {});
    return;
  }
  const mine = m.sender.id === model.me.id;
  const active = m.conversation_id === model.activeId;
  const atBottom = active && ctx.chat.nearBottom();
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
  ctx.addMessage(m);
  ctx.sidebar.render();
  // Said out loud (and, while the page is hidden, notified) once: not for a replay.
  if (!mine && (!last || compareIds(m.id, last.id) > 0)) ctx.alerts.incoming(m);
}

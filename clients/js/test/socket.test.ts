import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { ChatError } from "../src/errors.js";
import { ChatSocket, type SendStateEvent, type StatusEvent } from "../src/socket.js";
import { FakeWebSocket } from "./fake_ws.js";
import { apiWithDiscovery, flush, json, msg, ready } from "./helpers.js";

const backoff = { baseMs: 1000, maxMs: 8000, random: () => 0 }; // delays 500, 1000, 2000, ...

function make(opts: Partial<ConstructorParameters<typeof ChatSocket>[0]> = {}) {
  const { api, fetch } = apiWithDiscovery();
  const socket = new ChatSocket({ api, WebSocket: FakeWebSocket, backoff, heartbeatMs: 0, ...opts });
  const statuses: StatusEvent[] = [];
  socket.on("status", (s) => statuses.push(s));
  return { socket, api, fetch, statuses };
}

/** Connects and plays the server up to `ready`. */
async function connected(opts: Partial<ConstructorParameters<typeof ChatSocket>[0]> = {}, history = [msg("10")]) {
  const t = make(opts);
  t.socket.connect();
  await flush();
  const ws = FakeWebSocket.last();
  ws.open();
  ws.receive(ready(history));
  return { ...t, ws };
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeWebSocket.reset();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("connect", () => {
  it("discovers the chat server and puts the token (not since) in the URL", async () => {
    const { socket, fetch, statuses } = make();
    socket.connect();
    expect(socket.status).toBe("connecting");
    await flush();
    expect(fetch.mock.calls[0]![0]).toBe("http://gw.test/v1/discovery");
    const ws = FakeWebSocket.last();
    const url = new URL(ws.url);
    expect(url.origin + url.pathname).toBe("ws://chat.test:9000/v1/ws");
    expect(url.searchParams.get("access_token")).toBe("tok");
    expect(url.searchParams.has("since")).toBe(false);
    ws.open();
    const readies: unknown[] = [];
    socket.on("ready", (r) => readies.push(r));
    ws.receive(ready([msg("12"), msg("11")]));
    expect(socket.status).toBe("open");
    expect(readies).toHaveLength(1);
    expect(socket.lastMessageId).toBe("12");
    expect(statuses.map((s) => s.status)).toEqual(["connecting", "open"]);
  });

  it("reconnects with exponential backoff and recovers with since=", async () => {
    const { socket, ws, statuses } = await connected();
    const got: string[] = [];
    socket.on("message", (m) => got.push(m.id));
    ws.receive({ type: "message", message: msg("15") });
    expect(socket.lastMessageId).toBe("15");

    ws.serverClose(1006);
    expect(socket.status).toBe("reconnecting");
    expect(statuses.at(-1)).toMatchObject({ status: "reconnecting", attempt: 1, retryInMs: 500 });

    // The server is still down: the next wait doubles.
    await vi.advanceTimersByTimeAsync(499);
    expect(FakeWebSocket.instances).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await flush();
    expect(FakeWebSocket.instances).toHaveLength(2);
    FakeWebSocket.last().serverClose(1006);
    expect(statuses.at(-1)).toMatchObject({ status: "reconnecting", attempt: 2, retryInMs: 1000 });
    await vi.advanceTimersByTimeAsync(1000);
    await flush();

    const ws3 = FakeWebSocket.last();
    expect(FakeWebSocket.instances).toHaveLength(3);
    expect(new URL(ws3.url).searchParams.get("since")).toBe("15");
    ws3.open();
    ws3.receive(ready([msg("16"), msg("15")]));
    // The replay after ready: 15 and 16 were in the ready frame, 17 is new; a duplicate is dropped.
    ws3.receive({ type: "message", message: msg("16") });
    ws3.receive({ type: "message", message: msg("17") });
    ws3.receive({ type: "message", message: msg("17") });
    expect(got).toEqual(["15", "17"]);
    expect(socket.lastMessageId).toBe("17");
    // A successful ready resets the backoff.
    ws3.serverClose(1001);
    expect(statuses.at(-1)).toMatchObject({ attempt: 1, retryInMs: 500 });
  });

  it("does not move since past a gap when the ready frame is newer than the replay", async () => {
    const { socket, ws } = await connected({}, [msg("20")]);
    ws.serverClose();
    await vi.advanceTimersByTimeAsync(500);
    await flush();
    const ws2 = FakeWebSocket.last();
    ws2.open();
    ws2.receive(ready([msg("90")])); // newest 20 only; 21..89 are coming as the replay
    expect(socket.lastMessageId).toBe("20");
    ws2.serverClose(); // dropped before the replay came
    await vi.advanceTimersByTimeAsync(500);
    await flush();
    expect(new URL(FakeWebSocket.last().url).searchParams.get("since")).toBe("20");
  });

  it("stops and reports when discovery says the token is bad", async () => {
    const { api } = apiWithDiscovery(() => json(401, { error: { code: "unauthorized", message: "expired" } }));
    const socket = new ChatSocket({ api, WebSocket: FakeWebSocket, backoff, heartbeatMs: 0 });
    const errors: ChatError[] = [];
    socket.on("error", (e) => errors.push(e));
    socket.connect();
    await flush();
    await vi.advanceTimersByTimeAsync(60000);
    expect(FakeWebSocket.instances).toHaveLength(0);
    expect(socket.status).toBe("closed");
    expect(errors.map((e) => e.code)).toEqual(["unauthorized"]);
  });

  it("retries discovery when the gateway is down, then falls back to the last known server", async () => {
    let up = true;
    const { api, fetch } = apiWithDiscovery(() => {
      if (!up) throw new TypeError("Failed to fetch");
      return json(200, { servers: [{ id: "a", url: "ws://a:1/v1/ws", region: "x", distance_km: null, load: 0 }] });
    });
    const socket = new ChatSocket({ api, WebSocket: FakeWebSocket, backoff, heartbeatMs: 0 });
    socket.connect();
    await flush();
    FakeWebSocket.last().open();
    FakeWebSocket.last().receive(ready());
    up = false;
    FakeWebSocket.last().serverClose();
    await vi.advanceTimersByTimeAsync(500);
    await flush();
    expect(fetch).toHaveBeenCalledTimes(2);
    expect(FakeWebSocket.instances).toHaveLength(2);
    expect(FakeWebSocket.last().url.startsWith("ws://a:1/v1/ws")).toBe(true);
  });

  it("a missed heartbeat drops the connection and reconnects", async () => {
    const { socket, ws } = await connected({ heartbeatMs: 1000 });
    await vi.advanceTimersByTimeAsync(1000);
    const ping = ws.frames("ping")[0]!;
    ws.receive({ type: "pong", id: ping.id });
    await vi.advanceTimersByTimeAsync(1000);
    expect(ws.frames("ping")).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1000); // the second ping got no pong
    expect(ws.closedWith?.code).toBe(4000);
    expect(socket.status).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(500);
    await flush();
    expect(FakeWebSocket.instances).toHaveLength(2);
  });

  it("a token that expired (4001) stops reconnecting and reports unauthorized", async () => {
    const { socket, ws, statuses } = await connected();
    const errors: ChatError[] = [];
    socket.on("error", (e) => errors.push(e));
    ws.serverClose(4001, "token expired");
    expect(socket.status).toBe("closed");
    expect(statuses.at(-1)).toMatchObject({ status: "closed", error: { code: "unauthorized" } });
    expect(errors.map((e) => e.code)).toEqual(["unauthorized"]);
    await vi.advanceTimersByTimeAsync(60000);
    expect(FakeWebSocket.instances).toHaveLength(1);
    // After a new login the app connects again.
    socket.connect();
    await flush();
    expect(FakeWebSocket.instances).toHaveLength(2);
  });

  it("reconnectNow() skips the wait and restarts an attempt that hangs", async () => {
    const { socket, ws } = await connected();
    ws.serverClose(1006);
    expect(socket.status).toBe("reconnecting");
    // The browser says it is online again: no waiting for the backoff.
    socket.reconnectNow();
    await flush();
    expect(FakeWebSocket.instances).toHaveLength(2);
    const hanging = FakeWebSocket.last(); // never opens
    socket.reconnectNow();
    await flush();
    expect(hanging.closedWith?.code).toBe(1000);
    expect(FakeWebSocket.instances).toHaveLength(3);
    // The dropped attempt's late events change nothing.
    hanging.serverClose(1006);
    expect(socket.status).toBe("reconnecting");
    FakeWebSocket.last().open();
    FakeWebSocket.last().receive(ready());
    expect(socket.status).toBe("open");
    socket.reconnectNow(); // connected: nothing to do
    await flush();
    expect(FakeWebSocket.instances).toHaveLength(3);
  });

  it("the default backoff is capped at 10 s", async () => {
    const { api } = apiWithDiscovery(() => {
      throw new TypeError("Failed to fetch");
    });
    const socket = new ChatSocket({ api, WebSocket: FakeWebSocket, heartbeatMs: 0 });
    const waits: number[] = [];
    socket.on("status", (s) => {
      if (s.retryInMs !== undefined) waits.push(s.retryInMs);
    });
    socket.connect();
    await flush();
    await vi.advanceTimersByTimeAsync(120000);
    expect(waits.length).toBeGreaterThan(8);
    expect(Math.max(...waits)).toBeLessThanOrEqual(10000);
    expect(Math.max(...waits.slice(6))).toBeGreaterThanOrEqual(5000);
    socket.close();
  });

  it("close() stops for good", async () => {
    const { socket, ws } = await connected();
    socket.close();
    expect(ws.closedWith?.code).toBe(1000);
    await vi.advanceTimersByTimeAsync(60000);
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(socket.status).toBe("closed");
  });
});

describe("send", () => {
  it("sends with a client_msg_id and resolves on the ack", async () => {
    const { socket, ws } = await connected();
    const states: SendStateEvent[] = [];
    socket.on("send_state", (s) => states.push(s));
    const p = socket.send("100", "hello", "cm-1");
    const f = ws.frames("send")[0]!;
    expect(f).toMatchObject({ conversation_id: "100", client_msg_id: "cm-1", body: "hello" });
    expect(typeof f.id).toBe("string");
    ws.receive({ type: "ack", id: f.id, message: msg("30", "100", { client_msg_id: "cm-1", body: "hello" }) });
    await expect(p).resolves.toMatchObject({ id: "30", body: "hello" });
    expect(states.map((s) => s.state)).toEqual(["sending", "sending", "sent"]);
    expect(socket.pendingSends()).toEqual([]);
    expect(socket.lastMessageId).toBe("30");
  });

  it("queues while offline and sends after ready; resends unacked ones after a reconnect with the same id", async () => {
    const { socket, ws } = await connected();
    const p = socket.send("100", "one", "cm-1");
    ws.serverClose(1006);
    const q = socket.send("100", "two", "cm-2");
    expect(socket.pendingSends().map((s) => s.client_msg_id)).toEqual(["cm-1", "cm-2"]);
    await vi.advanceTimersByTimeAsync(500);
    await flush();
    const ws2 = FakeWebSocket.last();
    ws2.open();
    expect(ws2.sent).toEqual([]); // nothing before ready
    ws2.receive(ready());
    const sends = ws2.frames("send");
    expect(sends.map((s) => s.client_msg_id)).toEqual(["cm-1", "cm-2"]);
    ws2.receive({ type: "ack", id: sends[1]!.id, message: msg("41") });
    ws2.receive({ type: "ack", id: sends[0]!.id, message: msg("40") });
    await expect(p).resolves.toMatchObject({ id: "40" });
    await expect(q).resolves.toMatchObject({ id: "41" });
  });

  it("resends with the same client_msg_id when the ack does not come", async () => {
    const { socket, ws } = await connected({ ackTimeoutMs: 2000 });
    const p = socket.send("100", "hi", "cm-9");
    await vi.advanceTimersByTimeAsync(2000);
    const sends = ws.frames("send");
    expect(sends).toHaveLength(2);
    expect(sends[1]!.client_msg_id).toBe("cm-9");
    expect(sends[1]!.id).not.toBe(sends[0]!.id);
    // The late answer to the first attempt is ignored; the second is the one.
    ws.receive({ type: "ack", id: sends[0]!.id, message: msg("50") });
    ws.receive({ type: "ack", id: sends[1]!.id, message: msg("50") });
    await expect(p).resolves.toMatchObject({ id: "50" });
  });

  it("retries rate_limited with backoff and fails at once on too_large", async () => {
    const { socket, ws } = await connected();
    const states: SendStateEvent[] = [];
    socket.on("send_state", (s) => states.push(s));
    const p = socket.send("100", "hi", "cm-r");
    ws.receive({ type: "error", id: ws.frames("send")[0]!.id, code: "rate_limited", message: "slow down" });
    expect(states.at(-1)).toMatchObject({ state: "retrying", error: { code: "rate_limited" } });
    await vi.advanceTimersByTimeAsync(499);
    expect(ws.frames("send")).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(ws.frames("send")).toHaveLength(2);
    ws.receive({ type: "ack", id: ws.frames("send")[1]!.id, message: msg("60") });
    await expect(p).resolves.toMatchObject({ id: "60" });

    const big = socket.send("100", "x".repeat(5000), "cm-big");
    ws.receive({ type: "error", id: ws.frames("send")[2]!.id, code: "too_large", message: "too long" });
    await expect(big).rejects.toMatchObject({ code: "too_large" });
    expect(states.at(-1)).toMatchObject({ state: "failed", client_msg_id: "cm-big" });
    expect(socket.pendingSends()).toEqual([]);
  });

  it("gives up after maxSendAttempts retryable failures", async () => {
    const { socket, ws } = await connected({ maxSendAttempts: 2 });
    const p = socket.send("100", "hi", "cm-x");
    const caught = p.catch((e: unknown) => e);
    ws.receive({ type: "error", id: ws.frames("send")[0]!.id, code: "unavailable", message: "queue down" });
    await vi.advanceTimersByTimeAsync(500);
    ws.receive({ type: "error", id: ws.frames("send")[1]!.id, code: "unavailable", message: "queue down" });
    expect(await caught).toMatchObject({ code: "unavailable" });
  });
});

describe("requests", () => {
  it("matches answers by id and rejects error answers with their code", async () => {
    const { socket, ws } = await connected();
    const h = socket.history("100", { before: "10", limit: 2 });
    const r = socket.markRead("100", "10");
    const [hf] = ws.frames("history");
    const [rf] = ws.frames("read");
    expect(hf).toMatchObject({ conversation_id: "100", before: "10", limit: 2 });
    ws.receive({ type: "ok", id: rf!.id });
    ws.receive({ type: "history", id: hf!.id, conversation_id: "100", messages: [msg("9"), msg("8")], has_more: true });
    await expect(h).resolves.toEqual({ messages: [msg("9"), msg("8")], has_more: true });
    await expect(r).resolves.toBeUndefined();

    const e = socket.edit("9", "changed");
    ws.receive({ type: "error", id: ws.frames("edit")[0]!.id, code: "forbidden", message: "not yours" });
    await expect(e).rejects.toMatchObject({ code: "forbidden", message: "not yours" });

    const d = socket.delete("9");
    ws.receive({ type: "ack", id: ws.frames("delete")[0]!.id, message: msg("9", "100", { deleted: true, body: "" }) });
    await expect(d).resolves.toMatchObject({ deleted: true });
  });

  it("refresh() hands the connection a new token and keeps it for the next connection", async () => {
    const { socket, ws, api } = await connected();
    const r = socket.refresh("tok2");
    const [f] = ws.frames("refresh");
    expect(f).toMatchObject({ access_token: "tok2" });
    expect(api.token).toBe("tok");
    ws.receive({ type: "ok", id: f!.id });
    await expect(r).resolves.toBeUndefined();
    expect(api.token).toBe("tok2");
    ws.serverClose(1006);
    await vi.advanceTimersByTimeAsync(500);
    await flush();
    expect(new URL(FakeWebSocket.last().url).searchParams.get("access_token")).toBe("tok2");

    // A refused token is not kept.
    FakeWebSocket.last().open();
    FakeWebSocket.last().receive(ready([]));
    const bad = socket.refresh("stranger");
    const ws2 = FakeWebSocket.last();
    ws2.receive({ type: "error", id: ws2.frames("refresh")[0]!.id, code: "forbidden", message: "not yours" });
    await expect(bad).rejects.toMatchObject({ code: "forbidden" });
    expect(api.token).toBe("tok2");
  });

  it("rejects waiting requests as offline when the connection drops, and at once while offline", async () => {
    const { socket, ws } = await connected();
    const h = socket.history("100");
    ws.serverClose();
    await expect(h).rejects.toMatchObject({ code: "offline" });
    await expect(socket.ping()).rejects.toMatchObject({ code: "offline" });
  });

  it("times out a request that gets no answer", async () => {
    const { socket } = await connected({ requestTimeoutMs: 1000 });
    const h = socket.history("100").catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await h).toMatchObject({ code: "timeout" });
  });

  it("emits unsolicited errors and live frames", async () => {
    const { socket, ws } = await connected();
    const seen: string[] = [];
    socket.on("error", (e) => seen.push(`error:${e.code}`));
    socket.on("typing", (t) => seen.push(`typing:${t.participant_id}`));
    socket.on("read", (t) => seen.push(`read:${t.message_id}`));
    socket.on("presence", (p) => seen.push(`presence:${p.state}`));
    socket.on("message_updated", (m) => seen.push(`updated:${m.id}:${m.deleted}`));
    ws.receive({ type: "error", id: null, code: "bad_request", message: "?" });
    ws.receive({ type: "typing", conversation_id: "100", participant_id: "8" });
    ws.receive({ type: "read", conversation_id: "100", participant_id: "8", message_id: "10" });
    ws.receive({ type: "presence", participant_id: "8", state: "inactive", last_seen_at: 5 });
    ws.receive({ type: "message_updated", message: msg("10", "100", { deleted: true, body: "" }) });
    ws.onmessage?.({ data: "not json" });
    expect(seen).toEqual(["error:bad_request", "typing:8", "read:10", "presence:inactive", "updated:10:true"]);
  });
});

describe("typing and presence", () => {
  it("throttles typing per conversation", async () => {
    const { socket, ws } = await connected({ typingThrottleMs: 3000 });
    vi.setSystemTime(new Date(1_000_000));
    expect(socket.typing("100")).toBe(true);
    expect(socket.typing("100")).toBe(false);
    expect(socket.typing("200")).toBe(true);
    vi.setSystemTime(new Date(1_003_000));
    expect(socket.typing("100")).toBe(true);
    expect(ws.frames("typing").map((f) => f.conversation_id)).toEqual(["100", "200", "100"]);
  });

  it("sends presence changes and restores inactive after a reconnect", async () => {
    const { socket, ws } = await connected();
    socket.setPresence("active"); // unchanged: nothing sent
    socket.setPresence("inactive");
    socket.setPresence("inactive");
    expect(ws.frames("presence").map((f) => f.state)).toEqual(["inactive"]);
    ws.serverClose();
    await vi.advanceTimersByTimeAsync(500);
    await flush();
    const ws2 = FakeWebSocket.last();
    ws2.open();
    ws2.receive(ready());
    expect(ws2.frames("presence").map((f) => f.state)).toEqual(["inactive"]);
    socket.setPresence("active");
    expect(ws2.frames("presence").map((f) => f.state)).toEqual(["inactive", "active"]);
  });
});

import { describe, expect, it, vi } from "vitest";

import { backoffDelay } from "../src/backoff.js";
import { ChatError } from "../src/errors.js";
import { ChatApi } from "../src/http.js";
import { compareIds, maxId, newClientMsgId } from "../src/ids.js";
import { pagePresence, watchPagePresence } from "../src/presence.js";
import { json } from "./helpers.js";

describe("backoffDelay", () => {
  it("grows exponentially, is capped, and jitters within the upper half", () => {
    const lo = (n: number) => backoffDelay(n, { baseMs: 100, maxMs: 1000, random: () => 0 });
    const hi = (n: number) => backoffDelay(n, { baseMs: 100, maxMs: 1000, random: () => 0.999999 });
    expect([0, 1, 2, 3].map(lo)).toEqual([50, 100, 200, 400]);
    expect([0, 1, 2, 3].map(hi)).toEqual([100, 200, 400, 800]);
    expect(lo(10)).toBe(500);
    expect(hi(10)).toBe(1000);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(2, { baseMs: 100, maxMs: 1000 });
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(400);
    }
  });
});

describe("ids", () => {
  it("compares 64-bit decimal ids numerically, beyond Number precision", () => {
    expect(compareIds("9", "10")).toBe(-1);
    expect(compareIds("7399999999999999999", "7400000000000000000")).toBe(-1);
    expect(compareIds("7400000000000000001", "7400000000000000000")).toBe(1);
    expect(compareIds("5", "5")).toBe(0);
    expect(maxId(null, "3")).toBe("3");
    expect(maxId("12", "9")).toBe("12");
  });
  it("makes distinct client_msg_ids", () => {
    expect(newClientMsgId()).not.toBe(newClientMsgId());
  });
});

describe("ChatApi", () => {
  it("logs in, keeps the token and sends it as a bearer header", async () => {
    const fetch = vi.fn(async (url: string, init?: RequestInit) => {
      if (url.endsWith("/v1/auth/login")) {
        expect(JSON.parse(String(init?.body))).toEqual({ kind: "shop", username: "hats", password: "password123" });
        return json(200, { access_token: "T", token_type: "Bearer", expires_in: 60, participant: { id: "1" } });
      }
      return json(200, { conversations: [] });
    });
    const api = new ChatApi({ baseUrl: "http://gw/", fetch });
    await api.login("shop", "hats", "password123");
    expect(api.token).toBe("T");
    await api.listConversations(5);
    const [url, init] = fetch.mock.calls[1]!;
    expect(url).toBe("http://gw/v1/conversations?limit=5");
    expect((init?.headers as Record<string, string>).Authorization).toBe("Bearer T");
  });

  it("maps the contract's error body to ChatError with code and status", async () => {
    const api = new ChatApi({
      fetch: async () => json(409, { error: { code: "conflict", message: "username taken" } }),
    });
    const err = await api.register("user", { username: "ann", password: "x".repeat(8), display_name: "Ann" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChatError);
    expect((err as ChatError).code).toBe("conflict");
    expect((err as ChatError).status).toBe(409);
    expect((err as ChatError).message).toBe("username taken");
  });

  it("uses the right paths, query strings and bodies", async () => {
    const calls: [string, string, unknown][] = [];
    const api = new ChatApi({
      baseUrl: "",
      token: "T",
      fetch: async (url, init) => {
        calls.push([init?.method ?? "GET", url, init?.body ? JSON.parse(String(init.body)) : undefined]);
        if (init?.method === "POST" && url.endsWith("/read")) return new Response(null, { status: 204 });
        return json(200, { participants: [], messages: [], has_more: false, notifications: [], servers: [] });
      },
    });
    await api.searchParticipants({ kind: "shop", q: "hat hut" });
    await api.history("5", { before: "99", limit: 10 });
    await api.markRead("5", "99");
    await api.register("shop", { username: "s1", password: "p".repeat(8), display_name: "S", description: "d" });
    await api.register("admin", { username: "a1", password: "p".repeat(8), display_name: "A" });
    await api.notifications();
    await api.discovery({ region: "eu" });
    await api.deleteMessage("42");
    await api.editMessage("42", "new");
    await api.ban("8");
    await api.addMember("5", "9");
    expect(calls).toEqual([
      ["GET", "/v1/participants?kind=shop&q=hat+hut", undefined],
      ["GET", "/v1/conversations/5/messages?before=99&limit=10", undefined],
      ["POST", "/v1/conversations/5/read", { message_id: "99" }],
      ["POST", "/v1/shops", { username: "s1", password: "pppppppp", display_name: "S", description: "d" }],
      ["POST", "/v1/admins", { username: "a1", password: "pppppppp", display_name: "A" }],
      ["GET", "/v1/notifications", undefined],
      ["GET", "/v1/discovery?region=eu", undefined],
      ["DELETE", "/v1/messages/42", undefined],
      ["PATCH", "/v1/messages/42", { body: "new" }],
      ["POST", "/v1/participants/8/ban", {}],
      ["POST", "/v1/conversations/5/members", { participant_id: "9" }],
    ]);
  });

  it("reports a network failure as offline and a non-JSON error by status", async () => {
    const down = new ChatApi({ fetch: async () => { throw new TypeError("Failed to fetch"); } });
    await expect(down.me()).rejects.toMatchObject({ code: "offline" });
    const proxy = new ChatApi({ fetch: async () => new Response("Bad Gateway", { status: 503 }) });
    await expect(proxy.me()).rejects.toMatchObject({ code: "unavailable", status: 503 });
  });
});

describe("page presence", () => {
  it("is active only when visible and focused, and follows the events", () => {
    const doc = Object.assign(new EventTarget(), { visibilityState: "visible" as DocumentVisibilityState, focus: true });
    const d = doc as unknown as Document & { focus: boolean };
    (d as unknown as { hasFocus: () => boolean }).hasFocus = () => doc.focus;
    const win = new EventTarget() as unknown as Window;
    const states: string[] = [];
    const stop = watchPagePresence({ setPresence: (s) => states.push(s) }, d, win);
    expect(pagePresence(d)).toBe("active");
    doc.visibilityState = "hidden";
    doc.dispatchEvent(new Event("visibilitychange"));
    doc.visibilityState = "visible";
    doc.focus = false;
    win.dispatchEvent(new Event("blur"));
    doc.focus = true;
    win.dispatchEvent(new Event("focus"));
    stop();
    doc.visibilityState = "hidden";
    doc.dispatchEvent(new Event("visibilitychange"));
    expect(states).toEqual(["active", "inactive", "inactive", "active"]);
  });
});

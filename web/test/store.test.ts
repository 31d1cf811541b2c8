import { beforeEach, describe, expect, it } from "vitest";

import { DeviceStore, loadSession, saveSession } from "../src/store.js";

class MemoryStorage {
  private m = new Map<string, string>();
  getItem(k: string): string | null {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.m.set(k, String(v));
  }
  removeItem(k: string): void {
    this.m.delete(k);
  }
  keys(): string[] {
    return [...this.m.keys()];
  }
}

let storage: MemoryStorage;
beforeEach(() => {
  storage = new MemoryStorage();
  (globalThis as { localStorage?: unknown }).localStorage = storage;
});

describe("DeviceStore", () => {
  it("keeps the outbox with its client_msg_ids, oldest first, until removed", () => {
    const a = new DeviceStore("7");
    a.putOutbox({ client_msg_id: "b", conversation_id: "1", body: "second", created_at: 2 });
    a.putOutbox({ client_msg_id: "a", conversation_id: "1", body: "first", created_at: 1 });
    // A new page (after a reload) reads what the old one wrote.
    const b = new DeviceStore("7");
    expect(b.outbox().map((i) => [i.client_msg_id, i.body])).toEqual([["a", "first"], ["b", "second"]]);
    b.updateOutbox("a", (i) => ({ ...i, failed: { code: "forbidden", message: "no" } }));
    expect(a.outbox()[0]?.failed?.code).toBe("forbidden");
    b.removeOutbox("a");
    b.removeOutbox("b");
    expect(a.outbox()).toEqual([]);
    expect(storage.keys()).toEqual([]);
    // Another participant on the same device has an outbox of their own.
    new DeviceStore("8").putOutbox({ client_msg_id: "c", conversation_id: "1", body: "x", created_at: 3 });
    expect(a.outbox()).toEqual([]);
  });

  it("keeps a draft per conversation and forgets an empty one", () => {
    const s = new DeviceStore("7");
    s.setDraft("1", "hello");
    s.setDraft("2", "other");
    expect(new DeviceStore("7").draft("1")).toBe("hello");
    s.setDraft("1", "");
    s.setDraft("2", "");
    expect(s.draft("1")).toBe("");
    expect(storage.keys()).toEqual([]);
  });

  it("keeps the alert choices per participant, both off until turned on", () => {
    const s = new DeviceStore("7");
    expect(s.alerts()).toEqual({ desktop: false, sound: false });
    s.setAlerts({ desktop: true, sound: false });
    expect(new DeviceStore("7").alerts()).toEqual({ desktop: true, sound: false });
    expect(new DeviceStore("8").alerts()).toEqual({ desktop: false, sound: false });
    s.setAlerts({ desktop: false, sound: true });
    expect(s.alerts()).toEqual({ desktop: false, sound: true });
    s.setAlerts({ desktop: false, sound: false });
    expect(storage.keys()).toEqual([]);
    storage.setItem("chatd.alerts.7", "\"yes\"");
    expect(s.alerts()).toEqual({ desktop: false, sound: false });
  });

  it("survives garbage in storage", () => {
    storage.setItem("chatd.outbox.7", "{not json");
    storage.setItem("chatd.session", "[1,2]");
    expect(new DeviceStore("7").outbox()).toEqual([]);
    expect(loadSession()).toBeNull();
    saveSession({ token: "t", me: { id: "7", kind: "user", display_name: "Ann" } });
    expect(loadSession()?.token).toBe("t");
  });
});

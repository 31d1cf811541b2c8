import type { Id } from "./types.js";

/** Compares two decimal id strings numerically (ids are 64-bit, beyond Number's precision). */
export function compareIds(a: Id, b: Id): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function maxId(a: Id | null | undefined, b: Id | null | undefined): Id | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return compareIds(a, b) >= 0 ? a : b;
}

/** A unique client_msg_id: the server deduplicates retries by it. */
export function newClientMsgId(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  let s = "";
  for (let i = 0; i < 32; i++) s += Math.floor(Math.random() * 16).toString(16);
  return s;
}

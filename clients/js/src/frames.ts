// Frames on the wire: JSON text both ways, and the typed answers requests
// expect.

import { ChatError } from "./errors.js";
import type { ClientFrame, HistoryPage, Message, ServerFrame } from "./types.js";

export function encodeFrame(frame: ClientFrame): string {
  return JSON.stringify(frame);
}

/** A server frame from a WebSocket message; null for anything else (binary, not JSON). */
export function decodeFrame(data: unknown): ServerFrame | null {
  if (typeof data !== "string") return null;
  try {
    return JSON.parse(data) as ServerFrame;
  } catch {
    return null;
  }
}

/** The request id an answer carries, as a string; null when it has none. */
export function answerId(f: Extract<ServerFrame, { id: unknown }>): string | null {
  return f.id === null || f.id === undefined ? null : String(f.id);
}

/** The message of an `ack` (the answer to edit and delete). */
export function ackedMessage(f: ServerFrame): Message {
  if (f.type !== "ack") throw new ChatError("internal", `unexpected ${f.type}`);
  return f.message;
}

/** The page of a `history` answer. */
export function historyPage(f: ServerFrame): HistoryPage {
  if (f.type !== "history") throw new ChatError("internal", `unexpected ${f.type}`);
  return { messages: f.messages, has_more: f.has_more };
}

// What the page says in words: errors, why the connection closed, presence
// and account types. No DOM here.

import { ChatError, type ParticipantKind, type PresenceState } from "@chatd/client";

/** The server's limit for a message body, in characters (code points). */
export const MAX_BODY = 4000;

export const KIND_NAMES: Record<ParticipantKind, string> = { user: "Customer", shop: "Shop", admin: "Support staff" };

/** A friendly sentence for an error code (the contract's or the client's). */
export function describeError(e: unknown): string {
  if (!(e instanceof ChatError)) return `Something went wrong: ${String(e)}`;
  switch (e.code) {
    case "rate_limited":
      return "You are sending too fast. Wait a moment and try again.";
    case "too_large":
      return `Message too long: at most ${MAX_BODY} characters.`;
    case "offline":
      return "You are offline. Messages are kept and sent when the connection is back.";
    case "timeout":
      return "The server did not answer in time.";
    case "unauthorized":
      return "You have been signed out. Please log in again.";
    case "forbidden":
      return "You are not allowed to do that. If your account was blocked, contact support.";
    case "not_found":
      return "That conversation or message does not exist, or you cannot see it.";
    case "conflict":
      return "That is already taken.";
    case "bad_request":
      return `That was not accepted: ${e.message}`;
    case "unavailable":
      return "The service is temporarily unavailable. Try again in a moment.";
    default:
      return e.message || e.code;
  }
}

/** The banner's text when the connection closed for good, and whether sending is impossible. */
export function closedReason(e: ChatError | undefined): { text: string; blocked: boolean } {
  if (e?.code === "forbidden") {
    return {
      text: "Disconnected: your account has been blocked by support, so you cannot send or receive messages. " +
        "Messages you already wrote are kept.",
      blocked: true,
    };
  }
  return { text: "Disconnected.", blocked: false };
}

export function presenceWord(state: PresenceState | "unknown"): string {
  return state === "active" ? "online" : state === "inactive" ? "away" : state === "offline" ? "offline"
    : "status unknown";
}

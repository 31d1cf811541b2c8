import type { ErrorCode } from "./types.js";

/** Every failure the library reports: the contract's code plus a human message. */
export class ChatError extends Error {
  readonly code: ErrorCode;
  /** HTTP status for HTTP calls; undefined for WebSocket and client-side errors. */
  readonly status: number | undefined;

  constructor(code: ErrorCode, message: string, status?: number) {
    super(message);
    this.name = "ChatError";
    this.code = code;
    this.status = status;
  }
}

/** Codes worth retrying the same request for (the server may accept it later). */
export function isRetryable(code: ErrorCode): boolean {
  return code === "rate_limited" || code === "unavailable" || code === "internal" || code === "offline" ||
    code === "timeout";
}

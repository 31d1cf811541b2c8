// Requests that wait for their answer: each carries an id, resolves with the
// frame that answers it (ack, history, ok, pong), rejects with its error
// frame's code, with `timeout` when none comes in time, and with `offline`
// when the connection is lost first.

import { ChatError } from "./errors.js";
import type { ClientFrame, ServerFrame } from "./types.js";

interface Pending {
  resolve: (f: ServerFrame) => void;
  reject: (e: ChatError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export class Requests {
  private next = 1;
  private readonly pending = new Map<string, Pending>();

  /** A fresh request id (sends take theirs from here too). */
  newId(): string {
    return `c${this.next++}`;
  }

  /** Writes `frame` with a new id and waits for its answer. */
  start(frame: ClientFrame, timeoutMs: number, write: (f: ClientFrame) => void): Promise<ServerFrame> {
    const id = this.newId();
    return new Promise((resolve, reject) => {
      const p: Pending = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.pending.delete(id);
          reject(new ChatError("timeout", `no answer to ${frame.type} in ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.pending.set(id, p);
      write({ ...frame, id });
    });
  }

  /** Settles the request waiting for `id`; false when none waits for it. */
  answer(id: string, f: ServerFrame): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (f.type === "error") p.reject(new ChatError(f.code, f.message));
    else p.resolve(f);
    return true;
  }

  /** The connection is gone: every request still waiting fails with `offline`. */
  failAll(): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ChatError("offline", "connection lost"));
      this.pending.delete(id);
    }
  }
}

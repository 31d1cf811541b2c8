// What the client has received: the newest message id (the next connection
// asks for everything after it with since=) and the ids already delivered
// (delivery is at least once, so duplicates are dropped).

import { maxId } from "./ids.js";
import type { Id, Message } from "./types.js";

/** How many delivered ids are remembered for dropping duplicates. */
const SEEN_LIMIT = 10000;

export class Received {
  private last: Id | null;
  private readonly seen = new Set<Id>();

  constructor(since: Id | null) {
    this.last = since;
  }

  /** The newest message id really received. */
  get lastMessageId(): Id | null {
    return this.last;
  }

  /** Moves the since= mark to a message that was really received. */
  note(m: Message | undefined): void {
    if (m) this.last = maxId(this.last, m.id);
  }

  /** True the first time an id is seen. */
  markSeen(id: Id): boolean {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    if (this.seen.size > SEEN_LIMIT) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    return true;
  }
}

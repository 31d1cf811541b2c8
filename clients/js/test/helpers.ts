import { vi } from "vitest";

import { ChatApi } from "../src/http.js";
import type { Message, ReadyFrame } from "../src/types.js";

export function msg(id: string, conversation = "100", over: Partial<Message> = {}): Message {
  return {
    id,
    conversation_id: conversation,
    sender: { id: "7", kind: "user" },
    body: `m${id}`,
    client_msg_id: `c${id}`,
    created_at: 1,
    edited_at: null,
    deleted: false,
    ...over,
  };
}

export function ready(messages: Message[] = []): ReadyFrame {
  return {
    type: "ready",
    participant: { id: "7", kind: "user", display_name: "Ann" },
    session_id: "s1",
    conversations: [
      {
        id: "100",
        kind: "direct",
        title: "",
        members: [],
        last_message: messages[0] ?? null,
        unread_count: 0,
        updated_at: 1,
        messages,
      },
    ],
  };
}

/** A ChatApi whose fetch answers discovery with `url` (or whatever `answer` says). */
export function apiWithDiscovery(answer: () => Response | Promise<Response> = () => json(200, {
  servers: [{ id: "cs-1", url: "ws://chat.test:9000/v1/ws", region: "local", distance_km: null, load: 0 }],
})) {
  const fetch = vi.fn(async (_url: string, _init?: RequestInit) => answer());
  const api = new ChatApi({ baseUrl: "http://gw.test", token: "tok", fetch });
  return { api, fetch };
}

export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

/** Lets pending promise callbacks (discovery's fetch) run under fake timers. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await vi.advanceTimersByTimeAsync(0);
}

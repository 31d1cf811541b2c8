// The chatd API v1 shapes (docs/protocol.md). Ids are decimal strings of
// 64-bit snowflakes, timestamps integer milliseconds since the Unix epoch.

export type Id = string;
export type ParticipantKind = "user" | "shop" | "admin";
export type PresenceState = "active" | "inactive" | "offline";

/** A participant as others see it. */
export interface ParticipantRef {
  id: Id;
  kind: ParticipantKind;
  display_name: string;
}

/** The owner's view (`/v1/me`, login, register) and search results. */
export interface Participant extends ParticipantRef {
  username?: string;
  description?: string;
  created_at?: number;
}

export interface Message {
  id: Id;
  conversation_id: Id;
  sender: { id: Id; kind: ParticipantKind };
  body: string;
  client_msg_id: string;
  created_at: number;
  edited_at: number | null;
  deleted: boolean;
}

export interface Conversation {
  id: Id;
  kind: "direct" | "group";
  title: string;
  members: ParticipantRef[];
  last_message: Message | null;
  unread_count: number;
  updated_at: number;
  created_at?: number;
  /** Who created it; null for conversations stored before chatd kept it. */
  created_by?: Id | null;
  last_read_message_id?: Id | null;
  /** How far each other member has read (conversations of up to 50 members). */
  read_states?: ReadState[];
}

/** One other member's read position in a conversation. */
export interface ReadState {
  participant_id: Id;
  message_id: Id;
}

/** A conversation in the `ready` frame: with its newest 20 messages, newest first. */
export interface ReadyConversation extends Conversation {
  messages: Message[];
}

export interface LoginResult {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  participant: Participant;
}

export interface ChatServer {
  id: string;
  url: string;
  region: string;
  distance_km: number | null;
  load: number;
}

export interface HistoryPage {
  messages: Message[]; // newest first
  has_more: boolean;
}

export interface Notification {
  id: Id;
  recipient_id: Id;
  conversation_id: Id;
  message_id: Id;
  sender: ParticipantRef;
  preview: string;
  count: number;
  created_at: number;
}

export interface PresenceInfo {
  participant_id: Id;
  state: PresenceState;
  last_seen_at: number | null;
}

export type ErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "too_large"
  | "rate_limited"
  | "unavailable"
  | "internal"
  // Client-side codes: the socket is not connected / no answer in time.
  | "offline"
  | "timeout"
  | (string & {});

// ---- WebSocket frames -------------------------------------------------------

export type RequestId = string | number | null;

export interface ReadyFrame {
  type: "ready";
  participant: Participant;
  session_id: string;
  conversations: ReadyConversation[];
}
export interface MessageFrame {
  type: "message";
  message: Message;
}
export interface AckFrame {
  type: "ack";
  id: RequestId;
  message: Message;
}
export interface HistoryFrame {
  type: "history";
  id: RequestId;
  conversation_id?: Id;
  messages: Message[];
  has_more: boolean;
}
export interface ReadFrame {
  type: "read";
  conversation_id: Id;
  participant_id: Id;
  message_id: Id;
}
export interface TypingFrame {
  type: "typing";
  conversation_id: Id;
  participant_id: Id;
}
export interface PresenceFrame {
  type: "presence";
  participant_id: Id;
  state: PresenceState;
  last_seen_at: number | null;
}
export interface MessageUpdatedFrame {
  type: "message_updated";
  message: Message;
}
export interface ErrorFrame {
  type: "error";
  id: RequestId;
  code: ErrorCode;
  message: string;
}
export interface OkFrame {
  type: "ok";
  id: RequestId;
}
export interface PongFrame {
  type: "pong";
  id: RequestId;
}

export type ServerFrame =
  | ReadyFrame
  | MessageFrame
  | AckFrame
  | HistoryFrame
  | ReadFrame
  | TypingFrame
  | PresenceFrame
  | MessageUpdatedFrame
  | ErrorFrame
  | OkFrame
  | PongFrame;

export type ClientFrame =
  | { type: "send"; id?: RequestId; conversation_id: Id; client_msg_id: string; body: string }
  | { type: "history"; id?: RequestId; conversation_id: Id; before?: Id; limit?: number }
  | { type: "read"; id?: RequestId; conversation_id: Id; message_id: Id }
  | { type: "typing"; id?: RequestId; conversation_id: Id }
  | { type: "presence"; id?: RequestId; state: "active" | "inactive" }
  | { type: "edit"; id?: RequestId; message_id: Id; body: string }
  | { type: "delete"; id?: RequestId; message_id: Id }
  | { type: "ping"; id?: RequestId }
  | { type: "refresh"; id?: RequestId; access_token: string };

export * from "./types.js";
export { ChatError, isRetryable } from "./errors.js";
export { ChatApi, codeForStatus, type ApiOptions, type FetchLike, type Registration } from "./http.js";
export {
  ChatSocket,
  type ConnectionStatus,
  type SendState,
  type SendStateEvent,
  type SocketEvents,
  type SocketOptions,
  type StatusEvent,
  type WebSocketCtor,
  type WebSocketLike,
} from "./socket.js";
export { backoffDelay, type BackoffOptions } from "./backoff.js";
export { compareIds, maxId, newClientMsgId } from "./ids.js";
export { pagePresence, watchPagePresence, type PresenceTarget } from "./presence.js";
export { Emitter } from "./emitter.js";

/** What a page's presence is: active only when visible and focused. */
export function pagePresence(doc: Pick<Document, "visibilityState" | "hasFocus">): "active" | "inactive" {
  return doc.visibilityState === "visible" && doc.hasFocus() ? "active" : "inactive";
}

export interface PresenceTarget {
  setPresence(state: "active" | "inactive"): void;
}

/**
 * Follows the Page Visibility API and window focus and tells `target`
 * (a ChatSocket) whenever the page turns active or inactive. Returns a
 * function that stops watching.
 */
export function watchPagePresence(
  target: PresenceTarget,
  doc: Document = document,
  win: Pick<Window, "addEventListener" | "removeEventListener"> = window,
): () => void {
  const update = () => target.setPresence(pagePresence(doc));
  doc.addEventListener("visibilitychange", update);
  win.addEventListener("focus", update);
  win.addEventListener("blur", update);
  win.addEventListener("pageshow", update);
  win.addEventListener("pagehide", update);
  update();
  return () => {
    doc.removeEventListener("visibilitychange", update);
    win.removeEventListener("focus", update);
    win.removeEventListener("blur", update);
    win.removeEventListener("pageshow", update);
    win.removeEventListener("pagehide", update);
  };
}

// Tiny DOM helpers: every text goes through textContent, never innerHTML, so
// message bodies and names cannot inject markup.

import { fullDate, splitLinks } from "./text.js";

type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "class") {
      el.className = String(v);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
}

export function formatTime(ms: number): string {
  const d = new Date(ms);
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

/** Length in Unicode code points, as the server counts it. */
export function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** A message body as text nodes and http(s) links that open in a new tab, built with DOM calls only. */
export function linkified(body: string): Node[] {
  return splitLinks(body).map((p) => "href" in p
    ? h("a", { href: p.href, target: "_blank", rel: "noopener noreferrer" }, p.text)
    : document.createTextNode(p.text));
}

/** A time as people read it, with the full date on hover and the exact instant for machines. */
export function timeEl(ms: number, cls?: string): HTMLElement {
  return h("time", { datetime: new Date(ms).toISOString(), title: fullDate(ms), class: cls }, formatTime(ms));
}

/** On a touch screen (a phone) Enter is a line break and the Send button sends, as in phone chat apps. */
export function touchScreen(): boolean {
  return window.matchMedia("(pointer: coarse)").matches;
}

export function enterSends(k: KeyboardEvent): boolean {
  return k.key === "Enter" && !k.shiftKey && !k.isComposing && !touchScreen();
}

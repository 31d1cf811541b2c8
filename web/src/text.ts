// Pure helpers for how messages read: links in a body, day labels, dates.
// No DOM here (see dom.ts), so they are unit-tested in Node.

export type Piece = { text: string } | { text: string; href: string };

// http(s) URLs only; anything else (javascript:, data:, mailto:, ...) stays text.
const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
// Punctuation that ends a sentence rather than the URL.
const TRAILING = /[.,;:!?)\]}'"»”’]+$/;

/** Splits a message body into text and http/https links. */
export function splitLinks(body: string): Piece[] {
  const out: Piece[] = [];
  let last = 0;
  for (const m of body.matchAll(URL_RE)) {
    const start = m.index ?? 0;
    let raw = m[0];
    // Keep a closing bracket that belongs to the URL: "(see https://x.org/a_(b))".
    const trail = TRAILING.exec(raw)?.[0] ?? "";
    if (trail) {
      let keep = raw.slice(0, raw.length - trail.length);
      let rest = trail;
      while (rest.startsWith(")") && count(keep, "(") > count(keep, ")")) {
        keep += ")";
        rest = rest.slice(1);
      }
      raw = keep;
    }
    let href: string | null = null;
    try {
      const u = new URL(raw);
      if ((u.protocol === "http:" || u.protocol === "https:") && u.hostname) href = u.href;
    } catch {
      href = null;
    }
    if (!href) continue;
    if (start > last) out.push({ text: body.slice(last, start) });
    out.push({ text: raw, href });
    last = start + raw.length;
  }
  if (last < body.length) out.push({ text: body.slice(last) });
  return out;
}

function count(s: string, ch: string): number {
  let n = 0;
  for (const c of s) if (c === ch) n++;
  return n;
}

/** A key that is equal for two times on the same local calendar day. */
export function dayKey(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/** "Today", "Yesterday", a weekday within the last week, else a date. */
export function dayLabel(ms: number, now: number = Date.now(), locale?: string): string {
  const d = new Date(ms);
  const startOf = (t: Date) => new Date(t.getFullYear(), t.getMonth(), t.getDate()).getTime();
  const days = Math.round((startOf(new Date(now)) - startOf(d)) / 86400000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  if (days > 1 && days < 7) return d.toLocaleDateString(locale, { weekday: "long" });
  const sameYear = d.getFullYear() === new Date(now).getFullYear();
  return d.toLocaleDateString(locale, sameYear
    ? { weekday: "long", month: "long", day: "numeric" }
    : { year: "numeric", month: "long", day: "numeric" });
}

/** The full date and time, for a tooltip. */
export function fullDate(ms: number, locale?: string): string {
  return new Date(ms).toLocaleString(locale, { dateStyle: "full", timeStyle: "short" });
}

/** Messages of one sender within this long of each other form a group. */
export const GROUP_MS = 5 * 60 * 1000;

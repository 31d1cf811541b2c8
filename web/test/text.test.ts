import { describe, expect, it } from "vitest";

import { dayKey, dayLabel, splitLinks } from "../src/text.js";

describe("splitLinks", () => {
  it("finds http and https links and keeps the rest as text", () => {
    expect(splitLinks("see https://example.com/a?b=1 and http://x.org")).toEqual([
      { text: "see " },
      { text: "https://example.com/a?b=1", href: "https://example.com/a?b=1" },
      { text: " and " },
      { text: "http://x.org", href: "http://x.org/" },
    ]);
  });

  it("never links other schemes", () => {
    for (const body of ["javascript:alert(1)", "JaVaScRiPt:alert(1)//https://x.org", "data:text/html,hi",
      "mailto:a@b.c", "ftp://x.org/file", "<a href=\"javascript:alert(1)\">x</a>"]) {
      const pieces = splitLinks(body);
      for (const p of pieces) {
        if ("href" in p) expect(p.href).toMatch(/^https?:\/\//);
      }
      expect(pieces.map((p) => p.text).join("")).toBe(body);
    }
    expect(splitLinks("javascript:alert(1)")).toEqual([{ text: "javascript:alert(1)" }]);
  });

  it("leaves sentence punctuation out of the link but keeps balanced brackets", () => {
    expect(splitLinks("go to https://x.org/a.")).toEqual([
      { text: "go to " }, { text: "https://x.org/a", href: "https://x.org/a" }, { text: "." }]);
    expect(splitLinks("(https://en.wikipedia.org/wiki/A_(b))")).toEqual([
      { text: "(" },
      { text: "https://en.wikipedia.org/wiki/A_(b)", href: "https://en.wikipedia.org/wiki/A_(b)" },
      { text: ")" },
    ]);
  });

  it("keeps the text as it was, links or not", () => {
    const body = "a https://x.org/ b https://y.org/c, d";
    expect(splitLinks(body).map((p) => p.text).join("")).toBe(body);
  });
});

describe("days", () => {
  const now = new Date(2026, 2, 12, 10, 0).getTime(); // a Thursday
  it("labels today, yesterday, this week and older days", () => {
    expect(dayLabel(new Date(2026, 2, 12, 0, 1).getTime(), now, "en-GB")).toBe("Today");
    expect(dayLabel(new Date(2026, 2, 11, 23, 59).getTime(), now, "en-GB")).toBe("Yesterday");
    expect(dayLabel(new Date(2026, 2, 9, 12, 0).getTime(), now, "en-GB")).toBe("Monday");
    expect(dayLabel(new Date(2026, 0, 5, 12, 0).getTime(), now, "en-GB")).toBe("Monday 5 January");
    expect(dayLabel(new Date(2025, 0, 5, 12, 0).getTime(), now, "en-GB")).toBe("5 January 2025");
  });
  it("puts two times of one day under one key", () => {
    expect(dayKey(new Date(2026, 2, 12, 0, 1).getTime())).toBe(dayKey(new Date(2026, 2, 12, 23, 59).getTime()));
    expect(dayKey(new Date(2026, 2, 12, 0, 1).getTime())).not.toBe(dayKey(new Date(2026, 2, 11, 23, 59).getTime()));
  });
});

// Browser tests of the web client against a real chatd: three people (a
// customer, a shop, an admin) in three browser contexts of the system
// chromium. Run by ctest (label e2e) or `npm test` in tests/e2e.
import assert from "node:assert/strict";
import { copyFileSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";

import {
  Chatd,
  checkPrerequisites,
  ensureScreenshotDir,
  eventually,
  launchBrowser,
  screenshotDir,
} from "./harness.mjs";

const PASSWORD = "password123";
const axeSource = readFileSync(join(dirname(createRequire(import.meta.url).resolve("axe-core")), "axe.min.js"), "utf8");

let server;
let browser;
const people = {}; // name -> { context, page, token, id }
let conversationId;

// ---- page helpers ----

async function newPerson(name, contextOptions = {}, initScript = null) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, ...contextOptions });
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`[${name}] page error:`, err));
  page.on("console", (msg) => {
    if (msg.type() === "error") console.error(`[${name}] console:`, msg.text());
  });
  people[name] = { context, page };
  return page;
}

async function register(name, kind, username, displayName, description, contextOptions, initScript) {
  const page = await newPerson(name, contextOptions, initScript);
  await page.goto(server.baseUrl + "/");
  await page.getByRole("button", { name: "New here? Create an account" }).click();
  await page.getByLabel("I am a").selectOption(kind);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByLabel("Display name").fill(displayName);
  if (description) await page.getByLabel("Shop description (optional)").fill(description);
  await page.getByRole("button", { name: "Register" }).click();
  await signedIn(name, displayName);
}

async function loginAs(name, kind, username, password, displayName) {
  const page = await newPerson(name);
  await page.goto(server.baseUrl + "/");
  await page.getByLabel("I am a").selectOption(kind);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await signedIn(name, displayName);
}

async function signedIn(name, displayName) {
  const p = people[name];
  await p.page.getByTestId("me").filter({ hasText: displayName ?? "" }).waitFor();
  const session = await p.page.evaluate(() => JSON.parse(localStorage.getItem("chatd.session")));
  p.token = session.token;
  p.id = session.me.id;
  await connected(p.page);
  await setVisible(p.page, true);
}

/** Waits until the page's WebSocket is up (the offline/connecting banner is gone). */
async function connected(page, timeout = 15000) {
  await page.locator("#banner").waitFor({ state: "hidden", timeout });
}

/**
 * Emulates the page being in the front (visible and focused) or hidden, the
 * way a browser reports it: document.visibilityState, document.hasFocus()
 * and a visibilitychange event.
 */
async function setVisible(page, visible) {
  await page.evaluate((v) => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (v ? "visible" : "hidden") });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => !v });
    document.hasFocus = () => v;
    document.dispatchEvent(new Event("visibilitychange"));
  }, visible);
}

function messages(page) {
  return page.locator("#messages article[data-message-id]");
}

function exactly(text) {
  return new RegExp("^" + text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "$");
}

/** The message whose body is exactly `text` ("history 1" is not "history 10"). */
function message(page, text) {
  return messages(page).filter({ has: page.locator("p.body", { hasText: exactly(text) }) });
}

async function send(page, text) {
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
}

async function openConversation(page) {
  await page.locator(`#conversation-list button[data-conversation-id="${conversationId}"]`).click();
  await page.locator("#chat-title").waitFor();
}

async function shot(name, page) {
  await page.screenshot({ path: join(ensureScreenshotDir(), `${name}.png`) });
}

/**
 * What sticks out: the page scrolling sideways, an element whose box leaves
 * the viewport, or an element whose content is wider than its box (text cut
 * on purpose with an ellipsis excepted).
 */
async function overflows(page) {
  return page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const bad = [];
    const name = (el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}` +
      `${el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : ""}`;
    if (document.documentElement.scrollWidth > vw) {
      bad.push(`the page is ${document.documentElement.scrollWidth}px wide in a ${vw}px viewport`);
    }
    for (const el of document.body.querySelectorAll("*")) {
      if (el.closest(".visually-hidden") || !el.checkVisibility()) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.left < -1 || r.right > vw + 1) bad.push(`${name(el)} spans ${Math.round(r.left)}..${Math.round(r.right)}px`);
      const cs = getComputedStyle(el);
      if (cs.textOverflow !== "ellipsis" && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
        bad.push(`${name(el)} holds ${el.scrollWidth}px in ${el.clientWidth}px`);
      }
    }
    return bad;
  });
}

/** Buttons and fields smaller than 44×44 px (links inside a message's text are exempt, as WCAG allows). */
async function smallTargets(page) {
  return page.evaluate(() => [...document.querySelectorAll("button, a, input, select, textarea")]
    .filter((el) => el.checkVisibility() && !el.closest(".visually-hidden, .body"))
    .map((el) => ({ el, r: el.getBoundingClientRect() }))
    .filter(({ r }) => r.width < 44 || r.height < 44)
    .map(({ el, r }) => `${el.tagName.toLowerCase()} "${(el.textContent || el.id).trim().slice(0, 20)}" ` +
      `${Math.round(r.width)}x${Math.round(r.height)}`));
}

/** axe-core's serious and critical findings on the page as it is now (WCAG 2.x A and AA rules). */
async function accessibilityProblems(page) {
  // Evaluated over the DevTools protocol, which the page's CSP does not apply to.
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const r = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] },
      resultTypes: ["violations"],
    });
    return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 4).map((n) => n.target.join(" ") +
        (n.any[0]?.data?.contrastRatio ? ` ${n.any[0].data.contrastRatio}:1` : "")).join(", ")}`);
  });
}

async function presenceOf(id, token) {
  return (await server.api("GET", `/v1/presence/${id}`, { token })).state;
}

async function notificationsOf(name) {
  return (await server.api("GET", "/v1/notifications?limit=100", { token: people[name].token })).notifications;
}

// ---- the suite ----

describe("chatd web client in chromium", { timeout: 300000 }, () => {
  before(async () => {
    checkPrerequisites();
    server = new Chatd();
    await server.start();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.cleanup();
  });

  it("serves the app at / and keeps the API's JSON 404s", async () => {
    const root = await fetch(server.baseUrl + "/");
    assert.equal(root.status, 200);
    assert.match(root.headers.get("content-type"), /^text\/html/);
    assert.equal(root.headers.get("cache-control"), "no-cache");
    // A browser navigation to a client-side route gets the page; an API client gets the JSON 404.
    const spa = await fetch(server.baseUrl + "/some/client/route", { headers: { Accept: "text/html" } });
    assert.equal(spa.status, 200);
    assert.match(await spa.text(), /<div id="app"/);
    assert.equal((await fetch(server.baseUrl + "/some/client/route")).status, 404);
    const api = await fetch(server.baseUrl + "/v1/nope");
    assert.equal(api.status, 404);
    assert.deepEqual(await api.json(), { error: { code: "not_found", message: "no such route" } });
    const health = await fetch(server.baseUrl + "/healthz");
    assert.deepEqual(await health.json(), { status: "ok" });
  });

  it("a customer and a shop chat both ways in real time", async () => {
    await register("ann", "user", "ann", "Ann Customer");
    await register("hats", "shop", "hats", "Hat Shop", "hats of all kinds");
    const ann = people.ann.page;
    const hats = people.hats.page;

    // Ann finds the shop by name and starts a chat.
    await ann.getByLabel("Start a chat with a shop").fill("Hat");
    await ann.getByRole("button", { name: /Hat Shop/ }).click();
    await ann.locator("#chat-title", { hasText: "Hat Shop" }).waitFor();
    conversationId = await ann.locator("#conversation-list button.conv.active").getAttribute("data-conversation-id");
    assert.match(conversationId, /^\d+$/);

    await send(ann, "hello shop");
    await message(ann, "hello shop").waitFor();

    // The shop did not have the conversation at connect: it appears live, unread.
    const row = hats.locator(`#conversation-list button[data-conversation-id="${conversationId}"]`);
    await row.waitFor();
    await row.getByTestId("unread").filter({ hasText: "1" }).waitFor();
    await row.filter({ hasText: "Ann Customer" }).waitFor();
    // Both see each other online.
    await row.locator('[data-testid="presence"][data-state="active"]').waitFor();
    await ann.locator(`#conversation-list button[data-conversation-id="${conversationId}"] [data-state="active"]`)
      .waitFor();

    await openConversation(hats);
    await message(hats, "hello shop").waitFor();
    assert.equal(await row.getByTestId("unread").count(), 0, "opening the conversation clears the badge");
    // Ann sees the read receipt.
    await message(ann, "hello shop").getByTestId("seen").waitFor();

    // The shop types: Ann sees it; then replies.
    await hats.getByLabel("Message", { exact: true }).pressSequentially("hi A");
    await ann.locator("#typing", { hasText: "Hat Shop is typing…" }).waitFor();
    await hats.getByLabel("Message", { exact: true }).fill("");
    await send(hats, "hi Ann, how can I help?");
    await message(ann, "hi Ann, how can I help?").waitFor();
    await message(hats, "hi Ann, how can I help?").waitFor();

    // Ann edits her first message; the shop sees the new text.
    await message(ann, "hello shop").getByRole("button", { name: "Edit message: hello shop" }).click();
    const edit = ann.getByLabel("Edit message");
    await edit.fill("hello shop, do you sell berets?");
    await edit.press("Enter");
    await message(hats, "hello shop, do you sell berets?").filter({ hasText: "edited" }).waitFor();

    // The conversation list is ordered by activity: a newer conversation goes on top.
    await register("bob", "user", "bob", "Bob Buyer");
    await people.bob.page.getByLabel("Start a chat with a shop").fill("hats");
    await people.bob.page.getByRole("button", { name: /Hat Shop/ }).click();
    await send(people.bob.page, "do you ship abroad?");
    await hats.locator("#conversation-list li").first().filter({ hasText: "Bob Buyer" }).waitFor();
    await send(ann, "berets in red?");
    await hats.locator("#conversation-list li").first().filter({ hasText: "Ann Customer" }).waitFor();
    await message(hats, "berets in red?").waitFor();

    await shot("chat-customer", ann);
    await shot("chat-shop", hats);
  });

  it("a failed log-in says what is wrong and offers the other account type", async () => {
    const page = await newPerson("mistaken");
    await page.goto(server.baseUrl + "/");
    // The shop's username with "Customer" selected: the usual mistake.
    await page.getByLabel("I am a").selectOption("user");
    await page.getByLabel("Username").fill("hats");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Log in", exact: true }).click();
    const alert = page.getByRole("alert");
    await alert.filter({ hasText: "Wrong username or password for a customer account. Is it a shop account?" })
      .waitFor();
    assert.doesNotMatch(await alert.innerText(), /session|expired/i);
    // A wrong password for the right type says the same, without an offer.
    await page.getByLabel("I am a").selectOption("shop");
    await page.getByLabel("Password").fill("not-the-password");
    await page.getByRole("button", { name: "Log in", exact: true }).click();
    await alert.filter({ hasText: "Wrong username or password for a shop account." }).waitFor();
    await alert.filter({ hasText: "Is it a customer account?" }).waitFor();
    // The offer logs in as the other type.
    await page.getByLabel("I am a").selectOption("user");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Log in", exact: true }).click();
    await alert.getByRole("button", { name: "Log in as a shop" }).click();
    await page.getByTestId("me").filter({ hasText: "Hat Shop" }).waitFor();
    await people.mistaken.context.close();
    delete people.mistaken;
  });

  it("nothing typed is lost: the outbox and drafts survive reloads and are sent once", async () => {
    const ann = people.ann.page;
    let mode = "drop-acks"; // what happens to Ann's next WebSocket connections
    await ann.routeWebSocket(/\/v1\/ws/, (ws) => {
      if (mode === "block") {
        ws.close({ code: 1013, reason: "blocked by the test" });
        return;
      }
      const srv = ws.connectToServer();
      ws.onMessage((m) => srv.send(m));
      srv.onMessage((m) => {
        // Lose the server's acks: the message is stored, the page never hears so.
        if (mode === "drop-acks" && typeof m === "string" && JSON.parse(m).type === "ack") return;
        ws.send(m);
      });
    });
    await ann.reload();
    await connected(ann);
    await setVisible(ann, true);
    await openConversation(ann);

    await send(ann, "ack lost before reload");
    await message(people.hats.page, "ack lost before reload").waitFor();
    await ann.locator("#messages article.pending", { hasText: "ack lost before reload" }).waitFor();

    // Leaving with an unsent message asks first.
    mode = "block";
    const asked = new Promise((resolve) => ann.once("dialog", (d) => {
      resolve(d.type());
      void d.accept();
    }));
    await ann.reload();
    assert.equal(await asked, "beforeunload");
    await ann.locator("#banner", { hasText: "Offline" }).waitFor();
    // The chat server is out of reach, the gateway is not: the list and history come over HTTP,
    // and the message whose ack was lost shows as stored, once, not as a second pending copy.
    await openConversation(ann);
    await message(ann, "ack lost before reload").waitFor();
    assert.equal(await ann.locator("#messages article.pending", { hasText: "ack lost before reload" }).count(), 0);
    await send(ann, "typed while offline");
    await ann.locator("#messages article.pending", { hasText: "typed while offline" })
      .filter({ hasText: "Waiting for connection" }).waitFor();
    await ann.getByLabel("Message", { exact: true }).fill("a draft, not sent yet");

    // A reload (still offline) keeps both and the draft.
    await ann.reload();
    await ann.locator("#banner", { hasText: "Offline" }).waitFor();
    await openConversation(ann);
    await ann.locator("#messages article.pending", { hasText: "typed while offline" }).waitFor();
    assert.equal(await ann.getByLabel("Message", { exact: true }).inputValue(), "a draft, not sent yet");

    // Back online: everything goes out, with the client_msg_id kept, so once.
    mode = "pass";
    await ann.evaluate(() => window.dispatchEvent(new Event("online")));
    await connected(ann);
    await message(people.hats.page, "typed while offline").waitFor();
    await send(ann, "after the outbox");
    await message(people.hats.page, "after the outbox").waitFor();
    await message(ann, "after the outbox").waitFor();
    const stored = (await server.api("GET", `/v1/conversations/${conversationId}/messages?limit=20`,
      { token: people.ann.token })).messages.map((m) => m.body);
    for (const body of ["ack lost before reload", "typed while offline"]) {
      assert.equal(stored.filter((b) => b === body).length, 1, `"${body}" stored once`);
      assert.equal(await message(ann, body).count(), 1, `"${body}" shown once`);
      assert.equal(await message(people.hats.page, body).count(), 1, `"${body}" delivered once`);
    }
    assert.equal(await ann.locator("#messages article.pending").count(), 0);
    assert.equal(await ann.evaluate((id) => localStorage.getItem(`chatd.outbox.${id}`), people.ann.id), null);
    // Nothing unsent: leaving does not ask.
    const prevented = await ann.evaluate(() => {
      const ev = new Event("beforeunload", { cancelable: true });
      window.dispatchEvent(ev);
      return ev.defaultPrevented;
    });
    assert.equal(prevented, false);
  });

  it("a session survives a new tab; a failed GET /v1/me retries unless it is a 401", async () => {
    // A new tab of Ann's browser: still logged in, even while the server answers 503 for a while.
    const tab = await people.ann.context.newPage();
    let failures = 2;
    await tab.route("**/v1/me", async (route) => {
      if (failures-- > 0) {
        await route.fulfill({ status: 503, contentType: "application/json",
          body: JSON.stringify({ error: { code: "unavailable", message: "restarting" } }) });
      } else {
        await route.continue();
      }
    });
    await tab.goto(server.baseUrl + "/");
    await tab.locator("#resume", { hasText: "temporarily unavailable" }).waitFor();
    await tab.locator("#resume", { hasText: /Trying again in \d+ s/ }).waitFor();
    await tab.getByTestId("me").filter({ hasText: "Ann Customer" }).waitFor({ timeout: 15000 });
    assert.ok(failures < 0, "it asked again after the 503s");
    await tab.close();

    // A token the server does not accept (401) ends the session, in plain words.
    const context = await browser.newContext();
    await context.addInitScript(() => {
      if (!localStorage.getItem("chatd.session")) {
        localStorage.setItem("chatd.session", JSON.stringify({ token: "not-a-token", me: { id: "1", kind: "user",
          display_name: "Nobody" } }));
      }
    });
    const page = await context.newPage();
    await page.goto(server.baseUrl + "/");
    await page.getByRole("alert").filter({ hasText: "You have been signed out. Please log in again." }).waitFor();
    await page.getByLabel("Username").waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem("chatd.session")), null);

    // Logged in again, a second tab shares the session; logging out in one logs out both.
    await page.getByLabel("Username").fill("bob");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Log in", exact: true }).click();
    await page.getByTestId("me").filter({ hasText: "Bob Buyer" }).waitFor();
    const second = await context.newPage();
    await second.goto(server.baseUrl + "/");
    await second.getByTestId("me").filter({ hasText: "Bob Buyer" }).waitFor();
    await page.getByRole("button", { name: "Log out" }).click();
    await second.getByLabel("Username").waitFor();
    await context.close();
  });

  it("a hidden shop page gets a notification; a visible one does not", async () => {
    const ann = people.ann.page;
    const hats = people.hats.page;
    const hatsId = people.hats.id;
    const before = (await notificationsOf("hats")).length;

    await setVisible(hats, false);
    await eventually(async () => (await presenceOf(hatsId, people.ann.token)) === "inactive",
      { what: "the shop's presence to turn inactive" });
    // Ann's page shows the shop as away.
    await ann.locator(`#conversation-list button[data-conversation-id="${conversationId}"] [data-state="inactive"]`)
      .waitFor();

    await send(ann, "are you there?");
    const got = await eventually(async () => {
      const list = await notificationsOf("hats");
      return list.find((n) => n.preview === "are you there?");
    }, { timeout: 15000, what: "a notification for the message sent while hidden" });
    assert.equal(got.conversation_id, conversationId);
    assert.equal(got.sender.id, people.ann.id);

    await setVisible(hats, true);
    await eventually(async () => (await presenceOf(hatsId, people.ann.token)) === "active",
      { what: "the shop's presence to turn active" });
    await send(ann, "visible now");
    await message(hats, "visible now").waitFor();
    // Stored (so the main chat service has decided about notifying) ...
    await eventually(async () => {
      const page = await server.api("GET", `/v1/conversations/${conversationId}/messages?limit=5`,
        { token: people.ann.token });
      return page.messages.some((m) => m.body === "visible now");
    }, { what: "the message to be stored" });
    // ... and some slack for a notification that should not come.
    await new Promise((r) => setTimeout(r, 1500));
    const after = await notificationsOf("hats");
    assert.equal(after.filter((n) => n.preview === "visible now").length, 0, "no notification while visible");
    assert.equal(after.length, before + 1);

    // The notifications list in the page.
    await hats.getByRole("button", { name: "Notifications" }).click();
    const list = hats.locator("#notification-list");
    await list.getByRole("button", { name: /are you there\?/ }).waitFor();
    assert.equal(await list.getByText("visible now").count(), 0);
    await shot("notifications-shop", hats);
    await hats.locator("#notifications").getByRole("button", { name: "Close" }).click();
  });

  it("scrolling back loads older pages of history", async () => {
    const hats = people.hats.page;
    // 70 more messages, sent over HTTP as a bot would.
    for (let i = 1; i <= 70; i++) {
      await server.api("POST", `/v1/conversations/${conversationId}/messages`, {
        token: people.ann.token,
        body: { client_msg_id: `hist-${i}`, body: `history ${i}` },
      });
    }
    await message(hats, "history 70").waitFor();
    // A fresh load starts from the newest 20 (the ready frame).
    await hats.reload();
    await connected(hats);
    await setVisible(hats, true);
    await openConversation(hats);
    await message(hats, "history 70").waitFor();
    const first = await messages(hats).count();
    assert.ok(first <= 20, `a fresh page shows the newest 20, got ${first}`);
    assert.equal(await message(hats, "history 1").count(), 0);

    const counts = [first];
    for (let round = 0; round < 10 && (await message(hats, "history 1").count()) === 0; round++) {
      const was = await messages(hats).count();
      await hats.locator("#messages").evaluate((el) => {
        el.scrollTop = 0;
        el.dispatchEvent(new Event("scroll"));
      });
      await eventually(async () => (await messages(hats).count()) > was, { what: "an older page" });
      counts.push(await messages(hats).count());
    }
    await message(hats, "history 1").waitFor();
    assert.ok(counts.length >= 3, `several pages were loaded: ${counts.join(" -> ")}`);
    // All of it, in order, once each.
    await hats.locator("#messages", { hasText: "This is the beginning of the conversation." }).waitFor();
    const bodies = await hats.locator("#messages article[data-message-id] p.body").allTextContents();
    const hist = bodies.filter((b) => b.startsWith("history "));
    assert.deepEqual(hist, Array.from({ length: 70 }, (_, i) => `history ${i + 1}`));
    await shot("history-shop", hats);
  });

  it("reads like a chat: links, times, groups, days, a jump button, a divider, the title and a URL", async () => {
    const ann = people.ann.page;
    const hats = people.hats.page;
    const bob = people.bob.page;

    // The shop is at the top after scrolling back through history: down to the latest first.
    await hats.locator("#messages").evaluate((el) => {
      el.scrollTop = el.scrollHeight;
    });
    await hats.locator("#jump").waitFor({ state: "hidden" });

    // Links: only http(s), opened in a new tab without opener or referrer; markup stays text.
    const body = "see https://example.com/hats?size=m, javascript:alert(1) and <b>bold</b>";
    await send(ann, body);
    const linked = message(hats, body);
    await linked.waitFor();
    const link = linked.locator("a");
    assert.equal(await link.count(), 1);
    assert.equal(await link.getAttribute("href"), "https://example.com/hats?size=m");
    assert.equal(await link.innerText(), "https://example.com/hats?size=m");
    assert.equal(await link.getAttribute("target"), "_blank");
    assert.equal(await link.getAttribute("rel"), "noopener noreferrer");
    assert.equal(await hats.locator('#messages a[href^="javascript"], #messages b').count(), 0);
    // A time shows the full date on hover and the exact instant in datetime.
    const time = linked.locator("time");
    const iso = await time.getAttribute("datetime");
    assert.ok(!Number.isNaN(Date.parse(iso)), iso);
    assert.match(await time.getAttribute("title"), new RegExp(String(new Date(iso).getFullYear())));
    // Consecutive messages of one sender form a group: one name above them.
    await send(ann, "grouped second");
    const second = message(hats, "grouped second");
    await second.waitFor();
    assert.match(await second.getAttribute("class"), /\bgrouped\b/);
    assert.equal(await second.locator("header.author").count(), 0);
    assert.equal(await hats.getByTestId("day-separator").last().innerText(), "Today");

    // Scrolled up when a message arrives: a button says so and jumps to it.
    await hats.locator("#messages").evaluate((el) => {
      el.scrollTop = el.scrollHeight / 2;
    });
    await hats.locator("#jump", { hasText: "Jump to latest" }).waitFor();
    await send(ann, "arrived while scrolled up");
    await hats.locator("#jump", { hasText: "1 new message ↓" }).waitFor();
    const inView = (loc) => loc.evaluate((el) => {
      const r = el.getBoundingClientRect();
      const box = document.getElementById("messages").getBoundingClientRect();
      return r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
    });
    assert.equal(await inView(message(hats, "arrived while scrolled up")), false);
    await hats.locator("#jump").click();
    await hats.locator("#jump").waitFor({ state: "hidden" });
    assert.equal(await inView(message(hats, "arrived while scrolled up")), true);

    // Bob writes while the shop reads Ann: the unread count goes into the tab title ...
    const unreadBefore = Number(/^\((\d+)\) chatd$/.exec(await hats.title())?.[1] ?? 0);
    assert.ok(unreadBefore >= 1, "Bob's first message is still unread");
    await send(bob, "a question from bob");
    await eventually(async () => (await hats.title()) === `(${unreadBefore + 1}) chatd`,
      { what: "the unread count in the title" });
    // ... and opening his conversation puts a "New messages" divider above the first unread one.
    await hats.locator("#conversation-list li", { hasText: "Bob Buyer" }).getByRole("button").click();
    await hats.locator("#chat-title", { hasText: "Bob Buyer" }).waitFor();
    const divider = hats.getByTestId("new-divider");
    await divider.waitFor();
    assert.equal(await divider.evaluate((el) => el.nextElementSibling.querySelector("p.body").textContent),
      "do you ship abroad?");
    await message(hats, "a question from bob").waitFor();
    await eventually(async () => (await hats.title()) === "chatd", { what: "the title without unread" });

    // A URL per conversation: back and forward, reload and a new tab reopen it.
    const bobConversation = await hats.locator("#conversation-list button.conv.active")
      .getAttribute("data-conversation-id");
    assert.equal(new URL(hats.url()).pathname, `/c/${bobConversation}`);
    await hats.goBack();
    await hats.locator("#chat-title", { hasText: "Ann Customer" }).waitFor();
    assert.equal(new URL(hats.url()).pathname, `/c/${conversationId}`);
    await hats.goForward();
    await hats.locator("#chat-title", { hasText: "Bob Buyer" }).waitFor();
    await hats.reload();
    await hats.locator("#chat-title", { hasText: "Bob Buyer" }).waitFor();
    await connected(hats);
    await setVisible(hats, true);

    // A new tab on /c/<id> (same session) with messages from two days: a separator per day.
    const recent = (await server.api("GET", `/v1/conversations/${conversationId}/messages?limit=10`,
      { token: people.hats.token })).messages;
    const cut = recent.at(-1).id; // the 10th newest: older ones are made two days old below
    const shift = (m) => (BigInt(m.id) < BigInt(cut) ? { ...m, created_at: m.created_at - 2 * 86400000 } : m);
    const tab = await people.hats.context.newPage();
    await tab.routeWebSocket(/\/v1\/ws/, (ws) => {
      const srv = ws.connectToServer();
      ws.onMessage((m) => srv.send(m));
      srv.onMessage((m) => {
        const f = JSON.parse(m);
        if (f.type === "ready") for (const c of f.conversations) c.messages = c.messages.map(shift);
        if (f.type === "history") f.messages = f.messages.map(shift);
        ws.send(JSON.stringify(f));
      });
    });
    await tab.route(/\/v1\/conversations\/\d+\/messages/, async (route) => {
      const res = await route.fetch();
      const page = await res.json();
      page.messages = page.messages.map(shift);
      await route.fulfill({ response: res, json: page });
    });
    await tab.goto(`${server.baseUrl}/c/${conversationId}`);
    await tab.locator("#chat-title", { hasText: "Ann Customer" }).waitFor();
    await tab.locator(`#messages article[data-message-id="${cut}"]`).waitFor();
    await connected(tab);
    const days = await tab.getByTestId("day-separator").allInnerTexts();
    assert.equal(days.length, 2, days.join(" | "));
    assert.equal(days[1], "Today");
    assert.notEqual(days[0], "Yesterday");
    assert.equal(await tab.getByTestId("day-separator").last()
      .evaluate((el) => el.nextElementSibling.getAttribute("data-message-id")), cut);
    await tab.close();

    await openConversation(hats);
    await shot("structure-shop", hats);
  });

  it("marks read only what was on screen in a visible page", async () => {
    const ann = people.ann.page;
    const hats = people.hats.page;
    // What the shop's page tells the server, in order (a fresh connection, so it is seen from the start).
    const sent = [];
    hats.on("websocket", (ws) => ws.on("framesent", (f) => {
      try {
        sent.push(JSON.parse(f.payload));
      } catch {
        // not JSON
      }
    }));
    await hats.reload();
    await connected(hats);
    await setVisible(hats, true);
    await hats.locator("#chat-title", { hasText: "Ann Customer" }).waitFor();
    const readIndex = (id) => sent.findIndex((f) => f.type === "read" && BigInt(f.message_id) >= BigInt(id));

    // Scrolled up: a new message is not read, until the reader goes down to it.
    await hats.locator("#messages").evaluate((el) => {
      el.scrollTop = 0;
    });
    await hats.locator("#jump").waitFor();
    await send(ann, "unseen while scrolled up");
    await hats.locator("#jump", { hasText: "1 new message ↓" }).waitFor();
    const up = await message(hats, "unseen while scrolled up").getAttribute("data-message-id");
    // Marker: the shop types after the message arrived; a read frame sent on arrival would come before it.
    await hats.getByLabel("Message", { exact: true }).pressSequentially("ok");
    await eventually(async () => sent.some((f) => f.type === "typing"), { what: "the typing frame" });
    const typed = sent.findIndex((f) => f.type === "typing");
    assert.equal(readIndex(up), -1, "not marked read while scrolled up");
    assert.match(await hats.title(), /^\(1\) chatd$/);
    await hats.locator("#jump").click();
    await eventually(async () => readIndex(up) > typed, { what: "a read frame once it was on screen" });
    await message(ann, "unseen while scrolled up").getByTestId("seen").waitFor();
    await eventually(async () => (await hats.title()) === "chatd", { what: "no unread left" });
    await hats.getByLabel("Message", { exact: true }).fill("");

    // In a hidden page: not read, though at the bottom; read when the page comes back.
    await setVisible(hats, false);
    await eventually(async () => sent.some((f) => f.type === "presence" && f.state === "inactive"),
      { what: "the page to say it is hidden" });
    await send(ann, "unseen while hidden");
    await message(hats, "unseen while hidden").waitFor();
    const hidden = await message(hats, "unseen while hidden").getAttribute("data-message-id");
    await eventually(async () => (await hats.title()) === "(1) chatd", { what: "the unread count while hidden" });
    assert.equal(await message(ann, "unseen while hidden").getByTestId("seen").count(), 0);
    await setVisible(hats, true);
    // Marker: the "active" presence frame the page sends first when it comes back.
    await eventually(async () => readIndex(hidden) >= 0, { what: "a read frame after the page came back" });
    const back = sent.findLastIndex((f) => f.type === "presence" && f.state === "active");
    assert.ok(back >= 0 && readIndex(hidden) > back, "read only after the page was visible again");
    await message(ann, "unseen while hidden").getByTestId("seen").waitFor();
    await eventually(async () => (await hats.title()) === "chatd", { what: "no unread left" });

    // "Seen" survives a reload: it comes from the read state the server keeps.
    await ann.reload();
    await connected(ann);
    await message(ann, "unseen while hidden").getByTestId("seen").waitFor();
  });

  it("an admin deletes a message and it disappears from both other pages", async () => {
    const ann = people.ann.page;
    const hats = people.hats.page;
    await send(ann, "please delete me");
    await message(hats, "please delete me").waitFor();

    await loginAs("admin", "admin", "root", "change-me-now", "admin");
    const admin = people.admin.page;
    await admin.getByLabel("Open conversation by id").fill(conversationId);
    await admin.getByLabel("Open conversation by id").press("Enter");
    await message(admin, "please delete me").waitFor();
    admin.once("dialog", (d) => d.accept());
    await message(admin, "please delete me").getByRole("button", { name: "Delete message: please delete me" }).click();

    for (const page of [ann, hats, admin]) {
      await eventually(async () => (await message(page, "please delete me").count()) === 0,
        { what: "the deleted message to disappear" });
    }
    await ann.locator("#messages .tombstone").first().waitFor();
    await hats.locator("#messages .tombstone").first().waitFor();
    await shot("admin-deleted", admin);
  });

  it("an admin bans and unbans a participant", async () => {
    const admin = people.admin.page;
    const bob = people.bob.page;
    await admin.getByLabel("Participant id").fill(people.bob.id);
    await admin.getByRole("button", { name: "Ban", exact: true }).click();
    await admin.locator("#info", { hasText: "banned" }).waitFor();
    // Bob's connection is closed (1008) and the page says why instead of retrying forever.
    await bob.locator("#banner", { hasText: "Disconnected" }).filter({ hasText: "blocked" })
      .waitFor({ timeout: 15000 });
    await assert.rejects(server.login("user", "bob", PASSWORD), /403/);
    // Nothing can be sent: the composer says so and is disabled.
    assert.equal(await bob.getByLabel("Message", { exact: true }).isDisabled(), true);
    assert.equal(await bob.getByRole("button", { name: "Send" }).isDisabled(), true);
    // Without a connection of his own, the shop's presence is unknown to him, not "online".
    await bob.locator('#conversation-list [data-testid="presence"][data-state="unknown"]').first().waitFor();
    assert.equal(await bob.locator('#conversation-list [data-state="active"]').count(), 0);
    // Reconnecting while still banned says the same again.
    await bob.getByRole("button", { name: "Reconnect" }).click();
    await bob.locator("#banner", { hasText: "blocked" }).waitFor();

    await admin.getByRole("button", { name: "Unban", exact: true }).click();
    await admin.locator("#info", { hasText: "unbanned" }).waitFor();
    assert.ok(await server.login("user", "bob", PASSWORD));
    // After the unban, one click brings Bob back.
    await bob.getByRole("button", { name: "Reconnect" }).click();
    await connected(bob);
    assert.equal(await bob.getByLabel("Message", { exact: true }).isDisabled(), false);
    await send(bob, "back after the unban");
    await message(bob, "back after the unban").waitFor(); // acknowledged: no longer pending
  });

  it("after a server restart the pages reconnect and recover what they missed", async () => {
    const ann = people.ann.page;
    const hats = people.hats.page;
    await openConversation(ann);
    const shopSockets = [];
    hats.on("websocket", (ws) => {
      shopSockets.push(ws.url());
      if (process.env.CHATD_E2E_DEBUG) {
        console.log("shop ws", ws.url().replace(/access_token=[^&]+/, "access_token=..."));
        ws.on("close", () => console.log("shop ws closed"));
      }
    });

    await server.stop();
    await ann.locator("#banner", { hasText: "Offline" }).waitFor({ timeout: 15000 });
    await hats.locator("#banner", { hasText: "Offline" }).waitFor({ timeout: 15000 });
    // The shop's presence is unknown while Ann's own connection is down (not a green "online").
    const annRow = ann.locator(`#conversation-list button[data-conversation-id="${conversationId}"]`);
    await annRow.locator('[data-testid="presence"][data-state="unknown"]').waitFor();
    await ann.locator("#chat-header", { hasText: "status unknown" }).waitFor();
    // The countdown to the next attempt moves.
    const countdowns = new Set();
    await eventually(async () => {
      const t = await ann.locator("#banner").innerText();
      const m = /reconnecting in (\d+) s/.exec(t);
      if (m) countdowns.add(m[1]);
      return countdowns.size >= 2;
    }, { what: "the reconnect countdown to tick", interval: 200 });
    await shot("offline-customer", ann);

    // Written while the server is down: kept, and sent after the reconnect.
    await send(ann, "sent while the server was down");
    await ann.locator("#messages article.pending", { hasText: "sent while the server was down" }).waitFor();

    // Keep the shop away from the chat server for a while after the restart,
    // so that it misses more than the 20 messages the ready frame carries.
    let blockShop = true;
    await hats.routeWebSocket(/\/v1\/ws/, (ws) => {
      if (blockShop) ws.close({ code: 1013, reason: "blocked by the test" });
      else ws.connectToServer();
    });

    await server.start(); // same ports, same data dir
    // Back within the backoff's cap (5 s) and a connect, not half a minute later.
    const back = Date.now();
    await connected(ann, 10000);
    assert.ok(Date.now() - back < 8000, `reconnected ${Date.now() - back} ms after the server was back`);
    await message(ann, "sent while the server was down").waitFor({ timeout: 15000 });
    for (let i = 1; i <= 25; i++) {
      await server.api("POST", `/v1/conversations/${conversationId}/messages`, {
        token: people.ann.token,
        body: { client_msg_id: `missed-${i}`, body: `missed ${i}` },
      });
    }
    assert.equal(await hats.locator("#banner").isVisible(), true, "the shop is still disconnected");
    assert.equal(await message(hats, "missed 1").count(), 0);

    // The shop looks at Bob's conversation meanwhile, so Ann's 26 stay unread.
    await hats.locator("#conversation-list li", { hasText: "Bob Buyer" }).getByRole("button").click();
    await hats.locator("#chat-title", { hasText: "Bob Buyer" }).waitFor();

    blockShop = false;
    // The browser says it is online again: the client reconnects at once.
    await hats.evaluate(() => window.dispatchEvent(new Event("online")));
    await connected(hats, 30000);
    // The ready frame counts the missed messages; the replay after it must not count them again.
    // Marker: a live message, which comes after the replay.
    await server.api("POST", `/v1/conversations/${conversationId}/messages`, {
      token: people.ann.token, body: { client_msg_id: "after-replay", body: "after the replay" },
    });
    const annAtShop = hats.locator(`#conversation-list button[data-conversation-id="${conversationId}"]`);
    await annAtShop.filter({ hasText: "after the replay" }).waitFor();
    assert.equal(await annAtShop.getByTestId("unread").textContent(), "27 unread");
    await openConversation(hats);
    await message(hats, "sent while the server was down").waitFor({ timeout: 15000 });
    for (const i of [1, 5, 6, 25]) await message(hats, `missed ${i}`).waitFor();
    const bodies = await hats.locator("#messages article[data-message-id] p.body").allTextContents();
    assert.deepEqual(bodies.filter((b) => b.startsWith("missed ")),
      Array.from({ length: 25 }, (_, i) => `missed ${i + 1}`));
    const last = new URL(shopSockets.at(-1));
    assert.match(last.searchParams.get("since") ?? "", /^\d+$/, `reconnected with since=: ${last}`);
    assert.ok(last.searchParams.get("access_token"));

    // And the live channel works again both ways.
    await send(hats, "back online");
    await message(ann, "back online").waitFor();
    await shot("after-restart-shop", hats);
  });

  it("fits a phone screen and is keyboard-usable", async () => {
    const ann = people.ann.page;
    await ann.setViewportSize({ width: 390, height: 844 });
    // One pane at a time: the open chat, with a way back to the list.
    await ann.locator("#chat-title").waitFor();
    assert.equal(await ann.locator(".sidebar").isVisible(), false);
    const overflow = await ann.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling on a phone (overflow ${overflow}px)`);
    await shot("phone-chat", ann);
    await ann.getByRole("button", { name: "Back to conversations" }).click();
    await ann.locator(".sidebar").waitFor();

    // Keyboard only: focus the conversation, open it with Enter, type and send with Enter.
    const row = ann.locator(`#conversation-list button[data-conversation-id="${conversationId}"]`);
    await row.focus();
    await ann.keyboard.press("Enter");
    await ann.locator("#chat-title").waitFor();
    await ann.getByLabel("Message", { exact: true }).focus();
    await ann.keyboard.type("typed with the keyboard");
    await ann.keyboard.press("Enter");
    await message(people.hats.page, "typed with the keyboard").waitFor();
    await shot("phone-chat-sent", ann);

    // Every form control has a label.
    const unlabelled = await ann.evaluate(() =>
      [...document.querySelectorAll("input, textarea, select")]
        .filter((el) => !el.labels?.length && !el.getAttribute("aria-label"))
        .map((el) => el.id || el.outerHTML));
    assert.deepEqual(unlabelled, []);

    // Too large is refused with a clear error before sending.
    await ann.getByLabel("Message", { exact: true }).fill("x".repeat(4001));
    await ann.getByRole("button", { name: "Send" }).click();
    await ann.getByRole("alert").filter({ hasText: "too large" }).waitFor();
    await ann.setViewportSize({ width: 1200, height: 800 });
  });

  it("long names and words fit from 320 px up; a phone gets big targets and Enter for new lines", async () => {
    const phone = { viewport: { width: 320, height: 640 }, hasTouch: true, isMobile: true };
    // Display names are at most 64 characters (the server's limit); words in text have none.
    const shopName = "S" + "h".repeat(62) + "p";
    const userName = "L" + "o".repeat(62) + "g";
    const word = "Supercalifragilistic".repeat(4); // 80 characters without a space
    assert.equal(word.length, 80);
    await register("longshop", "shop", "longshop", shopName, word, phone);
    await register("longuser", "user", "longuser", userName, undefined, phone);
    const shop = people.longshop.page;
    const user = people.longuser.page;
    assert.deepEqual(await overflows(user), [], "the customer's empty list");
    assert.deepEqual(await smallTargets(user), [], "touch targets on the customer's list");

    await user.getByLabel("Start a chat with a shop").fill("Shhh");
    const result = user.getByRole("button", { name: new RegExp(shopName) });
    await result.waitFor();
    assert.deepEqual(await overflows(user), [], "search results with a long name and description");
    await result.click();
    await user.locator("#chat-title", { hasText: shopName }).waitFor();
    // (On a touch screen the Send button sends: see below.)
    await user.getByLabel("Message", { exact: true }).fill(`${word} and https://example.com/${word}`);
    await user.getByRole("button", { name: "Send" }).tap();
    await message(user, `${word} and https://example.com/${word}`).waitFor();

    // On a touch screen Enter is a new line; the Send button sends.
    const box = user.getByLabel("Message", { exact: true });
    await box.fill("line one");
    await box.press("Enter");
    await box.pressSequentially("line two");
    assert.equal(await box.inputValue(), "line one\nline two");
    await user.getByRole("button", { name: "Send" }).tap();
    await message(user, "line one\nline two").waitFor();
    assert.equal(await box.inputValue(), "");
    assert.deepEqual(await overflows(user), [], "the customer's chat at 320 px");
    assert.deepEqual(await smallTargets(user), [], "touch targets in the customer's chat");

    // The shop: the list and the chat with the long name, while it is typing.
    const row = shop.locator("#conversation-list button.conv", { hasText: userName });
    await row.waitFor();
    assert.deepEqual(await overflows(shop), [], "the shop's list at 320 px");
    await row.click();
    await message(shop, "line one\nline two").waitFor();
    assert.equal(await message(shop, "line one").count(), 0, "Enter did not send half a message");
    // The shop types: the customer's 320 px page shows the long name typing.
    await shop.getByLabel("Message", { exact: true }).pressSequentially("x");
    await user.locator("#typing", { hasText: `${shopName} is typing` }).waitFor();
    assert.deepEqual(await overflows(user), [], "the long name typing at 320 px");
    for (const width of [320, 390, 800, 1200]) {
      await shop.setViewportSize({ width, height: 700 });
      assert.deepEqual(await overflows(shop), [], `the shop's chat at ${width} px`);
    }
    assert.deepEqual(await smallTargets(shop), [], "touch targets in the shop's chat");
    await shot("phone-long-names", user);

    // Support staff at 320 px: the header with ban buttons for the long name.
    const admin = people.admin.page;
    const longConversation = await shop.locator("#conversation-list button.conv.active")
      .getAttribute("data-conversation-id");
    await admin.setViewportSize({ width: 320, height: 700 });
    await admin.goto(`${server.baseUrl}/c/${longConversation}`);
    await message(admin, "line one\nline two").waitFor();
    assert.deepEqual(await overflows(admin), [], "support staff's view at 320 px");
    await admin.setViewportSize({ width: 1200, height: 800 });
  });

  it("meets WCAG AA contrast in light and dark mode, says presence in words, and speaks no jargon", async () => {
    const ann = people.ann.page;
    const hats = people.hats.page;
    await openConversation(ann);
    await openConversation(hats);
    // Own bubbles with Edit / Delete, the other side's, times, receipts, the list, the composer.
    await message(ann, "back online").waitFor();
    for (const scheme of ["light", "dark"]) {
      for (const [who, page] of [["customer", ann], ["shop", hats]]) {
        await page.emulateMedia({ colorScheme: scheme });
        assert.deepEqual(await accessibilityProblems(page), [], `${who}'s chat in ${scheme} mode`);
      }
      // A field's border against the panel: at least 3:1 (WCAG 1.4.11, which axe does not check).
      const border = await ann.locator("#composer").evaluate((el) => {
        const rgb = (c) => c.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
        const lum = ([r, g, b]) => [r, g, b].map((v) => {
          const c = v / 255;
          return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        }).reduce((a, c, i) => a + c * [0.2126, 0.7152, 0.0722][i], 0);
        const a = lum(rgb(getComputedStyle(el).borderTopColor));
        const b = lum(rgb(getComputedStyle(el.closest(".composer")).backgroundColor));
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      });
      assert.ok(border >= 3, `the composer's border is ${border.toFixed(2)}:1 in ${scheme} mode`);
      await shot(`chat-customer-${scheme}`, ann);
    }
    for (const page of [ann, hats]) await page.emulateMedia({ colorScheme: "light" });
    // Support staff's view (a conversation they are not a member of, with ban buttons) and the
    // notifications panel with its alert settings.
    const admin = people.admin.page;
    await admin.locator("#chat-title").waitFor();
    await hats.getByRole("button", { name: "Notifications" }).click();
    await hats.locator("#alert-settings input").first().waitFor();
    for (const scheme of ["light", "dark"]) {
      for (const [what, page] of [["support staff's view", admin], ["the notifications panel", hats]]) {
        await page.emulateMedia({ colorScheme: scheme });
        assert.deepEqual(await accessibilityProblems(page), [], `${what} in ${scheme} mode`);
      }
    }
    for (const page of [admin, hats]) await page.emulateMedia({ colorScheme: "light" });
    await hats.locator("#notifications").getByRole("button", { name: "Close" }).click();
    const login = await browser.newPage();
    await login.goto(server.baseUrl + "/");
    await login.getByLabel("Username").waitFor();
    for (const scheme of ["light", "dark"]) {
      await login.emulateMedia({ colorScheme: scheme });
      assert.deepEqual(await accessibilityProblems(login), [], `the log-in page in ${scheme} mode`);
    }
    // No jargon: account types by their names, no "(user)".
    assert.deepEqual(await login.getByLabel("I am a").locator("option").allInnerTexts(),
      ["Customer", "Shop", "Support staff"]);
    await login.close();

    // Presence in words next to the dot, in the list and in the header.
    const row = ann.locator(`#conversation-list button[data-conversation-id="${conversationId}"]`);
    await row.locator(".presence-word", { hasText: /^(online|away|offline)$/ }).waitFor();
    await ann.locator("#chat-header", { hasText: /online|away|offline/ }).waitFor();
    // Who I am in words; no raw ids anywhere a customer or a shop reads.
    await ann.getByTestId("me").filter({ hasText: "Ann Customer · Customer" }).waitFor();
    await hats.getByTestId("me").filter({ hasText: "Hat Shop · Shop" }).waitFor();
    for (const page of [ann, hats]) {
      assert.doesNotMatch(await page.locator("body").innerText(), /\d{12,}|#\d/);
    }
  });

  it("the message list is one tab stop: arrow keys inside, actions on a menu key, Escape leaves edit mode and panels", async () => {
    const hats = people.hats.page;
    await openConversation(hats);
    await send(people.ann.page, "fix me by keyboard");
    await message(hats, "fix me by keyboard").waitFor();
    // A fresh tab of Ann's, driven by the keyboard only.
    const tab = await people.ann.context.newPage();
    await tab.goto(server.baseUrl + "/");
    await tab.getByTestId("me").waitFor();
    await connected(tab);
    const focused = () => tab.evaluate(() => {
      const el = document.activeElement;
      return {
        id: el.id,
        role: el.getAttribute("role"),
        text: el.textContent.trim(),
        messageId: el.dataset.messageId ?? null,
        body: el.querySelector(":scope > p.body")?.textContent ?? null,
        value: el.value ?? null,
      };
    });

    // The first stop is the skip link; with no conversation open it goes to the list.
    await tab.keyboard.press("Tab");
    assert.equal((await focused()).text, "Skip to message box");
    await tab.keyboard.press("Enter");
    assert.match((await focused()).text, /Hat Shop/);
    await tab.keyboard.press("Enter");
    await tab.locator("#chat-title", { hasText: "Hat Shop" }).waitFor();
    await message(tab, "fix me by keyboard").waitFor();
    assert.equal((await focused()).id, "composer");

    // One tab stop for the whole list, on the newest message; Tab goes on to the composer.
    const tabbable = await tab.locator('#messages [tabindex="0"], #messages :is(button, a):not([tabindex="-1"])')
      .count();
    assert.equal(tabbable, 1, "one tab stop in the message list");
    await tab.keyboard.press("Shift+Tab");
    assert.equal((await focused()).body, "fix me by keyboard");
    await tab.keyboard.press("Tab");
    assert.equal((await focused()).id, "composer");
    await tab.keyboard.press("Shift+Tab");
    // The arrow keys move between messages.
    const newest = (await focused()).messageId;
    await tab.keyboard.press("ArrowUp");
    const above = await focused();
    assert.ok(above.messageId && BigInt(above.messageId) < BigInt(newest), "ArrowUp: the message above");
    await tab.keyboard.press("ArrowDown");
    assert.equal((await focused()).messageId, newest);
    await tab.keyboard.press("ArrowUp");
    await tab.keyboard.press("End");
    assert.equal((await focused()).messageId, newest);

    // Enter opens the message's actions as a menu; arrows move in it; Escape closes it.
    await tab.keyboard.press("Enter");
    assert.deepEqual([(await focused()).role, (await focused()).text], ["menuitem", "Edit"]);
    assert.deepEqual(await accessibilityProblems(tab), [], "the open actions menu");
    await tab.keyboard.press("ArrowDown");
    assert.equal((await focused()).text, "Delete");
    await tab.keyboard.press("ArrowDown");
    assert.equal((await focused()).text, "Edit");
    await tab.keyboard.press("Escape");
    assert.equal((await focused()).messageId, newest);
    assert.equal(await tab.getByRole("menu").count(), 0);
    // The context-menu key opens it too; Edit, type, Enter saves.
    await tab.keyboard.press("ContextMenu");
    assert.equal((await focused()).text, "Edit");
    await tab.keyboard.press("Enter");
    assert.equal((await focused()).value, "fix me by keyboard");
    await tab.keyboard.press("ControlOrMeta+A");
    await tab.keyboard.type("fixed by keyboard");
    await tab.keyboard.press("Enter");
    await message(hats, "fixed by keyboard").filter({ hasText: "edited" }).waitFor();
    assert.equal((await focused()).id, "composer");

    // Escape leaves edit mode unsaved, with the focus back in the composer.
    await tab.keyboard.press("Shift+Tab");
    assert.equal((await focused()).body, "fixed by keyboard");
    await tab.keyboard.press("Enter");
    await tab.keyboard.press("Enter");
    await tab.keyboard.type(" and more");
    await tab.keyboard.press("Escape");
    assert.equal((await focused()).id, "composer");
    assert.equal(await tab.locator("#messages textarea").count(), 0);
    await message(tab, "fixed by keyboard").waitFor();

    // Escape closes the notifications panel and gives the focus back to its button.
    await tab.getByRole("button", { name: "Notifications" }).focus();
    await tab.keyboard.press("Enter");
    await tab.locator("#notifications").waitFor();
    await tab.keyboard.press("Escape");
    await tab.locator("#notifications").waitFor({ state: "hidden" });
    assert.equal((await focused()).text, "Notifications");
    // With a conversation open, the skip link goes to the composer.
    await tab.keyboard.press("Shift+Tab");
    assert.equal((await focused()).text, "Skip to message box");
    await tab.keyboard.press("Enter");
    assert.equal((await focused()).id, "composer");
    await tab.close();
  });

  it("a polite live region announces messages from others, not one's own", async () => {
    const ann = people.ann.page;
    const hats = people.hats.page;
    const bob = people.bob.page;
    await openConversation(ann);
    await openConversation(hats);
    const announced = (page) => page.locator("#announcer p").allTextContents();
    assert.equal(await ann.locator("#announcer").getAttribute("aria-live"), "polite");
    // The message list itself is re-rendered whole: it must not be a live region too.
    assert.equal(await ann.locator("#messages").getAttribute("aria-live"), null);
    assert.notEqual(await ann.locator("#messages").getAttribute("role"), "log");

    await send(hats, "can you hear me?");
    await eventually(async () => (await announced(ann)).includes("Hat Shop: can you hear me?"),
      { what: "the shop's message announced on Ann's page" });
    // One's own message, written in another tab, comes to this page as a message like any other:
    // it is not announced. Marker: the shop's answer to it, which comes later.
    const other = await people.ann.context.newPage();
    await other.goto(`${server.baseUrl}/c/${conversationId}`);
    await connected(other);
    await send(other, "my own words");
    await message(ann, "my own words").waitFor();
    await message(hats, "my own words").waitFor();
    await other.close();
    await send(hats, "after your words");
    await eventually(async () => (await announced(ann)).includes("Hat Shop: after your words"),
      { what: "the answer announced" });
    assert.deepEqual((await announced(ann)).filter((t) => t.includes("my own words")), []);
    // A message in another conversation says whom it is from.
    await send(bob, "bob again");
    await eventually(async () => (await announced(hats)).includes("New message from Bob Buyer: bob again"),
      { what: "Bob's message announced on the shop's page" });
  });

  it("desktop notifications and a sound for messages while the page is hidden, asked for only by a click", async () => {
    // The browser's Notification, recorded; the permission starts as on a first visit and is kept
    // for the tab (sessionStorage), as a browser keeps it. Sounds are counted.
    const init = () => {
      window.__notes = [];
      window.__asked = 0;
      window.__beeps = 0;
      const key = "test.notification-permission";
      window.Notification = class {
        static get permission() {
          return sessionStorage.getItem(key) ?? "default";
        }
        static async requestPermission() {
          window.__asked++;
          sessionStorage.setItem(key, "granted");
          return "granted";
        }
        constructor(title, options = {}) {
          this.title = title;
          this.body = options.body;
          this.onclick = null;
          window.__notes.push(this);
        }
        close() {}
      };
      if (window.AudioContext) {
        const create = AudioContext.prototype.createOscillator;
        AudioContext.prototype.createOscillator = function () {
          window.__beeps++;
          return create.call(this);
        };
      }
    };
    await register("cathy", "user", "cathy", "Cathy Client", undefined, { permissions: ["notifications"] }, init);
    const cathy = people.cathy.page;
    const hats = people.hats.page;
    const notes = () => cathy.evaluate(() => window.__notes.map((n) => `${n.title}: ${n.body}`));
    const beeps = () => cathy.evaluate(() => window.__beeps);
    const prefs = () => cathy.evaluate((id) => JSON.parse(localStorage.getItem(`chatd.alerts.${id}`)), people.cathy.id);
    assert.equal(await cathy.evaluate(() => window.__asked), 0, "not asked on load");

    await cathy.getByLabel("Start a chat with a shop").fill("Hat");
    await cathy.getByRole("button", { name: /Hat Shop/ }).click();
    await send(cathy, "hello from cathy");
    await hats.locator("#conversation-list li", { hasText: "Cathy Client" }).getByRole("button").click();
    await message(hats, "hello from cathy").waitFor();

    // Turned on in the notifications panel: only then the browser asks.
    await cathy.getByRole("button", { name: "Notifications" }).click();
    const desktop = cathy.getByLabel("Desktop notifications");
    const sound = cathy.getByLabel("Sound");
    assert.equal(await desktop.isChecked(), false);
    assert.equal(await sound.isChecked(), false);
    await desktop.check();
    assert.equal(await cathy.evaluate(() => window.__asked), 1);
    assert.deepEqual(await prefs(), { desktop: true, sound: false });
    await sound.check();
    assert.deepEqual(await prefs(), { desktop: true, sound: true });
    assert.equal(await beeps(), 1, "turning the sound on plays it once");

    // Hidden (looking at the panel): the shop's reply is notified, with a sound; clicking the
    // notification opens its conversation.
    await setVisible(cathy, false);
    await send(hats, "a reply while you were away");
    await eventually(async () => (await notes()).includes("Hat Shop: a reply while you were away"),
      { what: "a desktop notification" });
    assert.equal(await beeps(), 2);
    await cathy.evaluate(() => window.__notes.at(-1).onclick());
    await cathy.locator("#notifications").waitFor({ state: "hidden" });
    await message(cathy, "a reply while you were away").waitFor();

    // Visible: nothing. Marker: the message is on screen, which the same handler does.
    await setVisible(cathy, true);
    await send(hats, "a reply while you look");
    await message(cathy, "a reply while you look").waitFor();
    assert.deepEqual((await notes()).filter((n) => n.includes("while you look")), []);
    assert.equal(await beeps(), 2);

    // Remembered after a reload, still without asking on load.
    await cathy.reload();
    await connected(cathy);
    await cathy.getByRole("button", { name: "Notifications" }).click();
    assert.equal(await desktop.isChecked(), true);
    assert.equal(await sound.isChecked(), true);
    assert.equal(await cathy.evaluate(() => window.__asked), 0);
    await sound.uncheck();
    assert.deepEqual(await prefs(), { desktop: true, sound: false });
    await people.cathy.context.close();
    delete people.cathy;
  });

  it("keeps a screenshot for the README", async () => {
    // CHATD_E2E_UPDATE_DOCS=1 refreshes docs/screenshot*.png from this run.
    if (process.env.CHATD_E2E_UPDATE_DOCS === "1") {
      for (const [from, to] of [["chat-customer", "screenshot"], ["structure-shop", "screenshot-shop"],
        ["admin-deleted", "screenshot-support"], ["phone-long-names", "screenshot-phone"],
        ["chat-customer-dark", "screenshot-dark"]]) {
        copyFileSync(join(screenshotDir, `${from}.png`), new URL(`../../docs/${to}.png`, import.meta.url));
      }
    }
  });
});

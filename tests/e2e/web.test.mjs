// Browser tests of the web client against a real chatd: three people (a
// customer, a shop, an admin) in three browser contexts of the system
// chromium. Run by ctest (label e2e) or `npm test` in tests/e2e.
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
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

let server;
let browser;
const people = {}; // name -> { context, page, token, id }
let conversationId;

// ---- page helpers ----

async function newPerson(name) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`[${name}] page error:`, err));
  page.on("console", (msg) => {
    if (msg.type() === "error") console.error(`[${name}] console:`, msg.text());
  });
  people[name] = { context, page };
  return page;
}

async function register(name, kind, username, displayName, description) {
  const page = await newPerson(name);
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
  const session = await p.page.evaluate(() => JSON.parse(sessionStorage.getItem("chatd.session")));
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
    await bob.locator("#banner", { hasText: "Disconnected" }).waitFor({ timeout: 15000 });
    await assert.rejects(server.login("user", "bob", PASSWORD), /403/);

    await admin.getByRole("button", { name: "Unban", exact: true }).click();
    await admin.locator("#info", { hasText: "unbanned" }).waitFor();
    assert.ok(await server.login("user", "bob", PASSWORD));
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
    await connected(ann, 30000);
    await message(ann, "sent while the server was down").waitFor({ timeout: 15000 });
    for (let i = 1; i <= 25; i++) {
      await server.api("POST", `/v1/conversations/${conversationId}/messages`, {
        token: people.ann.token,
        body: { client_msg_id: `missed-${i}`, body: `missed ${i}` },
      });
    }
    assert.equal(await hats.locator("#banner").isVisible(), true, "the shop is still disconnected");
    assert.equal(await message(hats, "missed 1").count(), 0);

    blockShop = false;
    // The browser says it is online again: the client reconnects at once.
    await hats.evaluate(() => window.dispatchEvent(new Event("online")));
    await connected(hats, 30000);
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

  it("keeps a screenshot for the README", async () => {
    // CHATD_E2E_UPDATE_DOCS=1 refreshes docs/screenshot.png from this run.
    if (process.env.CHATD_E2E_UPDATE_DOCS === "1") {
      copyFileSync(join(screenshotDir, "chat-customer.png"), new URL("../../docs/screenshot.png", import.meta.url));
    }
  });
});

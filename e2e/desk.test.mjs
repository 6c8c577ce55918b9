// The agent desk in a real browser (headless Chromium driven by playwright-core).
// Run by `cargo test e2e` (tests/it/e2e.rs), which starts linechat with a fake LINE and a
// control server, and sets LINECHAT_URL, CONTROL_URL, AGENT_USER, AGENT_PASSWORD, ARTIFACTS.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { ARTIFACTS, browser, env, eventually } from "./browser.mjs";

const APP = env("LINECHAT_URL");
const CONTROL = env("CONTROL_URL");
const USER = env("AGENT_USER");
const PASSWORD = env("AGENT_PASSWORD");
/// How soon a customer's message must show on an open page.
const LIVE_MS = 1000;
const XSS = `<script>alert(1)</script><img src=x onerror=alert(1)>`;

// --- helpers -------------------------------------------------------------------------------

/// A fresh LINE user id (U + 32 hex), so tests never share a conversation.
const lineUser = () => "U" + randomBytes(16).toString("hex");
const unique = (what) => `${what} ${randomBytes(4).toString("hex")}`;

async function control(method, path, body) {
  const r = await fetch(CONTROL + path, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!r.ok) assert.fail(`control ${path}: ${r.status} ${await r.text()}`);
  return method === "GET" ? r.json() : null;
}
const customerSays = (user, text, name) => control("POST", "/webhook-text", { user, name, text });
const delivered = () => control("GET", "/delivered");

/// A page in a new context (own cookies), failing the test on any JS dialog or page error.
async function newPage(t, { viewport = { width: 1280, height: 800 }, noEventSource = false } = {}) {
  const context = await browser.newContext({ viewport, locale: "en-US" });
  t.after(() => context.close());
  if (noEventSource) await context.addInitScript(() => { delete window.EventSource; });
  const page = await context.newPage();
  page.dialogs = [];
  page.on("dialog", (d) => { page.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  return page;
}

async function signIn(page) {
  await page.goto(APP + "/login");
  await page.fill("input[name=username]", USER);
  await page.fill("input[name=password]", PASSWORD);
  await Promise.all([page.waitForURL(APP + "/"), page.click("form button[type=submit]")]);
}

/// A conversation with a new customer (first message `first`), open in a signed-in page;
/// returns its id.
async function openConversation(page, name, first = unique("hello")) {
  const user = lineUser();
  await customerSays(user, first, name);
  await signIn(page);
  const row = page.locator("#conversation-list li", { hasText: first });
  await row.waitFor({ timeout: 10000 });
  await Promise.all([page.waitForURL(/\/conversations\/\d+$/), row.locator("a").click()]);
  await page.locator(".thread .msg.in", { hasText: first }).waitFor();
  const id = Number(new URL(page.url()).pathname.split("/").pop());
  return { user, id };
}

const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, name), fullPage: false });

/// The customer's `text` shows in the open thread and in the list, within LIVE_MS of the
/// webhook being accepted, on the same document (no reload).
async function expectLive(page, user, text) {
  await page.evaluate(() => { window.__sameDocument = true; });
  await customerSays(user, text);
  const started = Date.now();
  await page.locator(".thread .msg.in .bubble", { hasText: text }).waitFor({ timeout: LIVE_MS });
  const left = Math.max(1, LIVE_MS - (Date.now() - started));
  await page.locator("#conversation-list .preview", { hasText: text }).waitFor({ timeout: left });
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was not reloaded");
}

// --- tests ---------------------------------------------------------------------------------

test("an agent signs in through the login form", async (t) => {
  const page = await newPage(t);
  await page.goto(APP + "/");
  assert.match(page.url(), /\/login/, "signed out, the desk sends you to the login page");
  await shot(page, "login.png");
  await page.fill("input[name=username]", USER);
  await page.fill("input[name=password]", "wrong password");
  await page.click("form button[type=submit]");
  await page.locator(".card .error").waitFor();
  await signIn(page);
  assert.equal(page.url(), APP + "/");
  assert.equal((await page.locator(".topbar .who").textContent()).trim(), USER);
});

test("a customer's message appears live (SSE) in the thread and the list", async (t) => {
  const page = await newPage(t);
  const sse = [];
  page.on("request", (r) => { if (r.url().includes("/live/sse")) sse.push(r.url()); });
  const { user } = await openConversation(page, "Mei SSE");
  await expectLive(page, user, unique("live over SSE"));
  assert.ok(sse.length > 0, "the page used SSE");
  await shot(page, "inbox.png");
});

test("without EventSource, the long-poll path brings the message live", async (t) => {
  const page = await newPage(t, { noEventSource: true });
  const transports = [];
  page.on("request", (r) => { if (r.url().includes("/live/")) transports.push(new URL(r.url()).pathname); });
  const { user } = await openConversation(page, "Mei Poll");
  assert.equal(await page.evaluate(() => typeof window.EventSource), "undefined");
  await expectLive(page, user, unique("live over long-poll"));
  assert.ok(transports.includes("/live/poll"), `long-poll was used: ${transports}`);
  assert.ok(!transports.includes("/live/sse"), `SSE was not tried: ${transports}`);
  assert.deepEqual(page.errors, []);
});

test("a reply sent with Enter reaches LINE and shows as sent", async (t) => {
  const page = await newPage(t);
  const { user } = await openConversation(page, "Chen Reply");
  const reply = unique("您好, how can I help?");
  await page.fill(".composer textarea", reply);
  await page.press(".composer textarea", "Enter");
  const row = page.locator(".thread .msg.out", { hasText: reply });
  await row.waitFor();
  assert.equal(await page.inputValue(".composer textarea"), "", "the composer is cleared");
  const got = await eventually("LINE received the reply", async () =>
    (await delivered()).find((d) => d.text === reply));
  assert.equal(got.to ?? user, user);
  await row.locator(".status.sent").waitFor({ timeout: 10000 });
  assert.match(await row.locator(".status").textContent(), /✓/);
  assert.equal(await row.count(), 1, "the reply shows once");
});

test("a LINE failure shows its reason and Retry sends the message", async (t) => {
  const page = await newPage(t);
  await openConversation(page, "Lin Retry");
  const reason = "The request body has 1 error(s)";
  await control("POST", "/inject-push-failure", { status: 400, message: reason });
  const reply = unique("this one fails first");
  await page.fill(".composer textarea", reply);
  await page.press(".composer textarea", "Enter");
  const row = page.locator(".thread .msg.out", { hasText: reply });
  await row.locator(".status.failed").waitFor({ timeout: 15000 });
  assert.match(await row.locator(".meta .error").textContent(), /The request body has 1 error\(s\)/);
  const retry = row.locator(".retry button");
  await retry.waitFor();
  await shot(page, "failed-retry.png");
  assert.equal((await delivered()).filter((d) => d.text === reply).length, 0);
  await retry.click();
  await eventually("LINE received the retried message", async () =>
    (await delivered()).some((d) => d.text === reply));
  await page.locator(".thread .msg.out", { hasText: reply }).locator(".status.sent")
    .waitFor({ timeout: 10000 });
  assert.equal(await page.locator(".thread .msg.out", { hasText: reply }).locator(".retry").count(), 0);
  assert.equal((await delivered()).filter((d) => d.text === reply).length, 1, "sent exactly once");
});

test("markup in a message and a display name renders as text", async (t) => {
  const page = await newPage(t);
  const name = `Eve ${XSS}`;
  const { user } = await openConversation(page, name, `first ${XSS}`);
  // Live (out-of-band swap) and then server-rendered (reload).
  await customerSays(user, `live ${XSS}`);
  const live = page.locator(".thread .msg.in .bubble", { hasText: `live ${XSS}` });
  await live.waitFor({ timeout: 5000 });
  for (const reload of [false, true]) {
    if (reload) await page.reload();
    for (const text of [`first ${XSS}`, `live ${XSS}`]) {
      const bubble = page.locator(".thread .msg.in .bubble", { hasText: text });
      assert.equal((await bubble.textContent()).trim(), text, `reload=${reload}`);
      assert.ok(await bubble.isVisible());
    }
    assert.equal((await page.locator(".thread-head h2").textContent()).trim(), name);
    const listName = page.locator("#conversation-list .name", { hasText: name });
    assert.equal(await listName.count(), 1, `the list shows the name as text (reload=${reload})`);
    assert.equal(await page.locator("img[src=x], .thread script, #conversation-list script").count(), 0);
  }
  await page.waitForTimeout(300);
  assert.deepEqual(page.dialogs, [], "no script ran");
});

test("a POST without the CSRF token is refused with 403", async (t) => {
  const page = await newPage(t);
  const { id } = await openConversation(page, "Forge Test");
  const nonce = await page.inputValue("#composer-nonce");
  const forged = unique("forged");
  const url = `${APP}/conversations/${id}/messages`;
  const r = await page.request.post(url, { form: { text: forged, nonce } });
  assert.equal(r.status(), 403, "no token: refused");
  const retry = await page.request.post(`${APP}/messages/1/retry`, { form: {} });
  assert.equal(retry.status(), 403, "retry without a token: refused");
  const wrong = await page.request.post(url, { form: { text: forged, nonce, csrf: "not-the-token" } });
  assert.equal(wrong.status(), 403, "a wrong token: refused");
  // The same request with the session's token is accepted: the 403s were the token's doing.
  const csrf = await page.inputValue(".composer input[name=csrf]");
  const ok = await page.request.post(url, { form: { text: unique("with token"), nonce, csrf } });
  assert.equal(ok.status(), 200);
  await page.waitForTimeout(300);
  assert.ok(!(await delivered()).some((d) => d.text === forged), "the forged text was not sent");
  assert.equal(await page.locator(".thread .msg.out", { hasText: forged }).count(), 0);
});

test("phone width: the inbox and an open conversation", async (t) => {
  const page = await newPage(t, { viewport: { width: 390, height: 844 } });
  const { user } = await openConversation(page, "Phone Customer");
  await customerSays(user, unique("a longer message to see how bubbles wrap on a narrow screen"));
  await page.locator(".thread .msg.in").nth(1).waitFor({ timeout: 5000 });
  await shot(page, "phone-conversation.png");
  await page.goto(APP + "/");
  await shot(page, "phone-inbox.png");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling at 390 px (overflow ${overflow}px)`);
});

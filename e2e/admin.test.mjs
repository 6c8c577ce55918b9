// The admin page and the language menu in a real browser (see desk.test.mjs for the setup).
// Run by `cargo test e2e` (tests/it/e2e.rs), which sets LINECHAT_URL, ADMIN_USER,
// AGENT_PASSWORD and ARTIFACTS.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { ARTIFACTS, browser, env, eventually } from "./browser.mjs";

const APP = env("LINECHAT_URL");
const ADMIN = env("ADMIN_USER");
const PASSWORD = env("AGENT_PASSWORD");

async function newPage(t) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  t.after(() => context.close());
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  return page;
}

async function signIn(page, user, password) {
  await page.goto(APP + "/login");
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", password);
  await Promise.all([page.waitForURL(APP + "/"), page.click("main form button[type=submit]")]);
}

test("an admin adds an agent, who can then sign in", async (t) => {
  const page = await newPage(t);
  await signIn(page, ADMIN, PASSWORD);
  await Promise.all([page.waitForURL(APP + "/admin"), page.click(".topbar a.admin-link")]);
  const username = "new-" + randomBytes(3).toString("hex");
  const add = page.locator("form[action='/admin/agents']");
  await add.locator("input[name=username]").fill(username);
  await add.locator("input[name=display_name]").fill("Mei <Lin>");
  await add.locator("input[name=password]").fill("short");
  // The browser's own check (minlength) stops a short password before it is sent.
  await add.locator("button[type=submit]").click();
  assert.equal(page.url(), APP + "/admin");
  await add.locator("input[name=password]").fill("a long enough password");
  await Promise.all([page.waitForURL(/\/admin\?done=added$/), add.locator("button[type=submit]").click()]);
  await page.locator(".notice").waitFor();
  const row = page.locator("tr", { hasText: username });
  assert.equal((await row.locator("td").nth(1).textContent()).trim(), "Mei <Lin>");
  assert.match(await page.locator("#webhook-url").inputValue(), /^https:\/\/.+\/line\/webhook$/);
  await page.screenshot({ path: join(ARTIFACTS, "admin.png") });

  const agent = await newPage(t);
  await signIn(agent, username, "a long enough password");
  assert.equal(await agent.locator(".topbar a.admin-link").count(), 0, "no admin link for agents");

  // Deactivating asks first: dismissed, nothing happens; accepted, the agent is out at once.
  const deactivate = page.locator("tr", { hasText: username }).locator("button", { hasText: "Deactivate" });
  page.once("dialog", (d) => d.dismiss());
  await deactivate.click();
  assert.equal((await page.locator("tr", { hasText: username }).locator("td.state").textContent()).trim(), "active");
  page.once("dialog", (d) => d.accept());
  await Promise.all([page.waitForURL(/\/admin\?done=updated$/), deactivate.click()]);
  const state = page.locator("tr", { hasText: username }).locator("td.state");
  assert.equal((await state.textContent()).trim(), "deactivated");
  await agent.goto(APP + "/");
  assert.match(agent.url(), /\/login$/, "the deactivated agent's session ended");
  assert.deepEqual(page.errors, []);
});

test("an agent switches the desk to Traditional Chinese and back", async (t) => {
  const page = await newPage(t);
  await signIn(page, ADMIN, PASSWORD);
  assert.equal(await page.locator("nav.list h2").textContent(), "Conversations");
  // Picking a language applies it at once (app.js submits the menu).
  await Promise.all([
    page.waitForLoadState("load"),
    page.waitForResponse((r) => r.url().endsWith("/me/language")),
    page.selectOption(".lang-menu select", "zh-TW"),
  ]);
  await page.locator("nav.list h2", { hasText: "對話" }).waitFor();
  assert.equal(await page.getAttribute("html", "lang"), "zh-Hant-TW");
  await page.goto(APP + "/admin");
  await page.locator("h1", { hasText: "系統管理" }).waitFor();
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/me/language")),
    page.selectOption(".lang-menu select", ""),
  ]);
  await page.locator("h1", { hasText: "Administration" }).waitFor();
  assert.equal(new URL(page.url()).pathname, "/admin", "back where the menu was used");
  assert.deepEqual(page.errors, []);
});

const CONTROL = env("CONTROL_URL");
const AGENT = env("AGENT_USER");

async function control(path, body) {
  const r = await fetch(CONTROL + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!r.ok) assert.fail(`control ${path}: ${r.status} ${await r.text()}`);
  const text = await r.text();
  return text ? JSON.parse(text) : null;
}

test("messages are marked read on LINE when opened and when they arrive in view", async (t) => {
  const user = "U" + randomBytes(16).toString("hex");
  const first = "first " + randomBytes(4).toString("hex");
  await control("/webhook-text", { user, text: first });
  const page = await newPage(t);
  await signIn(page, AGENT, PASSWORD);
  const row = page.locator("#conversation-list li", { hasText: first });
  await row.waitFor({ timeout: 10000 });
  await Promise.all([page.waitForURL(/\/conversations\/\d+$/), row.locator("a").click()]);
  const marked = () => control("/marked-read", { user });
  await eventually("marked read on opening", async () => (await marked()).length === 1);

  const second = "second " + randomBytes(4).toString("hex");
  await control("/webhook-text", { user, text: second });
  await page.locator(".thread .msg.in", { hasText: second }).waitFor();
  await eventually("the live message marked read", async () => (await marked()).length === 2);
  assert.deepEqual(page.errors, []);
});

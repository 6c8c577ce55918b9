// Working together, in two real browsers: agent A assigns a conversation to agent B, and B's
// desk follows live (no reload): the row's assignee, B's "Mine" list, the unread badge and
// the tab title as the customer writes, the status A sets. Run by `cargo test e2e`
// (tests/it/e2e.rs), which also sets AGENT2_USER.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { ARTIFACTS, browser, env, eventually } from "./browser.mjs";

const [APP, CONTROL, A, B, PASSWORD] =
  ["LINECHAT_URL", "CONTROL_URL", "AGENT_USER", "AGENT2_USER", "AGENT_PASSWORD"].map(env);

const tag = () => randomBytes(4).toString("hex");

/// The customer (a fresh LINE user) writes `text`; LINE knows them as `name`.
async function customer(user, text, name) {
  const r = await fetch(CONTROL + "/webhook-text", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user, text, name }),
  });
  assert.equal(r.status, 200, `webhook: ${await r.text()}`);
}

/// A desk page in its own context (own cookies), signed in as `who`, on the inbox.
async function desk(t, who, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, locale: "en-US" });
  t.after(() => context.close());
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  await page.goto(APP + "/login");
  await page.fill("input[name=username]", who);
  await page.fill("input[name=password]", PASSWORD);
  await Promise.all([page.waitForURL(APP + "/"), page.click("form button[type=submit]")]);
  // Set once; a reload would lose it.
  await page.evaluate(() => { window.__sameDocument = true; });
  return page;
}

/// The number in "(N) …" of the tab title (0 without one).
const titleCount = async (page) => Number((/^\((\d+)\) /.exec(await page.title()) || [0, 0])[1]);

const until = (what, check) => eventually(what, check, 10000);

/// Waits until htmx has wired up `selector` (a swapped-in form listens only after that; a
/// person cannot act in those few milliseconds, a test can).
const wired = (page, selector) => until(`htmx wired ${selector}`,
  () => page.evaluate((s) => { const el = document.querySelector(s); return !!(el && el["htmx-internal-data"]); }, selector));

const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, `collab-${name}.png`) });

test("A assigns a conversation to B; B sees it, its unread count and its status live", async (t) => {
  const user = "U" + randomBytes(16).toString("hex");
  const name = `Collab ${tag()}`;
  const first = `hello ${tag()}`;
  await customer(user, first, name);

  const b = await desk(t, B);
  const a = await desk(t, A);
  const bRow = b.locator("#conversation-list li", { hasText: first });
  await bRow.waitFor();
  const id = (await bRow.getAttribute("id")).replace("conv-", "");
  const me = await b.locator("#conversation-list").getAttribute("data-me");
  await until("B's badge says 1", async () => (await bRow.locator(".badge").textContent()) === "1");
  const bTitle = await titleCount(b);
  assert.ok(bTitle >= 1, `B's tab title counts the unread message: ${await b.title()}`);

  // B narrows the list to Mine (the filter goes into the address bar): nothing there yet.
  await b.locator(".filters label", { hasText: "Mine" }).click();
  await b.waitForURL(/who=mine/);
  await b.locator("#conversation-list[data-who=mine]").waitFor({ state: "attached" });
  await until("B's Mine list is empty", async () => (await b.locator("#conversation-list li").count()) === 0);
  await b.evaluate(() => { window.__sameDocument = true; });

  // A opens it and assigns it to B from the thread header.
  await a.locator(`#conv-${id} a`).click();
  await wired(a, `#thread-head-${id} form.assign`);
  await a.selectOption(`#thread-head-${id} select[name=assignee]`, { label: B });
  await until("the assignment is stored and shown to A",
    async () => (await a.locator(`#conv-${id}`).getAttribute("data-assignee")) === me);
  assert.equal(await a.locator(`#contact-${id} .assignee`).textContent(), B);

  // B's Mine list gains it without a reload, with its assignee and B's unread count.
  await b.locator(`#conv-${id}`).waitFor();
  assert.equal(await b.locator(`#conv-${id} .assignee`).textContent(), B);
  assert.equal(await b.locator(`#conv-${id}`).getAttribute("data-assignee"), me);
  await until("B's badge still says 1", async () => (await b.locator(`#conv-${id} .badge`).textContent()) === "1");
  assert.equal(await titleCount(b), 1, await b.title());
  assert.equal(await b.locator("#conversation-list li").count(), 1);

  // The customer writes again: B's badge and tab title go up, A (reading it) stays at 0.
  const second = `second ${tag()}`;
  await customer(user, second);
  await until("B's badge says 2", async () => (await b.locator(`#conv-${id} .badge`).textContent()) === "2");
  await until("B's tab title counts it (Mine holds this one only)", async () => (await titleCount(b)) === 2);
  await a.locator(".thread .msg.in .bubble", { hasText: second }).waitFor();
  assert.equal(await a.locator(`#conv-${id} .badge`).isHidden(), true, "A has it open: nothing unread");
  await shot(b, "b-unread");
  await shot(a, "a-assigned");

  // B opens it: read; the badge goes and the title no longer counts it.
  await b.locator(`#conv-${id} a`).click();
  await b.locator(".thread .msg.in .bubble", { hasText: second }).waitFor();
  await b.waitForURL(new RegExp(`/conversations/${id}\\?.*who=mine`));
  await until("B's badge is gone", () => b.locator(`#conv-${id} .badge`).isHidden());
  assert.equal(await b.locator(`#thread-head-${id} .assign-me`).isHidden(), true, "it is B's already");
  assert.equal(await titleCount(b), 0, await b.title());

  // A resolves it: B's open thread header says so; B's Open list lets the row go.
  await a.selectOption(`#thread-head-${id} select[name=status]`, "resolved");
  await until("B's header shows Resolved",
    async () => (await b.locator(`#thread-head-${id} select[name=status]`).inputValue()) === "resolved");
  await until("the resolved row leaves B's Open list", async () => (await b.locator(`#conv-${id}`).count()) === 0);
  assert.equal(await b.evaluate(() => window.__sameDocument), true, "B's page was not reloaded");

  // A customer message reopens it, and it comes back to B's list.
  await customer(user, `again ${tag()}`);
  await b.locator(`#conv-${id}`).waitFor();
  assert.equal(await b.locator(`#thread-head-${id} select[name=status]`).inputValue(), "open");
  assert.deepEqual([...a.errors, ...b.errors], []);
});

test("search, the / key, and one pane at a time on a phone", async (t) => {
  const user = "U" + randomBytes(16).toString("hex");
  const word = `needle_${tag()}%`;
  await customer(user, `I need help with ${word}`, `Phone ${tag()}`);
  await customer("U" + randomBytes(16).toString("hex"), `something else ${tag()}`);

  const page = await desk(t, A, { width: 390, height: 844 });
  await page.keyboard.press("/");
  assert.equal(await page.evaluate(() => document.activeElement.id), "list-search");
  await page.keyboard.type(word);
  await page.waitForURL(/q=needle/);
  await until("only the match is listed", async () => (await page.locator("#conversation-list li").count()) === 1);
  await page.locator("#conversation-list li", { hasText: word }).waitFor();
  await shot(page, "phone-search");

  await page.locator("#conversation-list li a").click();
  await page.locator(".thread .msg.in", { hasText: word }).waitFor();
  assert.equal(await page.locator("nav.list").isHidden(), true, "the list gives way to the thread");
  assert.equal(await page.locator(".thread-head .back").isVisible(), true);
  await shot(page, "phone-thread");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling (overflow ${overflow}px)`);

  // Esc goes back to the list, the search kept.
  await page.locator(".thread").click();
  await Promise.all([page.waitForURL(/\/\?.*q=needle/), page.keyboard.press("Escape")]);
  await page.locator("nav.list").waitFor();
  assert.equal(await page.inputValue("#list-search"), word);
  assert.deepEqual(page.errors, []);
});

test("once turned on, a new conversation raises a browser notification", async (t) => {
  const page = await desk(t, A);
  // A stand-in Notification API (headless Chromium shows none) that records what is shown,
  // and a window without focus, when a notification is useful.
  await page.evaluate(() => {
    window.__notes = [];
    class Note {
      constructor(title, options) { window.__notes.push({ title, body: options.body }); }
      close() {}
    }
    Note.permission = "default";
    Note.requestPermission = async () => { Note.permission = "granted"; return "granted"; };
    window.Notification = Note;
    document.hasFocus = () => false;
  });
  const toggle = page.locator("#notify-toggle");
  await toggle.click();
  await until("the button offers to stop", async () => (await toggle.textContent()).trim() === "Stop notifying");

  const user = "U" + randomBytes(16).toString("hex");
  const name = `Notify ${tag()}`;
  const first = `first ${tag()}`;
  await customer(user, first, name);
  await page.locator("#conversation-list li", { hasText: name }).waitFor();
  const notes = await until("a notification", () => page.evaluate(() => window.__notes.length && window.__notes));
  assert.equal(notes.length, 1);
  assert.equal(notes[0].title, "New conversation");
  // Who (the name once LINE's profile is in, else the LINE id) and what they wrote.
  assert.ok(notes[0].body.endsWith(`: ${first}`), notes[0].body);

  // A further message in the same conversation is not a new conversation.
  const second = `second ${tag()}`;
  await customer(user, second);
  // (Other test files run at the same time and write their own "second …" messages.)
  await page.locator("#conversation-list li .preview", { hasText: second }).waitFor();
  assert.equal(await page.evaluate(() => window.__notes.length), 1);

  // Turned off: quiet.
  await toggle.click();
  const quiet = `Quiet ${tag()}`;
  await customer("U" + randomBytes(16).toString("hex"), `quiet ${tag()}`, quiet);
  await page.locator("#conversation-list li .name", { hasText: quiet }).waitFor();
  assert.equal(await page.evaluate(() => window.__notes.length), 1);
  assert.deepEqual(page.errors, []);
});

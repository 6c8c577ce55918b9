// The thread's message kinds and the sticker picker in a real browser (headless Chromium).
// Run by `cargo test e2e` (tests/it/e2e.rs), like desk.test.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { browser, env } from "./browser.mjs";

const [APP, CONTROL] = [env("LINECHAT_URL"), env("CONTROL_URL")];
const [USER, PASSWORD] = [env("AGENT_USER"), env("AGENT_PASSWORD")];

async function post(path, body) {
  const r = await fetch(CONTROL + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.ok(r.ok, `control ${path}: ${r.status} ${await r.text()}`);
}
const sent = async () => (await fetch(CONTROL + "/delivered")).json();

/// A signed-in page with the conversation of a new customer (who sent `text`) open.
async function deskWithCustomer(t, text) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  t.after(() => context.close());
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  t.after(() => assert.deepEqual(errors, [], "no script errors"));
  const user = "U" + randomBytes(16).toString("hex");
  await post("/webhook-text", { user, text });
  await page.goto(APP + "/login");
  await page.fill("input[name=username]", USER);
  await page.fill("input[name=password]", PASSWORD);
  await Promise.all([page.waitForURL(APP + "/"), page.click("form button[type=submit]")]);
  const row = page.locator("#conversation-list li", { hasText: text });
  await Promise.all([page.waitForURL(/\/conversations\/\d+$/), row.locator("a").click()]);
  await page.locator(".thread .msg.in", { hasText: text }).waitFor();
  return { page, user };
}

test("a customer's sticker and photo appear rendered in the open thread", async (t) => {
  const { page, user } = await deskWithCustomer(t, `media ${randomBytes(4).toString("hex")}`);
  await post("/webhook-message", {
    user,
    message: { type: "sticker", packageId: "446", stickerId: "1989", stickerResourceType: "STATIC", keywords: ["Thanks"] },
  });
  const sticker = page.locator(".thread .msg.in img.sticker");
  await sticker.waitFor();
  assert.equal(
    await sticker.getAttribute("src"),
    "https://stickershop.line-scdn.net/stickershop/v1/sticker/1989/android/sticker.png",
  );
  assert.equal(await sticker.getAttribute("alt"), "Thanks");

  await post("/webhook-message", { user, message: { type: "image", contentProvider: { type: "line" } } });
  // First "downloading…", then (the download's live update) the image itself, loaded
  // through the authenticated media route with the page's session.
  const image = page.locator(".thread .msg.in img.media");
  await image.waitFor({ timeout: 15000 });
  assert.match(await image.getAttribute("src"), /^\/media\/\d+$/);
  await page.waitForFunction(
    () => { const i = document.querySelector(".thread img.media"); return i && i.complete && i.naturalWidth > 0; },
    null,
    { timeout: 15000 },
  );
});

test("the sticker picker sends a sticker that LINE receives and shows sent", async (t) => {
  const { page, user } = await deskWithCustomer(t, `picker ${randomBytes(4).toString("hex")}`);
  await page.fill(".composer textarea", "a draft that stays");
  await page.click(".sticker-picker summary");
  const choice = page.locator('.sticker-choice[data-package="789"][data-sticker="10856"]');
  await choice.waitFor();
  await choice.click();
  const mine = page.locator(".thread .msg.out", { has: page.locator("img.sticker") });
  await mine.waitFor();
  await mine.locator(".status.sent").waitFor({ timeout: 15000 });
  assert.equal(await page.locator(".sticker-picker").evaluate((d) => d.open), false, "the picker closes");
  assert.equal(await page.inputValue(".composer textarea"), "a draft that stays");
  const toUser = (await sent()).filter((d) => d.to === user);
  assert.deepEqual(toUser.map((d) => d.message), [{ type: "sticker", packageId: "789", stickerId: "10856" }]);
});

test("scrolling up loads earlier messages and keeps the reading position", async (t) => {
  const tag = randomBytes(3).toString("hex");
  const { page, user } = await deskWithCustomer(t, `history ${tag} m0`);
  for (let i = 1; i <= 60; i++) await post("/webhook-text", { user, text: `history ${tag} m${i}` });
  const bubble = (n) => page.locator(".thread .msg.in .bubble", { hasText: new RegExp(`^history ${tag} m${n}$`) });
  const last = bubble(60);
  await last.waitFor({ timeout: 15000 });
  // Reopen so the thread starts from its latest page (50 of the 61 messages).
  await page.reload();
  await last.waitFor();
  const rows = page.locator(".thread .msg");
  assert.equal(await rows.count(), 50, "only the latest page at first");
  const firstShown = bubble(11);
  await page.locator(".thread").evaluate((el) => { el.scrollTop = 0; });
  await bubble(0).waitFor();
  assert.equal(await rows.count(), 61);
  assert.equal(await page.locator(".thread .older").count(), 0, "no sentinel once at the start");
  // The message that was on top is still in view: the thread did not jump to the start.
  const [thread, row] = await Promise.all([
    page.locator(".thread").boundingBox(),
    firstShown.boundingBox(),
  ]);
  assert.ok(row.y >= thread.y - 1 && row.y < thread.y + thread.height, `m11 stays in view (${row.y} in ${thread.y}+${thread.height})`);
});

// What every e2e file shares: its settings from the driver (tests/it/e2e.rs) and one headless
// Chromium, launched before the file's tests and closed after them.
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these through \`cargo test e2e\``);
  return v;
};
export const ARTIFACTS = env("ARTIFACTS");

let chromiumBrowser;
before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  chromiumBrowser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
});
after(async () => { await chromiumBrowser?.close(); });

/// The file's browser (valid inside tests, once `before` has run).
export const browser = { newContext: (options) => chromiumBrowser.newContext(options) };

/// Polls `check` until it gives something truthy (and returns that); fails after `ms`.
export async function eventually(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

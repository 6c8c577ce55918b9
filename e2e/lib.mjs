// Helpers the browser tests share (not a test file itself: node --test runs *.test.mjs).
import assert from "node:assert/strict";

/// Polls `check` until it answers something truthy (and returns that); fails after `ms`.
/// It waits for outcomes, it does not time them.
export async function eventually(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

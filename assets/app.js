// linechat desk: the few behaviours htmx does not cover. No inline script anywhere (CSP).
(function () {
  "use strict";

  // --- Composer: Enter sends, Shift+Enter breaks the line; characters left (UTF-16 units,
  // as LINE counts); cleared after a successful send.
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (t.matches && t.matches(".composer textarea") && e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      if (t.value.trim() !== "") t.form.requestSubmit();
    }
  });
  document.addEventListener("input", function (e) {
    var t = e.target;
    if (!(t.matches && t.matches(".composer textarea"))) return;
    var counter = t.form.querySelector(".counter");
    if (!counter) return;
    var left = Number(counter.dataset.max) - t.value.length;
    counter.textContent = left;
    counter.classList.toggle("over", left < 0);
  });
  // The sandbox's customer simulator: a sent message clears its box and any old refusal.
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt;
    if (!form.closest || !form.closest("#thread-pane") || !e.detail.successful) return;
    if (form.getAttribute("hx-post") !== "/sandbox/send") return;
    var err = document.getElementById("sim-error");
    if (err) err.textContent = "";
    var ta = form.querySelector("textarea");
    if (ta) ta.value = "";
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt;
    if (form.id === "composer" && e.detail.successful) {
      var ta = form.querySelector("textarea");
      ta.value = "";
      var err = document.getElementById("composer-error");
      if (err) err.textContent = "";
      ta.dispatchEvent(new Event("input", { bubbles: true }));
      scrollThread();
    }
  });

  // --- A message row can arrive twice: the sender's own reply comes in the POST answer and
  // as a live event (in either order), and a reconnect may replay an event. The first copy
  // stays; later copies are dropped. (Status changes replace the row in place, by id.)
  function dedupeThreads() {
    document.querySelectorAll(".thread").forEach(function (thread) {
      var seen = {};
      Array.prototype.slice.call(thread.children).forEach(function (row) {
        if (!row.id) return;
        if (seen[row.id]) row.remove(); else seen[row.id] = true;
      });
    });
  }
  document.addEventListener("htmx:afterSwap", dedupeThreads);
  // A thread opened from the list starts at its newest message.
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target && e.detail.target.id === "thread-pane") scrollThread();
  });
  document.addEventListener("htmx:oobAfterSwap", dedupeThreads);
  document.addEventListener("htmx:afterSettle", localTimes);
  document.addEventListener("DOMContentLoaded", function () { localTimes(); scrollThread(); startLive(); });

  function scrollThread() {
    var thread = document.querySelector(".thread");
    if (thread) thread.scrollTop = thread.scrollHeight;
  }

  function localTimes() {
    document.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      el.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      el.title = d.toLocaleString();
      el.dataset.local = "1";
    });
  }

  // --- Live updates: SSE first; long-poll when EventSource is missing or keeps failing.
  // Either way `cursor` is the last event id applied, so nothing is missed or doubled.
  var cursor = null;

  function apply(html) {
    if (html) htmx.swap("#live-sink", html, { swapStyle: "none" });
  }

  function offline(on) {
    var s = document.getElementById("live-status");
    if (s) s.hidden = !on;
  }

  function startLive() {
    var c = document.body.dataset.liveCursor;
    if (c === undefined) return;
    cursor = Number(c);
    if (window.EventSource) sse(); else poll();
  }

  function sse() {
    var failures = 0;
    var es = new EventSource("/live/sse?after=" + cursor);
    es.onopen = function () { failures = 0; offline(false); };
    es.onmessage = function (e) {
      if (e.lastEventId) cursor = Number(e.lastEventId);
      apply(e.data);
    };
    es.onerror = function () {
      failures += 1;
      offline(true);
      // The browser reconnects by itself with Last-Event-ID; after a few failures in a row
      // (a proxy that buffers SSE, a server that keeps refusing) switch to long-poll.
      if (failures >= 3) { es.close(); poll(); }
    };
  }

  function poll() {
    fetch("/live/poll?after=" + cursor, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 401) { window.location = "/login"; return null; }
        if (!r.ok) throw new Error("poll " + r.status);
        var next = r.headers.get("x-live-cursor");
        return r.text().then(function (html) {
          apply(html);
          if (next !== null) cursor = Number(next);
          offline(false);
          poll();
        });
      })
      .catch(function () { offline(true); setTimeout(poll, 3000); });
  }
})();

// --- Error toasts: a refused or failed htmx request says so, in the agent's language (the
// server words the body; see src/http/errors.rs). A 422 is a form re-rendered with its own
// error (swapped by htmx, not an error event) and needs no toast.
(function () {
  "use strict";

  function toast(text) {
    var box = document.getElementById("toasts");
    if (!box) {
      box = document.createElement("div");
      box.id = "toasts";
      box.setAttribute("role", "alert");
      box.setAttribute("aria-live", "assertive");
      document.body.appendChild(box);
    }
    var item = document.createElement("div");
    item.className = "toast";
    item.textContent = text;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "×");
    close.textContent = "×";
    close.addEventListener("click", function () { item.remove(); });
    item.appendChild(close);
    box.appendChild(item);
    // Old toasts go on their own; at most three stay on screen.
    setTimeout(function () { item.remove(); }, 8000);
    while (box.children.length > 3) box.firstChild.remove();
  }

  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    if (!xhr) return;
    var text = (xhr.responseText || "").trim();
    toast(text !== "" && text.length < 400 ? text : "HTTP " + xhr.status);
  });
  document.addEventListener("htmx:sendError", function () {
    toast(document.body.dataset.msgNetwork || "Network error");
  });
})();

// --- Admin page and header: a copy button copies the field it names (the webhook URL); the
// language menu applies as soon as a language is picked (its button stays for no-JS use).
(function () {
  "use strict";

  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("button[data-copy]");
    if (!button) return;
    var field = document.getElementById(button.dataset.copy);
    if (!field) return;
    field.select();
    var done = function () {
      if (button.dataset.copied) button.textContent = button.dataset.copied;
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () {});
    } else if (document.execCommand && document.execCommand("copy")) {
      done();
    }
  });
  // A form with data-confirm (deactivating an agent) asks first.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) e.preventDefault();
  });
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.matches && t.matches("select[data-autosubmit]") && t.form) t.form.requestSubmit();
  });
  // A customer message that arrives live in the open thread, while the page is in view, is
  // read: the server marks it so on LINE (if the admin turned that on). One ping per burst.
  var readTimer = null;
  var unreadThread = null;
  function sendRead() {
    readTimer = null;
    if (!unreadThread || document.visibilityState !== "visible") return;
    var id = unreadThread.id.replace(/^thread-/, "");
    unreadThread = null;
    var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    fetch("/conversations/" + id + "/read", { method: "POST", credentials: "same-origin", headers: headers })
      .catch(function () {});
  }
  document.addEventListener("htmx:oobAfterSwap", function (e) {
    var t = e.detail.target;
    if (!t || !t.classList || !t.classList.contains("thread") || !/^thread-\d+$/.test(t.id)) return;
    var last = t.lastElementChild;
    if (!last || !last.classList.contains("in")) return;
    unreadThread = t;
    if (!readTimer) readTimer = setTimeout(sendRead, 1000);
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && unreadThread && !readTimer) sendRead();
  });
  // With this script running the menu needs no button (it stays for a browser without JS).
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      var button = select.form && select.form.querySelector("button[type=submit]");
      if (button) button.hidden = true;
    });
  });
})();

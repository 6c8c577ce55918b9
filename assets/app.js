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
  document.addEventListener("linechat:times", localTimes);
  document.addEventListener("DOMContentLoaded", function () { localTimes(); scrollThread(); startLive(); });

  function scrollThread() {
    var thread = document.querySelector(".thread");
    if (thread) thread.scrollTop = thread.scrollHeight;
  }

  function localTimes() {
    document.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      el.textContent = el.dataset.full
        ? d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" })
        : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
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

// --- Working together: unread badges and the tab title, the list filter applied to live
// rows, browser notifications of new conversations, and the keyboard. Live rows are the
// same for every agent (`data-in-count`, `data-status`, `data-assignee`); what is this
// agent's own (read counts, the filter) lives on `#conversation-list`.
(function () {
  "use strict";

  var reads = {};      // conversation id -> customer messages this agent has read
  var listed = {};     // ids the list had when drawn (a search keeps only those live)
  var notified = {};   // new conversations already announced
  var baseTitle = document.title;
  var sentRead = {};   // the last read count sent per conversation

  function list() { return document.getElementById("conversation-list"); }
  // Rows put in by hand skip htmx's settle, where the desk localises times.
  function localTimesIn() { document.dispatchEvent(new CustomEvent("linechat:times")); }
  function openThread() { return document.querySelector(".thread[data-conversation]"); }
  function rowId(li) { return li.id.replace(/^conv-/, ""); }

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrf-token"] || ""; }
    catch (e) { return ""; }
  }

  // A new list (page load, a filter change): take its read counts and what it holds.
  function takeList() {
    var ul = list();
    if (!ul) return;
    try { reads = JSON.parse(ul.dataset.reads || "{}"); } catch (e) { reads = {}; }
    listed = {};
    Array.prototype.forEach.call(ul.children, function (li) { listed[rowId(li)] = true; });
  }

  // A thread just opened (the server recorded the read): remember it here too.
  function takeThread() {
    var t = openThread();
    if (!t) return;
    var id = t.dataset.conversation;
    reads[id] = Math.max(reads[id] || 0, Number(t.dataset.read) || 0);
    sentRead[id] = reads[id];
    // On a phone the thread needs the room: the contact panel starts folded.
    var details = document.querySelector(".contact-panel details");
    if (details && phone()) details.open = false;
  }

  function sendRead(id, count) {
    if ((sentRead[id] || 0) >= count) return;
    sentRead[id] = count;
    fetch("/conversations/" + id + "/read", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-csrf-token": csrf() },
      body: "in_count=" + encodeURIComponent(count),
    }).catch(function () { sentRead[id] = 0; });
  }

  // A row older than the page's read counts: ask the server once what this agent has read.
  var asking = {};
  function askRead(id) {
    if (asking[id]) return;
    asking[id] = true;
    fetch("/conversations/" + id + "/read", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (n) { reads[id] = Math.max(reads[id] || 0, Number(n) || 0); refresh(); })
      .catch(function () { asking[id] = false; });
  }

  function matches(ul, li) {
    var status = ul.dataset.status;
    if (status && status !== "any" && li.dataset.status !== status) return false;
    var who = ul.dataset.who;
    if (who === "mine" && li.dataset.assignee !== ul.dataset.me) return false;
    if (who === "unassigned" && li.dataset.assignee !== "") return false;
    if (ul.dataset.searching && !listed[rowId(li)]) return false;
    return true;
  }

  function notify(li) {
    var id = rowId(li);
    var ul = list();
    if (notified[id] || !ul || Number(li.dataset.created) < Number(ul.dataset.now)) return;
    notified[id] = true;
    if (localStorage.getItem("linechat-notify") !== "on") return;
    if (!window.Notification || Notification.permission !== "granted") return;
    if (!document.hidden && document.hasFocus()) return;
    var btn = document.getElementById("notify-toggle");
    var name = li.querySelector(".name");
    var preview = li.querySelector(".preview");
    var n = new Notification((btn && btn.dataset.title) || "linechat", {
      body: (name ? name.textContent : "") + (preview && preview.textContent ? ": " + preview.textContent : ""),
      tag: "linechat-conv-" + id,
    });
    n.onclick = function () { window.focus(); var a = li.querySelector("a"); if (a) a.click(); n.close(); };
  }

  // Drop rows outside the filter, then draw every badge and the tab title.
  function refresh() {
    var ul = list();
    if (!ul) return;
    var open = openThread();
    var openId = open ? open.dataset.conversation : null;
    var seeing = !document.hidden;
    var total = 0;
    Array.prototype.slice.call(ul.children).forEach(function (li) {
      if (!li.id) return;
      notify(li);
      if (!matches(ul, li)) { li.remove(); return; }
      var id = rowId(li);
      var inCount = Number(li.dataset.inCount) || 0;
      if (id === openId && seeing && inCount > (reads[id] || 0)) {
        reads[id] = inCount;
        sendRead(id, inCount);
      }
      if (!(id in reads) && ul.dataset.readsAfter &&
          (Number(li.dataset.activity) || 0) <= Number(ul.dataset.readsAfter)) {
        askRead(id);
        return;
      }
      var unread = Math.max(0, inCount - (reads[id] || 0));
      var badge = li.querySelector(".badge");
      if (badge) { badge.textContent = unread; badge.hidden = unread === 0; }
      li.classList.toggle("unread", unread > 0);
      li.classList.toggle("current", id === openId);
      total += unread;
    });
    document.title = (total > 0 ? "(" + total + ") " : "") + baseTitle;
    // "Assign to me" is for conversations that are not mine yet (headers are shared bytes).
    document.querySelectorAll(".thread-head[data-assignee]").forEach(function (head) {
      var btn = head.querySelector(".assign-me");
      if (btn) btn.hidden = head.dataset.assignee === ul.dataset.me;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    baseTitle = document.title;
    takeList(); takeThread(); refresh(); notifyButton();
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    var target = e.detail.target;
    if (target && target.id === "list-results") takeList();
    if (target && target.id === "thread-pane") takeThread();
    refresh();
  });
  document.addEventListener("htmx:oobAfterSwap", refresh);
  document.addEventListener("visibilitychange", refresh);
  // A changed row that this list did not hold (e.g. just assigned to me while I look at
  // Mine): put it in its place by activity if it now matches; refresh() decides.
  document.addEventListener("htmx:oobErrorNoTarget", function (e) {
    var li = e.detail.content;
    var ul = list();
    if (!ul || !li || li.tagName !== "LI" || !/^conv-\d+$/.test(li.id)) return;
    if (!matches(ul, li) || ul.dataset.searching) return;
    li.removeAttribute("hx-swap-oob");
    var at = Number(li.dataset.activity) || 0;
    var next = Array.prototype.find.call(ul.children, function (other) {
      return (Number(other.dataset.activity) || 0) <= at;
    });
    ul.insertBefore(li, next || null);
    htmx.process(li);
    localTimesIn(li);
    refresh();
  });
  // Opening a thread keeps the list's filter in the address bar, so a reload (or a link
  // passed to a colleague) shows the same list beside it. Rows are shared, so it is added here.
  document.addEventListener("htmx:configRequest", function (e) {
    var a = e.detail.elt;
    if (!a.closest || !a.closest("#conversation-list") || e.detail.verb !== "get") return;
    var form = document.querySelector("form.filters");
    if (!form) return;
    // Only what differs from the default list (everyone's, open), so plain links stay plain.
    var defaults = { who: "all", status: "open", q: "" };
    new FormData(form).forEach(function (v, k) { if (v !== (defaults[k] || "")) e.detail.parameters[k] = v; });
  });

  // --- Notifications: off until the agent turns them on (and the browser allows them).
  function notifyButton() {
    var btn = document.getElementById("notify-toggle");
    if (!btn || !window.Notification) return;
    var label = function () {
      var on = localStorage.getItem("linechat-notify") === "on" && Notification.permission === "granted";
      btn.textContent = on ? btn.dataset.off : btn.dataset.on;
      btn.setAttribute("aria-pressed", on ? "true" : "false");
    };
    btn.hidden = Notification.permission === "denied";
    label();
    btn.addEventListener("click", function () {
      if (localStorage.getItem("linechat-notify") === "on") {
        localStorage.removeItem("linechat-notify");
        label();
        return;
      }
      Notification.requestPermission().then(function (p) {
        if (p === "granted") localStorage.setItem("linechat-notify", "on");
        btn.hidden = p === "denied";
        label();
      });
    });
  }

  // --- Keyboard: "/" goes to the search; on a phone, Esc (or Back) returns to the list.
  function phone() { return window.matchMedia("(max-width: 640px)").matches; }
  function listUrl() {
    var form = document.querySelector("form.filters");
    var q = form ? new URLSearchParams(new FormData(form)).toString() : "";
    return "/" + (q ? "?" + q : "");
  }
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    var typing = t && (t.isContentEditable || /^(TEXTAREA|SELECT)$/.test(t.tagName) ||
      (t.tagName === "INPUT" && !/^(radio|checkbox|button|submit)$/.test(t.type)));
    if (e.key === "/" && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
      var search = document.getElementById("list-search");
      if (search) { e.preventDefault(); search.focus(); search.select(); }
    } else if (e.key === "Escape" && phone() && openThread() && !(typing && t.value)) {
      e.preventDefault();
      window.location = listUrl();
    }
  });
  document.addEventListener("click", function (e) {
    var back = e.target.closest && e.target.closest(".thread-head .back");
    if (back) { e.preventDefault(); window.location = listUrl(); }
  });
})();
// --- Older history: the sentinel at the top of a thread is replaced by the page before it;
// the agent's view stays on the message they were reading (distance from the bottom kept).
(function () {
  "use strict";
  var keep = null;
  document.addEventListener("htmx:beforeSwap", function (e) {
    var t = e.detail.target;
    if (!t || !t.classList || !t.classList.contains("older")) return;
    var thread = t.closest(".thread");
    if (thread) keep = { thread: thread, fromBottom: thread.scrollHeight - thread.scrollTop };
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (!keep) return;
    keep.thread.scrollTop = keep.thread.scrollHeight - keep.fromBottom;
    keep = null;
  });
})();

// --- Sticker picker: a sent sticker closes the picker and shows the thread's end.
document.addEventListener("htmx:afterRequest", function (e) {
  var el = e.detail.elt;
  if (!el.matches || !el.matches(".sticker-choice") || !e.detail.successful) return;
  var picker = el.closest("details");
  if (picker) picker.open = false;
  var thread = document.querySelector(".thread");
  if (thread) thread.scrollTop = thread.scrollHeight;
});
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
  // With this script running the menu needs no button (it stays for a browser without JS).
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      var button = select.form && select.form.querySelector("button[type=submit]");
      if (button) button.hidden = true;
    });
  });
})();

// Natter agent workspace: small progressive enhancements on top of
// server-rendered pages and htmx. No inline scripts anywhere, so the strict
// Content-Security-Policy holds.
(function () {
  "use strict";

  // The stream itself (resuming after the last event, let go of while the
  // page is hidden) is live.js's.

  document.addEventListener("htmx:sseMessage", function () {
    afterUpdate();
  });

  // htmx sends the composer as a form; show the message at once and mark
  // it failed (with a retry) if the server refuses it.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var form = e.detail.elt;
    if (!form.matches || !form.matches("[data-role=composer]") || !/\/messages$/.test(e.detail.requestConfig.path)) return;
    var text = form.querySelector("textarea").value;
    var thread = document.querySelector("[data-role=thread]");
    var fileInput = form.querySelector("[data-role=file-input]");
    var fileCount = fileInput && fileInput.files ? fileInput.files.length : 0;
    if (!thread || (!text.trim() && !fileCount)) return;
    if (fileCount) text = text + (text ? "\n" : "") + "📎 " + fileCount + " file(s)";
    var li = document.createElement("li");
    li.className = "msg agent pending";
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    var body = document.createElement("div");
    body.className = "body";
    body.textContent = text;
    bubble.appendChild(body);
    li.appendChild(bubble);
    var status = document.createElement("div");
    status.className = "byline";
    status.textContent = "Sending…";
    li.appendChild(status);
    thread.appendChild(li);
    form.__pending = { li: li, status: status, text: text, priv: form.querySelector("[data-role=private-toggle]").checked };
    form.querySelector("textarea").value = "";
    scrollThread();
  });

  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt;
    if (!form.matches) return;
    if (form.matches("[data-role=composer]") && form.__pending) {
      var p = form.__pending;
      form.__pending = null;
      if (e.detail.successful) {
        p.li.remove();
        // A note is one message: the next one is a reply again, so it is
        // never a note by accident.
        if (p.priv) setNoteMode(form, false);
        var files = form.querySelector("[data-role=file-input]");
        if (files) files.value = "";
        var names = form.querySelector("[data-role=file-names]");
        if (names) names.textContent = "";
      } else {
        p.li.classList.add("failed");
        p.status.textContent = "Not sent. ";
        var retry = document.createElement("button");
        retry.type = "button";
        retry.className = "linkish";
        retry.textContent = "Retry";
        retry.addEventListener("click", function () {
          p.li.remove();
          form.querySelector("textarea").value = p.text;
          setNoteMode(form, p.priv);
          form.requestSubmit();
        });
        p.status.appendChild(retry);
        var xhr = e.detail.xhr;
        if (xhr && xhr.responseText) {
          var reason = document.createElement("span");
          reason.className = "reason";
          try { reason.textContent = " " + JSON.parse(xhr.responseText).error.message; } catch (_) { reason.textContent = ""; }
          p.status.appendChild(reason);
        }
      }
      scrollThread();
    } else if (!e.detail.successful && form.closest && form.closest(".controls")) {
      var err = form.closest(".controls").querySelector(".error");
      if (err) err.textContent = "That change was refused: " + (e.detail.xhr.responseText || e.detail.xhr.status);
    }
  });

  function scrollThread() {
    var thread = document.querySelector("[data-role=thread]");
    if (thread) thread.scrollTop = thread.scrollHeight;
    var last = thread && thread.lastElementChild;
    if (last && last.scrollIntoView) last.scrollIntoView({ block: "end" });
  }

  // Note mode is unmistakable: the composer turns amber (app.css, also
  // without JavaScript), its placeholder and its button say "note", and it
  // goes back to reply after each note (see htmx:afterRequest above).
  function setNoteMode(form, on) {
    var toggle = form && form.querySelector("[data-role=private-toggle]");
    if (!toggle) return;
    toggle.checked = on;
    form.classList.toggle("note-mode", on);
    var box = form.querySelector("[data-role=reply]");
    if (box) {
      if (!box.dataset.replyPlaceholder) box.dataset.replyPlaceholder = box.placeholder;
      box.placeholder = on
        ? "Private note: only your team sees this (Alt+N: back to reply)"
        : box.dataset.replyPlaceholder;
    }
    var label = form.querySelector("label[for=" + (box ? box.id : "") + "]");
    if (label) label.textContent = on ? "Private note" : "Reply";
    var send = form.querySelector("button[type=submit]");
    if (send) send.textContent = on ? "Add note" : "Send";
  }

  // An agent without a time zone takes this browser's (once; the profile
  // can change it).
  (function () {
    var app = document.querySelector(".app[data-tz]");
    var zone = null;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (_) { /* no Intl */ }
    if (!app || app.dataset.tz || !zone) return;
    postForm("/ui/profile/timezone", "timezone=" + encodeURIComponent(zone)).catch(function () { /* the next page tries again */ });
  })();

  // "Copy" next to a link or secret: the field named by data-copy.
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-copy]");
    if (!b) return;
    var f = document.querySelector(b.dataset.copy);
    if (!f) return;
    f.select();
    var done = function () { b.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(f.value).then(done, function () { document.execCommand("copy"); done(); });
    else { document.execCommand("copy"); done(); }
  });

  // Availability in the header: saved at once (kept on the agent, so it
  // holds across reloads); the dot's colour follows.
  document.addEventListener("change", function (e) {
    var sel = e.target.closest && e.target.closest("[data-role=availability]");
    if (!sel) return;
    var form = sel.form;
    var csrf = form.querySelector("input[name=csrf]").value;
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(form)),
    }).then(function (r) {
      if (r.ok) sel.dataset.state = sel.value;
    });
  });

  // Accent colour: the hex beside the picker, the preset swatches and the
  // launcher preview follow the picker (it alone is sent with the form).
  function showAccent(input) {
    var box = input.closest(".color-field");
    if (!box) return;
    var v = input.value.toLowerCase();
    var hex = box.querySelector("[data-role=accent-hex]");
    if (hex) hex.textContent = v;
    var preview = box.querySelector("[data-role=accent-preview]");
    if (preview) preview.style.background = v;
    box.querySelectorAll("[data-swatch]").forEach(function (b) {
      b.setAttribute("aria-pressed", b.dataset.swatch === v ? "true" : "false");
    });
  }
  document.addEventListener("input", function (e) {
    if (e.target.matches && e.target.matches("[data-role=accent]")) showAccent(e.target);
  });
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-swatch]");
    if (!b) return;
    var input = b.closest(".color-field").querySelector("[data-role=accent]");
    input.value = b.dataset.swatch;
    showAccent(input);
  });
  // The page's policy refuses inline styles, so the presets get their
  // colours here (and show only with the script that makes them work).
  document.querySelectorAll("[data-swatch]").forEach(function (b) {
    b.style.background = b.dataset.swatch;
    b.parentNode.hidden = false;
  });
  document.querySelectorAll("[data-role=accent]").forEach(showAccent);

  // "Resolve & next": where to go is read before the resolve (its row then
  // leaves the list, and the live stream may replace this very button
  // before the answer comes, so the request is this script's, not htmx's):
  // the row below the open one, else the one above, else the list.
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-action=resolve-next]");
    if (!b) return;
    e.preventDefault();
    var pane = b.closest("[data-conversation-id]");
    var row = pane && document.getElementById("row-" + pane.dataset.conversationId);
    var sibling = row && (nextRow(row, "nextElementSibling") || nextRow(row, "previousElementSibling"));
    var back = document.querySelector(".conv-header .back");
    var next = sibling ? sibling.querySelector("a").href : (back ? back.href : "/inbox");
    b.disabled = true;
    postForm(b.dataset.url, "status=resolved").then(function (r) {
      if (r.ok) { window.location = next; return; }
      b.disabled = false;
      var err = b.closest(".controls") && b.closest(".controls").querySelector(".error");
      if (err) err.textContent = "That change was refused: " + r.status;
    }).catch(function () { b.disabled = false; });
  });
  function nextRow(row, dir) {
    for (var r = row[dir]; r; r = r[dir]) if (r.classList && r.classList.contains("row")) return r;
    return null;
  }

  // The bulk bar counts the ticked rows and clears them once it acted.
  function bulkCount() {
    var n = document.querySelectorAll("#conversation-list .pick:checked").length;
    var c = document.querySelector("[data-role=bulk-count]");
    if (c) c.textContent = n + " selected:";
  }
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches(".pick")) bulkCount();
  });
  document.addEventListener("natter:patched", bulkCount);
  document.addEventListener("htmx:afterRequest", function (e) {
    var f = e.detail.elt;
    if (!f.matches || !f.matches("[data-role=bulk]") || !e.detail.successful) return;
    document.querySelectorAll("#conversation-list .pick:checked").forEach(function (p) { p.checked = false; });
    bulkCount();
  });

  // The chosen files' names beside the Attach button (cleared with the form).
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (!t.matches || !t.matches("[data-role=file-input]")) return;
    var names = t.form && t.form.querySelector("[data-role=file-names]");
    if (names) {
      names.textContent = Array.prototype.map.call(t.files || [], function (f) { return f.name; }).join(", ");
      names.title = names.textContent;
    }
  });
  document.addEventListener("reset", function (e) {
    var names = e.target.querySelector && e.target.querySelector("[data-role=file-names]");
    if (names) names.textContent = "";
  });

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.matches && t.matches("[data-role=private-toggle]")) setNoteMode(t.form, t.checked);
  });

  // A composer restored with its box ticked (back navigation) shows it.
  document.addEventListener("htmx:load", function (e) {
    var root = e.detail.elt;
    if (!root.querySelectorAll) return;
    root.querySelectorAll("[data-role=composer]").forEach(function (form) {
      var toggle = form.querySelector("[data-role=private-toggle]");
      if (toggle) setNoteMode(form, toggle.checked);
    });
  });

  // Composer: Enter sends, Shift+Enter is a new line, Alt+N switches
  // between reply and note; "/" opens canned responses; typing is
  // signalled to the contact (not for notes).
  var typingTimer = null;
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (t.matches && t.matches("[data-role=reply]")) {
      var box = t.form.querySelector(".canned-suggestions");
      if (e.altKey && !e.ctrlKey && !e.metaKey && e.code === "KeyN") {
        e.preventDefault();
        var toggle = t.form.querySelector("[data-role=private-toggle]");
        if (toggle) setNoteMode(t.form, !toggle.checked);
        return;
      }
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        if (box && !box.hidden && box.firstElementChild) {
          pickCanned(t, box.firstElementChild.dataset.text);
          return;
        }
        if (t.value.trim()) t.form.requestSubmit();
      } else if (e.key === "Escape" && box) {
        box.hidden = true;
      }
      return;
    }
    shortcut(e);
  });

  document.addEventListener("input", function (e) {
    var t = e.target;
    if (!t.matches || !t.matches("[data-role=reply]")) return;
    cannedSuggest(t);
    var form = t.form;
    var priv = form.querySelector("[data-role=private-toggle]").checked;
    if (!typingTimer) signalTyping(form, true, priv);
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { typingTimer = null; signalTyping(form, false, priv); }, 3000);
  });

  function signalTyping(form, typing, priv) {
    var url = form.getAttribute("hx-post").replace(/messages$/, "typing");
    postForm(url, "typing=" + typing + "&private=" + priv).catch(function () { /* typing is best effort */ });
  }

  function cannedSuggest(t) {
    var box = t.form.querySelector(".canned-suggestions");
    var tpl = document.getElementById("canned-list");
    if (!box || !tpl) return;
    var m = /^\/(\S*)$/.exec(t.value);
    box.innerHTML = "";
    if (!m) { box.hidden = true; return; }
    var q = m[1].toLowerCase();
    var opts = tpl.content.querySelectorAll("option");
    opts.forEach(function (o) {
      if (o.dataset.shortcut.indexOf(q) !== 0) return;
      var b = document.createElement("button");
      b.type = "button";
      b.setAttribute("role", "option");
      b.dataset.text = o.dataset.text;
      var k = document.createElement("strong");
      k.textContent = "/" + o.dataset.shortcut + " ";
      var s = document.createElement("span");
      s.textContent = o.dataset.text;
      b.appendChild(k);
      b.appendChild(s);
      b.addEventListener("click", function () { pickCanned(t, o.dataset.text); });
      box.appendChild(b);
    });
    box.hidden = !box.firstElementChild;
  }

  function pickCanned(t, text) {
    t.value = text;
    var box = t.form.querySelector(".canned-suggestions");
    if (box) { box.hidden = true; box.innerHTML = ""; }
    t.focus();
  }

  // Keyboard shortcuts outside text fields.
  function shortcut(e) {
    var t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)) return;
    var rows = Array.prototype.slice.call(document.querySelectorAll("#conversation-list .row"));
    var current = document.querySelector("#conversation-list .row.selected");
    var idx = rows.indexOf(current);
    switch (e.key) {
      case "j":
      case "k": {
        if (!rows.length) return;
        var next = e.key === "j" ? Math.min(idx + 1, rows.length - 1) : Math.max(idx - 1, 0);
        if (idx < 0) next = 0;
        rows.forEach(function (r) { r.classList.remove("selected"); });
        rows[next].classList.add("selected");
        rows[next].querySelector("a").focus();
        e.preventDefault();
        break;
      }
      case "Enter":
        if (current) { window.location = current.querySelector("a").href; e.preventDefault(); }
        break;
      case "r":
      case "n": {
        var reply = document.querySelector("[data-role=reply]");
        if (reply) {
          setNoteMode(reply.form, e.key === "n");
          reply.focus();
          e.preventDefault();
        }
        break;
      }
      case "e":
        clickAction("resolve", e);
        break;
      case "E":
        clickAction("resolve-next", e);
        break;
      case "a":
        clickAction("assign-me", e);
        break;
      case "/": {
        var s = document.querySelector("[data-role=search]");
        if (s) { s.focus(); e.preventDefault(); }
        break;
      }
      case "?": {
        var d = document.getElementById("shortcuts");
        if (d) { if (d.open) d.close(); else d.showModal(); e.preventDefault(); }
        break;
      }
    }
  }

  function clickAction(name, e) {
    var b = document.querySelector("[data-action=" + name + "]");
    if (b) { b.click(); e.preventDefault(); }
  }

  // After every live update: unread count in the title, notifications,
  // mark the open conversation read when the page is visible, announce.
  function afterUpdate() {
    var unread = 0;
    document.querySelectorAll("#conversation-list .row").forEach(function (r) {
      if (parseInt(r.dataset.unread || "0", 10) > 0) unread++;
    });
    var base = document.title.replace(/^\(\d+\) /, "");
    document.title = unread > 0 ? "(" + unread + ") " + base : base;
    var box = document.getElementById("notifications");
    if (box) {
      box.querySelectorAll("[data-notify]").forEach(function (n) {
        notify(n.dataset);
        n.remove();
      });
    }
    var pane = document.querySelector(".conversation-pane[data-conversation-id]");
    if (pane && document.visibilityState === "visible" && window.htmx) {
      window.htmx.trigger(pane, "natter:read");
    }
    scrollThreadIfNearBottom();
  }

  // Countdowns and waiting times go on between live updates: the server
  // renders them with their instants (data-due, data-warn, data-since, in
  // ms), and this keeps the words and the badge's state current. The
  // words match the server's (view::span and view::relative).
  function spanWords(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return "<1m";
    if (s < 3600) return Math.floor(s / 60) + "m";
    if (s < 86400) return Math.floor(s / 3600) + "h";
    return Math.floor(s / 86400) + "d";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-role=sla][data-due]").forEach(function (b) {
      var due = parseInt(b.dataset.due, 10), warn = parseInt(b.dataset.warn, 10);
      if (!due) return;
      var state = now >= due ? "breached" : now >= warn ? "warn" : "ok";
      var words = state === "breached" ? "missed " + spanWords(now - due) + " ago" : spanWords(due - now) + " left";
      b.classList.remove("sla-ok", "sla-warn", "sla-breached");
      b.classList.add("sla-" + state);
      b.dataset.sla = state;
      b.textContent = "\u23F1 " + words;
    });
    document.querySelectorAll("[data-role=waiting][data-since]").forEach(function (w) {
      var since = parseInt(w.dataset.since, 10);
      if (!since) return;
      var s = Math.floor((now - since) / 1000);
      if (s >= 604800) return; // past a week the server's date stays right
      w.textContent = "Waiting " + (s < 60 ? "now" : spanWords(now - since));
    });
  }
  setInterval(tick, 20000);
  document.addEventListener("natter:tick", tick);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") tick();
  });

  function scrollThreadIfNearBottom() {
    var thread = document.querySelector("[data-role=thread]");
    if (!thread) return;
    var last = thread.lastElementChild;
    if (last && last.scrollIntoView) last.scrollIntoView({ block: "end" });
  }

  function notify(d) {
    var pane = document.querySelector(".conversation-pane[data-conversation-id]");
    var openHere = pane && pane.dataset.conversationId === d.conversation && document.visibilityState === "visible";
    var live = document.getElementById("live");
    if (live) live.textContent = d.live || "New message from " + d.title + ": " + d.body;
    if (openHere) return;
    var app = document.querySelector(".app");
    if (app && app.dataset.sound === "true") beep();
    if ("Notification" in window && Notification.permission === "granted") {
      var n = new Notification(d.title, { body: d.body, tag: "natter-" + d.conversation });
      n.onclick = function () { window.focus(); window.location = d.href; };
    }
  }

  function beep() {
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var o = ctx.createOscillator();
      var g = ctx.createGain();
      o.frequency.value = 880;
      g.gain.value = 0.05;
      o.connect(g); g.connect(ctx.destination);
      o.start(); o.stop(ctx.currentTime + 0.15);
    } catch (_) { /* no audio: nothing to do */ }
  }

  // A message already in the thread is never appended twice: the reply
  // form's answer may arrive after the live stream showed the message (and
  // perhaps a newer delivery state).
  document.addEventListener("htmx:oobBeforeSwap", function (e) {
    var t = e.detail && e.detail.target;
    var f = e.detail && e.detail.fragment;
    if (!t || !f || !t.id || t.id.indexOf("thread-") !== 0 || !f.querySelector) return;
    var li = f.querySelector("li[id^='msg-']");
    if (li && document.getElementById(li.id)) e.detail.shouldSwap = false;
  });

  // Installable app and Web Push: the service worker shows pushes while
  // no page is open; subscriptions go to the API with the page's CSRF token.
  function b64ToBytes(s) {
    var pad = "=".repeat((4 - (s.length % 4)) % 4);
    var raw = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  // A form post of the workspace's own, with the page's CSRF token (the
  // requests this script makes rather than htmx).
  function postForm(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrfToken() },
      body: body
    });
  }
  function csrfToken() {
    var m = document.querySelector("meta[name=csrf-token]");
    return m ? m.content : "";
  }
  function subscribePush() {
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) return Promise.resolve(false);
    return Notification.requestPermission().then(function (p) {
      if (p !== "granted") return false;
      return navigator.serviceWorker.ready.then(function (reg) {
        return fetch("/api/v1/push/key", { headers: { "X-CSRF-Token": csrfToken() }, credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (k) {
            return reg.pushManager.getSubscription().then(function (existing) {
              return existing || reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64ToBytes(k.public_key) });
            });
          })
          .then(function (sub) {
            return fetch("/api/v1/push/subscriptions", {
              method: "POST", credentials: "same-origin",
              headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
              body: JSON.stringify(sub.toJSON()),
            }).then(function (r) { return r.ok; });
          });
      });
    }).catch(function () { return false; });
  }
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () { /* no worker: pages still work */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var b = document.querySelector("[data-action=notifications]");
    if (b && "Notification" in window && Notification.permission === "default") {
      b.hidden = false;
      b.addEventListener("click", function () {
        subscribePush().then(function () { b.hidden = true; });
      });
    }
    var pb = document.querySelector("[data-role=push-subscribe]");
    if (pb) {
      pb.addEventListener("click", function () {
        subscribePush().then(function (ok) { pb.textContent = ok ? "Push is on for this device" : "Push is not available here"; });
      });
    }
    var hash = window.location.hash;
    var target = hash && document.querySelector(hash);
    if (target) { target.classList.add("highlight"); target.scrollIntoView({ block: "center" }); }
    else scrollThread();
    afterUpdate();
  });
})();

// Natter messenger: keeps the contact's token in this origin's storage,
// sends it with every htmx request, talks to the widget on the host page,
// and adds Enter-to-send, emoji, typing and read receipts. Without it the
// page still works with plain forms.
(function () {
  "use strict";

  var body = document.body;
  var key = body.dataset.widgetKey;
  var storeKey = "natter:" + key;
  var embedded = body.classList.contains("embed");
  var widgetOpen = !embedded;
  var unread = 0;

  function token() {
    try { return window.localStorage.getItem(storeKey); } catch (_) { return null; }
  }
  function setToken(t) {
    try { if (t) window.localStorage.setItem(storeKey, t); else window.localStorage.removeItem(storeKey); } catch (_) { /* storage blocked */ }
  }
  if (body.dataset.newToken) setToken(body.dataset.newToken);

  // The origin of the page that loaded widget.js (it names itself in the
  // frame's URL): the only one our messages go to or are taken from, so
  // another site framing the messenger hears nothing.
  var host = (function () {
    var h = new URLSearchParams(window.location.search).get("host");
    try { var u = new URL(h); return (u.protocol === "https:" || u.protocol === "http:") && u.origin === h ? h : null; } catch (_) { return null; }
  })();

  function toParent(msg) {
    if (embedded && host && window.parent !== window) window.parent.postMessage(msg, host);
  }

  document.addEventListener("htmx:configRequest", function (e) {
    var t = token();
    if (t) e.detail.headers["Authorization"] = "Bearer " + t;
  });

  document.addEventListener("htmx:afterRequest", function (e) {
    var xhr = e.detail.xhr;
    var t = xhr && xhr.getResponseHeader("X-Natter-Token");
    if (t) setToken(t);
    var form = e.detail.elt;
    if (form && form.matches && form.matches("[data-role=composer]")) {
      var progress = form.querySelector(".m-progress");
      if (progress) progress.hidden = true;
      if (e.detail.successful) {
        form.reset();
      } else {
        var err = form.querySelector(".m-error") || document.createElement("p");
        err.className = "m-error error";
        err.setAttribute("role", "alert");
        var msg = "Not sent. Please try again.";
        try { msg = "Not sent: " + JSON.parse(xhr.responseText).error.message; } catch (_) { /* keep the generic text */ }
        err.textContent = msg;
        form.appendChild(err);
      }
    }
  });

  // Upload progress for attachments.
  document.addEventListener("htmx:xhr:progress", function (e) {
    var form = e.target.closest && e.target.closest("[data-role=composer]");
    var progress = form && form.querySelector(".m-progress");
    if (!progress || !e.detail.lengthComputable) return;
    progress.hidden = false;
    progress.value = Math.round((e.detail.loaded / e.detail.total) * 100);
  });

  document.addEventListener("htmx:sseMessage", function () {
    afterUpdate();
  });
  document.addEventListener("htmx:afterSettle", afterUpdate);
  // The link and QR code for another device come below the list: show them.
  document.addEventListener("htmx:afterSettle", function (e) {
    var out = e.target && e.target.id === "m-resume-out" ? e.target : null;
    if (out && out.firstElementChild && out.scrollIntoView) out.scrollIntoView({ block: "nearest" });
  });

  function afterUpdate() {
    var notes = document.querySelectorAll("#m-notify [data-unread]");
    if (notes.length) {
      notes.forEach(function (n) { n.remove(); });
      if (!widgetOpen || document.visibilityState !== "visible") {
        unread += notes.length;
        toParent({ type: "natter:unread", count: unread });
      }
    }
    var thread = document.querySelector("[data-role=thread]");
    if (thread && thread.lastElementChild && thread.lastElementChild.scrollIntoView && !thread.__scrolled) {
      thread.lastElementChild.scrollIntoView({ block: "end" });
    }
    markRead();
    setupEmoji();
  }

  function api(path, payload) {
    var t = token();
    if (!t) return;
    fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + t },
      body: JSON.stringify(payload)
    }).catch(function () { /* best effort */ });
  }

  function markRead() {
    var conv = document.querySelector(".m-conversation[data-conversation-id]");
    if (!conv || !widgetOpen || document.visibilityState !== "visible") return;
    var msgs = conv.querySelectorAll("[data-seq]");
    if (!msgs.length) return;
    var seq = parseInt(msgs[msgs.length - 1].dataset.seq, 10);
    if (conv.__readSeq === seq) return;
    conv.__readSeq = seq;
    api("/api/v1/customer/conversations/" + conv.dataset.conversationId + "/read", { seq: seq });
    if (unread) { unread = 0; toParent({ type: "natter:unread", count: 0 }); }
  }

  var typingTimer = null;
  document.addEventListener("input", function (e) {
    if (!e.target.matches || !e.target.matches("[data-role=reply]")) return;
    var conv = document.querySelector(".m-conversation[data-conversation-id]");
    if (!conv) return;
    var path = "/api/v1/customer/conversations/" + conv.dataset.conversationId + "/typing";
    if (!typingTimer) api(path, { typing: true });
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { typingTimer = null; api(path, { typing: false }); }, 3000);
  });

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (t.matches && t.matches("[data-role=reply]") && e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      var files = t.form.querySelector("[data-role=file-input]");
      if (t.value.trim() || (files && files.files.length)) t.form.requestSubmit();
    }
  });

  // A small emoji picker that needs no network.
  var EMOJI = "😀 😂 😊 😍 🥰 😎 🤔 😅 😢 😭 😡 👍 👎 👏 🙏 🙌 💪 👋 ❤️ 💔 🎉 🔥 ✨ ✅ ❌ ⭐ 📦 🚚 💳 📧 📞 ⏰ 🙂 😉 😴 🤝".split(" ");
  function setupEmoji() {
    document.querySelectorAll("[data-action=emoji]").forEach(function (b) {
      if (b.__ready) return;
      b.__ready = true;
      b.hidden = false;
      var form = b.closest("form");
      var grid = form.querySelector(".m-emoji");
      b.addEventListener("click", function () {
        if (!grid.firstChild) {
          EMOJI.forEach(function (em) {
            var x = document.createElement("button");
            x.type = "button";
            x.textContent = em;
            x.setAttribute("role", "option");
            x.setAttribute("aria-label", "Insert " + em);
            x.addEventListener("click", function () {
              var ta = form.querySelector("textarea");
              var s = ta.selectionStart || ta.value.length;
              ta.value = ta.value.slice(0, s) + em + ta.value.slice(ta.selectionEnd || s);
              ta.focus();
              ta.selectionStart = ta.selectionEnd = s + em.length;
              grid.hidden = true;
            });
            grid.appendChild(x);
          });
        }
        grid.hidden = !grid.hidden;
      });
    });
  }

  // The widget on the host page talks to us through postMessage.
  window.addEventListener("message", function (e) {
    var d = e.data || {};
    if (e.source !== window.parent || !host || e.origin !== host || typeof d.type !== "string") return;
    if (d.type === "natter:open") { widgetOpen = true; unread = 0; toParent({ type: "natter:unread", count: 0 }); markRead(); }
    else if (d.type === "natter:close") { widgetOpen = false; }
    else if (d.type === "natter:reset") { setToken(null); window.location.replace("/m/" + key + "?embed=1&host=" + encodeURIComponent(host)); }
    else if (d.type === "natter:identify") {
      fetch("/api/v1/widget/" + encodeURIComponent(key) + "/contacts", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ external_id: d.external_id, identifier_hash: d.identifier_hash, name: d.name, email: d.email })
      }).then(function (r) { return r.ok ? r.json() : null; }).then(function (j) {
        if (j && j.token && j.token !== token()) { setToken(j.token); loadView(""); }
        toParent({ type: "natter:identified", ok: !!j });
      }).catch(function () { toParent({ type: "natter:identified", ok: false }); });
    }
  });

  document.addEventListener("click", function (e) {
    var c = e.target.closest && e.target.closest("[data-action=close]");
    if (c) toParent({ type: "natter:close" });
  });

  function loadView(query) {
    if (window.htmx) window.htmx.ajax("GET", "/m/" + key + "/view" + query, { target: "#messenger-main", swap: "innerHTML" });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var main = document.querySelector(".m-main");
    // Rendered without identity (an iframe gets no cookie) but we know
    // who this is: load the contact's view with the token.
    if (main && main.dataset.hasContact !== "true" && token()) {
      var c = new URLSearchParams(window.location.search).get("c");
      loadView(c ? "?c=" + encodeURIComponent(c) : "");
    }
    var accent = window.getComputedStyle(document.documentElement).getPropertyValue("--accent").trim();
    toParent({ type: "natter:ready", accent: accent });
    afterUpdate();
  });
  document.addEventListener("visibilitychange", markRead);
})();

/* Natter widget: <script src="BASE/widget.js" data-key="WIDGET_KEY" defer></script>
   A host page with its own CSP needs two entries: script-src BASE and
   frame-src BASE (the accent colour comes from the messenger frame).
   Adds a launcher that opens the messenger in an iframe. API: Natter.open(),
   Natter.close(), Natter.identify({external_id, identifier_hash, name, email}),
   Natter.reset(), Natter.on("unread", fn). No dependencies, no inline code. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || (window.Natter && window.Natter.__natter)) return;
  var key = script.getAttribute("data-key");
  var base = new URL(script.src, window.location.href).origin;
  var stateKey = "natter-open:" + key;
  var frame = null, panel = null, ready = false, queue = [], listeners = { unread: [] }, isOpen = false;

  var launcher = document.createElement("button");
  launcher.type = "button";
  launcher.setAttribute("data-natter-launcher", "");
  launcher.setAttribute("aria-label", "Open the chat");
  launcher.setAttribute("aria-expanded", "false");
  var s = launcher.style;
  s.position = "fixed"; s.right = "20px"; s.bottom = "20px"; s.width = "56px"; s.height = "56px";
  s.borderRadius = "50%"; s.border = "0"; s.cursor = "pointer"; s.zIndex = "2147483000";
  s.background = "#2563eb"; s.color = "#fff"; s.fontSize = "26px"; s.boxShadow = "0 4px 12px rgba(0,0,0,.25)";
  launcher.textContent = "💬";
  var badge = document.createElement("span");
  var b = badge.style;
  b.position = "absolute"; b.top = "-4px"; b.right = "-4px"; b.minWidth = "20px"; b.height = "20px";
  b.borderRadius = "10px"; b.background = "#dc2626"; b.color = "#fff"; b.fontSize = "12px";
  b.lineHeight = "20px"; b.fontFamily = "system-ui, sans-serif"; b.display = "none";
  badge.setAttribute("data-natter-unread", "");
  launcher.appendChild(badge);

  function post(msg) {
    if (ready && frame) frame.contentWindow.postMessage(msg, base);
    else queue.push(msg);
  }

  function ensureFrame() {
    if (frame) return;
    panel = document.createElement("div");
    panel.setAttribute("data-natter-panel", "");
    var p = panel.style;
    p.position = "fixed"; p.right = "20px"; p.bottom = "88px"; p.width = "380px"; p.height = "600px";
    p.maxWidth = "calc(100vw - 40px)"; p.maxHeight = "calc(100vh - 110px)"; p.zIndex = "2147483000";
    p.borderRadius = "12px"; p.overflow = "hidden"; p.boxShadow = "0 8px 30px rgba(0,0,0,.3)"; p.display = "none";
    p.background = "#fff";
    frame = document.createElement("iframe");
    // The messenger posts unread counts only to this page's origin.
    frame.src = base + "/m/" + encodeURIComponent(key) + "?embed=1&host=" + encodeURIComponent(window.location.origin);
    frame.title = "Chat";
    frame.setAttribute("data-natter-frame", "");
    frame.style.border = "0"; frame.style.width = "100%"; frame.style.height = "100%";
    panel.appendChild(frame);
    document.body.appendChild(panel);
  }

  function open() {
    ensureFrame();
    panel.style.display = "block";
    isOpen = true;
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close the chat");
    try { sessionStorage.setItem(stateKey, "1"); } catch (_) { /* ignore */ }
    post({ type: "natter:open" });
    setUnread(0);
  }

  function close() {
    if (panel) panel.style.display = "none";
    isOpen = false;
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "Open the chat");
    try { sessionStorage.removeItem(stateKey); } catch (_) { /* ignore */ }
    post({ type: "natter:close" });
  }

  function setUnread(n) {
    badge.textContent = n > 9 ? "9+" : String(n);
    badge.style.display = n > 0 ? "block" : "none";
    listeners.unread.forEach(function (fn) { try { fn(n); } catch (_) { /* a listener's own error */ } });
    try { window.dispatchEvent(new CustomEvent("natter:unread", { detail: { count: n } })); } catch (_) { /* old browser */ }
  }

  window.addEventListener("message", function (e) {
    if (e.origin !== base || !frame || e.source !== frame.contentWindow) return;
    var d = e.data || {};
    if (d.type === "natter:ready") {
      ready = true;
      if (/^#[0-9a-fA-F]{6}$/.test(d.accent || "")) launcher.style.background = d.accent;
      var q = queue; queue = [];
      q.forEach(post);
      if (isOpen) post({ type: "natter:open" });
    } else if (d.type === "natter:close") {
      close();
    } else if (d.type === "natter:unread") {
      setUnread(isOpen ? 0 : d.count);
    }
  });

  launcher.addEventListener("click", function () { if (isOpen) close(); else open(); });

  window.Natter = {
    __natter: true,
    open: open,
    close: close,
    identify: function (o) {
      ensureFrame();
      post({ type: "natter:identify", external_id: o.external_id, identifier_hash: o.identifier_hash, name: o.name, email: o.email });
    },
    reset: function () { if (frame) post({ type: "natter:reset" }); },
    on: function (evt, fn) { if (listeners[evt]) listeners[evt].push(fn); }
  };

  function mount() {
    document.body.appendChild(launcher);
    var wasOpen = false;
    try { wasOpen = sessionStorage.getItem(stateKey) === "1"; } catch (_) { /* ignore */ }
    if (wasOpen) open();
    else ensureFrame(); // load early so unread counts arrive while closed
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();

// Natter's live stream for a page: the EventSource htmx's SSE extension
// uses, made to let go of its connection while the page is hidden.
//
// Why: a browser keeps at most six HTTP/1.1 connections per host. A page
// left for another goes into the back/forward cache with its stream still
// open, and after a few clicks the pages behind hold every connection and
// the next one never loads. So a page closes its stream when it is hidden
// or frozen (pagehide, freeze) and opens it again when it is shown or
// resumed (pageshow, resume), from the last event it saw
// (`last_event_id`), so nothing that happened meanwhile is missed or shown
// twice. The extension keeps the object it was given; only the connection
// inside it changes.
(function () {
  "use strict";

  var lastEventId = null;
  var sources = [];

  function LiveSource(url) {
    this.url = url;
    this.listeners = [];
    this.onerror = null;
    this.onopen = null;
    this.done = false;
    this.es = null;
    this.connect();
    sources.push(this);
  }

  LiveSource.prototype.connect = function () {
    var self = this;
    var url = this.url;
    if (lastEventId) url = url.replace(/([?&])last_event_id=\d+/, "$1last_event_id=" + lastEventId);
    var es = new EventSource(url);
    es.onopen = function (e) { if (self.onopen) self.onopen(e); };
    es.onerror = function (e) {
      // The browser gave up on this connection: the extension makes a new
      // source for it, so this one is finished.
      if (es.readyState === EventSource.CLOSED) self.finish();
      if (self.onerror) self.onerror(e);
    };
    this.listeners.forEach(function (l) { es.addEventListener(l[0], l[1]); });
    this.es = es;
  };

  Object.defineProperty(LiveSource.prototype, "readyState", {
    get: function () { return this.es ? this.es.readyState : EventSource.CLOSED; }
  });

  LiveSource.prototype.addEventListener = function (type, fn) {
    this.listeners.push([type, fn]);
    if (this.es) this.es.addEventListener(type, fn);
  };

  LiveSource.prototype.removeEventListener = function (type, fn) {
    this.listeners = this.listeners.filter(function (l) { return l[0] !== type || l[1] !== fn; });
    if (this.es) this.es.removeEventListener(type, fn);
  };

  /// Lets go of the connection until `resume`.
  LiveSource.prototype.pause = function () {
    if (this.es) { this.es.close(); this.es = null; }
  };

  LiveSource.prototype.resume = function () {
    if (!this.done && !this.es) this.connect();
  };

  LiveSource.prototype.finish = function () {
    this.done = true;
    var self = this;
    sources = sources.filter(function (s) { return s !== self; });
  };

  /// Closed for good (the extension's element left the page).
  LiveSource.prototype.close = function () {
    this.pause();
    this.finish();
  };

  if (window.htmx) {
    window.htmx.createEventSource = function (url) { return new LiveSource(url); };
  }

  // The element of a stream says whether it is up (`data-live`), for
  // styles and tests.
  document.addEventListener("htmx:sseOpen", function (e) {
    if (e.target && e.target.setAttribute) e.target.setAttribute("data-live", "");
  });
  document.addEventListener("htmx:sseError", function (e) {
    if (e.target && e.target.removeAttribute) e.target.removeAttribute("data-live");
  });

  document.addEventListener("htmx:sseMessage", function (e) {
    if (e.detail && e.detail.lastEventId) lastEventId = e.detail.lastEventId;
  });

  function pauseAll() {
    sources.forEach(function (s) { s.pause(); });
    document.querySelectorAll("[data-live]").forEach(function (el) { el.removeAttribute("data-live"); });
  }
  function resumeAll() {
    sources.forEach(function (s) { s.resume(); });
  }
  window.addEventListener("pagehide", pauseAll);
  document.addEventListener("freeze", pauseAll);
  window.addEventListener("pageshow", function (e) { if (e.persisted) resumeAll(); });
  document.addEventListener("resume", resumeAll);

  // Changes that depend on what this page shows (src/web/patch.rs): each
  // `<div data-patch>` applies when its target is here and is dropped when
  // not, so a live event never names an element the page lacks.
  function byId(id) { return id ? document.getElementById(id) : null; }
  function applyPatches(root) {
    var patches = root.querySelectorAll("[data-patch]");
    patches.forEach(function (p) {
      var kind = p.dataset.patch;
      var el = byId(p.dataset.id);
      if (kind === "remove") {
        if (el) el.remove();
      } else if (kind === "inner") {
        if (el) { el.innerHTML = p.innerHTML; if (window.htmx) window.htmx.process(el); }
      } else if (kind === "upsert") {
        var parent = byId(p.dataset.parent);
        if (!parent) return;
        var nodes = Array.prototype.slice.call(p.childNodes);
        var place = p.dataset.place;
        // A ticked box stays ticked when its element is drawn again.
        if (el) {
          el.querySelectorAll("input[type=checkbox]:checked").forEach(function (c) {
            nodes.forEach(function (n) {
              if (!n.querySelectorAll) return;
              n.querySelectorAll("input[type=checkbox]").forEach(function (d) {
                if (d.name === c.name && d.value === c.value) d.checked = true;
              });
            });
          });
        }
        if (el && (place === "keep" || place === "keep-end")) {
          el.replaceWith.apply(el, nodes);
        } else {
          if (el) el.remove();
          (p.dataset.remove || "").split(" ").forEach(function (id) { var x = byId(id); if (x) x.remove(); });
          if (place === "end" || place === "keep-end") nodes.forEach(function (n) { parent.appendChild(n); });
          else parent.prepend.apply(parent, nodes);
        }
        nodes.forEach(function (n) { if (n.nodeType === 1 && window.htmx) window.htmx.process(n); });
      }
    });
    if (patches.length) document.dispatchEvent(new CustomEvent("natter:patched"));
  }
  // From the stream: its sink takes the event's fragments, then lets go.
  document.addEventListener("htmx:sseMessage", function (e) {
    var sink = e.target;
    if (!sink || !sink.matches || !sink.matches("[sse-swap]")) return;
    // Out of the page first, so a patch's own copy of an element is not
    // taken for the page's.
    var taken = document.createDocumentFragment();
    while (sink.firstChild) taken.appendChild(sink.firstChild);
    applyPatches(taken);
  });
  // From a form's answer that says it carries patches.
  document.addEventListener("htmx:afterRequest", function (e) {
    var xhr = e.detail.xhr;
    if (!e.detail.successful || !xhr || xhr.getResponseHeader("X-Natter-Patch") !== "1") return;
    var t = document.createElement("template");
    t.innerHTML = xhr.responseText;
    applyPatches(t.content);
  });

  // Times in the viewer's own zone and language: the server writes UTC
  // (it cannot know the zone) and names each instant in `datetime`.
  // data-t="clock": a time of day; "datetime": date and time; otherwise
  // the text stays (relative: "5m") and only the tooltip is localised.
  // An agent's own zone (their profile's, `data-tz`) wins over the
  // browser's.
  var clockFmt = { hour: "numeric", minute: "2-digit" };
  var fullFmt = { dateStyle: "medium", timeStyle: "short" };
  var zoneEl = document.querySelector("[data-tz]");
  var zone = zoneEl && zoneEl.dataset.tz;
  if (zone) {
    try {
      new Intl.DateTimeFormat(undefined, { timeZone: zone });
      clockFmt.timeZone = zone;
      fullFmt.timeZone = zone;
    } catch (_) { /* a zone this browser does not know: its own then */ }
  }
  function localizeTimes() {
    document.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      el.setAttribute("data-local", "");
      try {
        el.title = d.toLocaleString(undefined, fullFmt);
        if (el.dataset.t === "clock") el.textContent = d.toLocaleTimeString(undefined, clockFmt);
        else if (el.dataset.t === "datetime") el.textContent = d.toLocaleString(undefined, fullFmt);
      } catch (_) { /* an old browser without Intl options keeps the UTC text */ }
    });
  }
  document.addEventListener("DOMContentLoaded", localizeTimes);
  document.addEventListener("htmx:load", localizeTimes);
  document.addEventListener("htmx:afterSettle", localizeTimes);
  document.addEventListener("natter:patched", localizeTimes);

  window.NatterLive = { lastEventId: function () { return lastEventId; } };
})();

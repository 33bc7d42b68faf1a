// Natter's service worker: an offline shell for the installed workspace and
// Web Push notifications. Pages are live (SSE), so only the static shell is
// cached; a page that cannot load offline gets a small "offline" page.
"use strict";

const CACHE = "natter-shell-v1";
const SHELL = [
  "/static/app.css",
  "/static/app.js",
  "/static/icon.svg",
  "/static/vendor/htmx-2.0.11.min.js",
  "/static/vendor/htmx-ext-sse-2.2.4.min.js",
];
const OFFLINE = "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>" +
  "<title>Offline · Natter</title><link rel=stylesheet href=/static/app.css>" +
  "<main class=offline><h1>You are offline</h1><p>Natter will reconnect when the network is back. " +
  "Nothing you sent is lost.</p><p><a href=/inbox>Try again</a></p></main></html>";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/static/")) {
    event.respondWith(caches.match(req).then((hit) => hit || fetch(req)));
    return;
  }
  if (req.mode === "navigate") {
    event.respondWith(
      fetch(req).catch(() => new Response(OFFLINE, { headers: { "content-type": "text/html; charset=utf-8" } })),
    );
  }
});

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (_) { data = {}; }
  const title = data.title || "Natter";
  event.waitUntil(self.registration.showNotification(title, {
    body: data.body || "",
    tag: data.tag,
    icon: "/static/icon.svg",
    data: { url: data.url || "/inbox" },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/inbox";
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((list) => {
      for (const c of list) {
        if ("focus" in c) { c.navigate(url); return c.focus(); }
      }
      return self.clients.openWindow(url);
    }),
  );
});

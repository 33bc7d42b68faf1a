//! The permission matrix: every route of the API and every page, called as
//! nobody, contact A, contact B, an agent outside the inbox, an agent in
//! it, a deactivated agent and an admin. The routes are read from the
//! source, so a route added without a row here fails this test.

use std::collections::BTreeSet;

use reqwest::{redirect, Client, Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{body, spawn_app, TestApp};

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Nobody,
    ContactA,
    ContactB,
    Outsider,
    Member,
    Deactivated,
    Admin,
}

const ROLES: [Role; 7] = [
    Role::Nobody,
    Role::ContactA,
    Role::ContactB,
    Role::Outsider,
    Role::Member,
    Role::Deactivated,
    Role::Admin,
];

/// (method, route template, expected status per role in `ROLES` order).
const MATRIX: &[(&str, &str, [u16; 7])] = &[
    // Public and operational.
    ("GET", "/healthz", [200, 200, 200, 200, 200, 200, 200]),
    // Only the metrics token opens it, never an agent's or a contact's.
    ("GET", "/metrics", [401, 401, 401, 401, 401, 401, 401]),
    ("GET", "/setup", [200, 200, 200, 200, 200, 200, 200]),
    ("POST", "/setup", [403, 403, 403, 403, 403, 403, 403]),
    (
        "GET",
        "/static/{file:.*}",
        [200, 200, 200, 200, 200, 200, 200],
    ),
    (
        "GET",
        "/files/{id}/{name}",
        [200, 200, 200, 200, 200, 200, 200],
    ),
    ("GET", "/widget.js", [200, 200, 200, 200, 200, 200, 200]),
    // Agents' API.
    (
        "POST",
        "/api/v1/auth/login",
        [200, 200, 200, 200, 200, 200, 200],
    ),
    (
        "POST",
        "/api/v1/auth/logout",
        [401, 401, 401, 204, 204, 401, 204],
    ),
    // Says the same whoever asks and whether or not the address is an
    // agent's.
    (
        "POST",
        "/api/v1/auth/forgot",
        [202, 202, 202, 202, 202, 202, 202],
    ),
    ("GET", "/api/v1/me", [401, 401, 401, 200, 200, 401, 200]),
    (
        "POST",
        "/api/v1/me/password",
        [401, 401, 401, 403, 403, 401, 403],
    ),
    ("GET", "/api/v1/agents", [401, 401, 401, 200, 200, 401, 200]),
    (
        "POST",
        "/api/v1/agents",
        [401, 401, 401, 403, 403, 401, 201],
    ),
    (
        "GET",
        "/api/v1/agents/{id}",
        [401, 401, 401, 200, 200, 401, 200],
    ),
    (
        "PATCH",
        "/api/v1/agents/{id}",
        [401, 401, 401, 403, 403, 401, 200],
    ),
    (
        "POST",
        "/api/v1/agents/{id}/password-link",
        [401, 401, 401, 403, 403, 401, 200],
    ),
    (
        "GET",
        "/api/v1/inboxes",
        [401, 401, 401, 200, 200, 401, 200],
    ),
    (
        "POST",
        "/api/v1/inboxes",
        [401, 401, 401, 403, 403, 401, 201],
    ),
    (
        "GET",
        "/api/v1/inboxes/{id}",
        [401, 401, 401, 404, 200, 401, 200],
    ),
    (
        "PATCH",
        "/api/v1/inboxes/{id}",
        [401, 401, 401, 403, 403, 401, 200],
    ),
    (
        "POST",
        "/api/v1/inboxes/{id}/test",
        [401, 401, 401, 403, 403, 401, 200],
    ),
    // Each agent sets their own availability (a deactivated one cannot).
    (
        "PUT",
        "/api/v1/me/availability",
        [401, 401, 401, 200, 200, 401, 200],
    ),
    // Backups: admins only.
    (
        "GET",
        "/api/v1/admin/backups",
        [401, 401, 401, 403, 403, 401, 200],
    ),
    (
        "POST",
        "/api/v1/admin/backups",
        [401, 401, 401, 403, 403, 401, 201],
    ),
    (
        "GET",
        "/api/v1/admin/backups/{name}",
        [401, 401, 401, 403, 403, 401, 200],
    ),
    (
        "DELETE",
        "/api/v1/admin/backups/{name}",
        [401, 401, 401, 403, 403, 401, 204],
    ),
    (
        "POST",
        "/settings/backups",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "GET",
        "/settings/backups/{name}/download",
        [303, 303, 303, 403, 403, 303, 200],
    ),
    (
        "POST",
        "/settings/backups/{name}/delete",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    // Teams: every agent reads them; admins shape them.
    ("GET", "/api/v1/teams", [401, 401, 401, 200, 200, 401, 200]),
    ("POST", "/api/v1/teams", [401, 401, 401, 403, 403, 401, 201]),
    (
        "GET",
        "/api/v1/teams/{id}",
        [401, 401, 401, 200, 200, 401, 200],
    ),
    (
        "PATCH",
        "/api/v1/teams/{id}",
        [401, 401, 401, 403, 403, 401, 200],
    ),
    (
        "DELETE",
        "/api/v1/teams/{id}",
        [401, 401, 401, 403, 403, 401, 204],
    ),
    (
        "GET",
        "/api/v1/webhooks",
        [401, 401, 401, 403, 403, 401, 200],
    ),
    (
        "POST",
        "/api/v1/webhooks",
        [401, 401, 401, 403, 403, 401, 201],
    ),
    (
        "DELETE",
        "/api/v1/webhooks/{id}",
        [401, 401, 401, 403, 403, 401, 204],
    ),
    (
        "GET",
        "/api/v1/webhooks/{id}/deliveries",
        [401, 401, 401, 403, 403, 401, 200],
    ),
    // An admin retrying an event the webhook never tried: 404 (the retry
    // itself is in webhooks.rs).
    (
        "POST",
        "/api/v1/webhooks/{id}/deliveries/{event_id}/retry",
        [401, 401, 401, 403, 403, 401, 404],
    ),
    (
        "GET",
        "/api/v1/push/key",
        [401, 401, 401, 200, 200, 401, 200],
    ),
    (
        "GET",
        "/api/v1/push/subscriptions",
        [401, 401, 401, 200, 200, 401, 200],
    ),
    (
        "POST",
        "/api/v1/push/subscriptions",
        [401, 401, 401, 422, 422, 401, 422],
    ),
    (
        "DELETE",
        "/api/v1/push/subscriptions",
        [401, 401, 401, 204, 204, 401, 204],
    ),
    ("GET", "/sw.js", [200, 200, 200, 200, 200, 200, 200]),
    (
        "GET",
        "/manifest.webmanifest",
        [200, 200, 200, 200, 200, 200, 200],
    ),
    (
        "GET",
        "/m/{key}/confirm-email",
        [404, 404, 404, 404, 404, 404, 404],
    ),
    (
        "POST",
        "/m/{key}/confirm-email",
        [404, 404, 404, 404, 404, 404, 404],
    ),
    (
        "GET",
        "/m/{key}/unsubscribe",
        [404, 404, 404, 404, 404, 404, 404],
    ),
    (
        "POST",
        "/m/{key}/unsubscribe",
        [404, 404, 404, 404, 404, 404, 404],
    ),
    (
        "GET",
        "/api/v1/contacts/{id}",
        [401, 401, 401, 404, 200, 401, 200],
    ),
    (
        "POST",
        "/api/v1/contacts/{id}/merge",
        [401, 401, 401, 404, 200, 401, 200],
    ),
    (
        "POST",
        "/api/v1/channels/api/{inbox_id}/messages",
        [401, 401, 401, 401, 401, 401, 401],
    ),
    (
        "POST",
        "/api/v1/conversations/{id}/messages/{seq}/retry",
        [401, 401, 401, 404, 409, 401, 409],
    ),
    (
        "POST",
        "/ui/conversations/{id}/messages/{seq}/retry",
        [303, 303, 303, 404, 409, 303, 409],
    ),
    (
        "GET",
        "/hooks/{provider}/{inbox_id}",
        [404, 404, 404, 404, 404, 404, 404],
    ),
    (
        "POST",
        "/hooks/{provider}/{inbox_id}",
        [404, 404, 404, 404, 404, 404, 404],
    ),
    (
        "POST",
        "/hooks/{provider}/{inbox_id}/{sub}",
        [404, 404, 404, 404, 404, 404, 404],
    ),
    (
        "GET",
        "/api/v1/inboxes/{id}/members",
        [401, 401, 401, 404, 200, 401, 200],
    ),
    (
        "POST",
        "/api/v1/inboxes/{id}/members",
        [401, 401, 401, 403, 403, 401, 201],
    ),
    (
        "DELETE",
        "/api/v1/inboxes/{id}/members/{agent_id}",
        [401, 401, 401, 403, 403, 401, 204],
    ),
    (
        "GET",
        "/api/v1/conversations",
        [401, 401, 401, 200, 200, 401, 200],
    ),
    (
        "GET",
        "/api/v1/conversations/{id}",
        [401, 401, 401, 404, 200, 401, 200],
    ),
    (
        "PATCH",
        "/api/v1/conversations/{id}",
        [401, 401, 401, 404, 200, 401, 200],
    ),
    (
        "GET",
        "/api/v1/conversations/{id}/messages",
        [401, 401, 401, 404, 200, 401, 200],
    ),
    (
        "POST",
        "/api/v1/conversations/{id}/messages",
        [401, 401, 401, 404, 201, 401, 201],
    ),
    (
        "POST",
        "/api/v1/conversations/{id}/typing",
        [401, 401, 401, 404, 204, 401, 204],
    ),
    (
        "POST",
        "/api/v1/conversations/{id}/read",
        [401, 401, 401, 404, 204, 401, 204],
    ),
    ("GET", "/api/v1/search", [401, 401, 401, 200, 200, 401, 200]),
    ("GET", "/api/v1/events", [401, 401, 401, 200, 200, 401, 200]),
    (
        "DELETE",
        "/api/v1/contacts/{id}",
        [401, 401, 401, 403, 403, 401, 204],
    ),
    // Customers' API.
    (
        "GET",
        "/api/v1/widget/{widget_key}",
        [200, 200, 200, 200, 200, 200, 200],
    ),
    (
        "POST",
        "/api/v1/widget/{widget_key}/contacts",
        [201, 201, 201, 201, 201, 201, 201],
    ),
    (
        "POST",
        "/api/v1/widget/{widget_key}/resume",
        [401, 401, 401, 401, 401, 401, 401],
    ),
    (
        "GET",
        "/api/v1/customer/me",
        [401, 200, 200, 401, 401, 401, 401],
    ),
    (
        "GET",
        "/api/v1/customer/conversations",
        [401, 200, 200, 401, 401, 401, 401],
    ),
    (
        "POST",
        "/api/v1/customer/conversations",
        [401, 201, 201, 401, 401, 401, 401],
    ),
    (
        "GET",
        "/api/v1/customer/conversations/{id}",
        [401, 200, 404, 401, 401, 401, 401],
    ),
    (
        "GET",
        "/api/v1/customer/conversations/{id}/messages",
        [401, 200, 404, 401, 401, 401, 401],
    ),
    (
        "POST",
        "/api/v1/customer/conversations/{id}/messages",
        [401, 201, 404, 401, 401, 401, 401],
    ),
    (
        "POST",
        "/api/v1/customer/conversations/{id}/typing",
        [401, 204, 404, 401, 401, 401, 401],
    ),
    (
        "POST",
        "/api/v1/customer/conversations/{id}/read",
        [401, 204, 404, 401, 401, 401, 401],
    ),
    // Its own conversation, which is not resolved: nothing to rate yet.
    (
        "POST",
        "/api/v1/customer/conversations/{id}/rating",
        [401, 422, 404, 401, 401, 401, 401],
    ),
    // A rating link is its own credential: a forged one is a 404 for all.
    ("GET", "/rate/{token}", [404, 404, 404, 404, 404, 404, 404]),
    ("POST", "/rate/{token}", [404, 404, 404, 404, 404, 404, 404]),
    (
        "POST",
        "/api/v1/customer/resume-links",
        [401, 201, 201, 401, 401, 401, 401],
    ),
    (
        "GET",
        "/api/v1/customer/search",
        [401, 200, 200, 401, 401, 401, 401],
    ),
    (
        "GET",
        "/api/v1/customer/events",
        [401, 200, 200, 401, 401, 401, 401],
    ),
    // The messenger (contacts by bearer token; agents are nobody there).
    ("GET", "/m/{key}", [200, 200, 200, 200, 200, 200, 200]),
    ("GET", "/m/{key}/view", [200, 200, 200, 200, 200, 200, 200]),
    (
        "GET",
        "/m/{key}/theme.css",
        [200, 200, 200, 200, 200, 200, 200],
    ),
    (
        "POST",
        "/m/{key}/start",
        [303, 303, 303, 303, 303, 303, 303],
    ),
    (
        "POST",
        "/m/{key}/c/{id}/messages",
        [401, 303, 404, 401, 401, 401, 401],
    ),
    (
        "GET",
        "/m/{key}/c/{id}/older",
        [404, 200, 404, 404, 404, 404, 404],
    ),
    (
        "POST",
        "/m/{key}/c/{id}/rate",
        [401, 422, 404, 401, 401, 401, 401],
    ),
    (
        "POST",
        "/m/{key}/resume",
        [410, 410, 410, 410, 410, 410, 410],
    ),
    (
        "POST",
        "/m/{key}/resume-link",
        [401, 201, 201, 401, 401, 401, 401],
    ),
    (
        "POST",
        "/m/{key}/email",
        [401, 303, 303, 401, 401, 401, 401],
    ),
    (
        "GET",
        "/m/{key}/events",
        [401, 200, 200, 401, 401, 401, 401],
    ),
    // The agent workspace (agents by session cookie and CSRF header).
    ("GET", "/", [303, 303, 303, 303, 303, 303, 303]),
    ("GET", "/login", [200, 200, 200, 303, 303, 200, 303]),
    // Without the sign-in form's own token (login CSRF).
    ("POST", "/login", [403, 403, 403, 403, 403, 403, 403]),
    ("POST", "/logout", [303, 303, 303, 303, 303, 303, 303]),
    // Anyone may ask; a post needs the page's own form token, and a bogus
    // link is gone for everybody.
    (
        "GET",
        "/password/forgot",
        [200, 200, 200, 200, 200, 200, 200],
    ),
    (
        "POST",
        "/password/forgot",
        [403, 403, 403, 403, 403, 403, 403],
    ),
    ("GET", "/password/set", [410, 410, 410, 410, 410, 410, 410]),
    // (A good link without the form's token is 403: see agents.rs.)
    ("POST", "/password/set", [410, 410, 410, 410, 410, 410, 410]),
    ("GET", "/inbox", [303, 303, 303, 200, 200, 303, 200]),
    (
        "GET",
        "/conversations/{id}",
        [303, 303, 303, 404, 200, 303, 200],
    ),
    ("GET", "/search", [303, 303, 303, 200, 200, 303, 200]),
    ("GET", "/ui/events", [303, 303, 303, 200, 200, 303, 200]),
    (
        "POST",
        "/ui/conversations/{id}/messages",
        [303, 303, 303, 404, 201, 303, 201],
    ),
    (
        "POST",
        "/ui/conversations/{id}/update",
        [303, 303, 303, 404, 204, 303, 204],
    ),
    (
        "POST",
        "/ui/conversations/{id}/read",
        [303, 303, 303, 404, 204, 303, 204],
    ),
    (
        "POST",
        "/ui/conversations/{id}/typing",
        [303, 303, 303, 404, 204, 303, 204],
    ),
    ("GET", "/settings", [303, 303, 303, 303, 303, 303, 303]),
    (
        "GET",
        "/settings/{section}",
        [303, 303, 303, 404, 404, 303, 200],
    ),
    (
        "POST",
        "/settings/profile",
        [303, 303, 303, 303, 303, 303, 303],
    ),
    (
        "POST",
        "/settings/password",
        [303, 303, 303, 403, 403, 303, 403],
    ),
    (
        "POST",
        "/settings/agents",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "POST",
        "/settings/agents/{id}",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    // The page that shows the new link (no redirect: it is shown once).
    (
        "POST",
        "/settings/agents/{id}/link",
        [303, 303, 303, 403, 403, 303, 200],
    ),
    (
        "POST",
        "/settings/inboxes",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "POST",
        "/settings/inboxes/{id}",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    // One inbox's own page: admins only (to an agent it does not exist).
    (
        "GET",
        "/settings/inboxes/{id}",
        [303, 303, 303, 404, 404, 303, 200],
    ),
    (
        "POST",
        "/settings/inboxes/{id}/rotate-secret",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "POST",
        "/settings/inboxes/{id}/members",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "POST",
        "/settings/inboxes/{id}/members/{agent}/remove",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "POST",
        "/settings/inboxes/{id}/channel",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "POST",
        "/settings/inboxes/{id}/assignment",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "POST",
        "/settings/inboxes/{id}/hours",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "POST",
        "/settings/inboxes/{id}/sla",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "POST",
        "/settings/inboxes/{id}/test",
        [303, 303, 303, 403, 403, 303, 200],
    ),
    (
        "POST",
        "/ui/contacts/{id}/merge",
        [303, 303, 303, 404, 303, 303, 303],
    ),
    // Bulk actions over conversations the agent sees (the outsider does
    // not see this one: 404, nothing changed); a plain form goes back.
    ("POST", "/ui/bulk", [303, 303, 303, 404, 303, 303, 303]),
    // An agent's own browser zone; nobody else's.
    (
        "POST",
        "/ui/profile/timezone",
        [303, 303, 303, 204, 204, 303, 204],
    ),
    (
        "POST",
        "/ui/profile/availability",
        [303, 303, 303, 204, 204, 303, 204],
    ),
    (
        "POST",
        "/settings/teams",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "POST",
        "/settings/teams/{id}",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "POST",
        "/settings/teams/{id}/delete",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "GET",
        "/settings/webhooks/{id}",
        [303, 303, 303, 404, 404, 303, 200],
    ),
    // The answer shows the new secret once: a page, not a redirect.
    (
        "POST",
        "/settings/webhooks",
        [303, 303, 303, 403, 403, 303, 200],
    ),
    (
        "POST",
        "/settings/webhooks/{id}/delete",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "POST",
        "/settings/webhooks/{id}/retry",
        [303, 303, 303, 403, 403, 303, 404],
    ),
    (
        "POST",
        "/settings/canned",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "POST",
        "/settings/canned/{id}",
        [303, 303, 303, 403, 403, 303, 303],
    ),
    (
        "POST",
        "/settings/canned/{id}/delete",
        [303, 303, 303, 403, 403, 303, 303],
    ),
];

/// Every `(METHOD, path)` registered in `src/web`, with the API scope.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let src = std::fs::read_to_string(&path).unwrap();
            let prefix = if path.ends_with("api/mod.rs") {
                "/api/v1"
            } else {
                ""
            };
            let compact: String = src.split_whitespace().collect::<Vec<_>>().join("");
            // `.service(web::scope("/x") .route("/{id}", ...) ...)`: the
            // routes inside the service call are under `/x`.
            let mut scopes: Vec<(usize, usize, String)> = Vec::new();
            for (at, _) in compact.match_indices(".service(web::scope(\"") {
                let open = at + ".service".len();
                let name_at = at + ".service(web::scope(\"".len();
                let Some(name) = compact[name_at..].split('"').next() else {
                    continue;
                };
                let mut depth = 0usize;
                let mut close = compact.len();
                for (i, c) in compact[open..].char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                close = open + i;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                scopes.push((open, close, name.to_owned()));
            }
            for (at, _) in compact.match_indices(".route(\"") {
                let part = &compact[at + ".route(\"".len()..];
                let Some((route, rest)) = part.split_once('"') else {
                    continue;
                };
                let scope: String = scopes
                    .iter()
                    .filter(|(open, close, _)| *open < at && at < *close)
                    .map(|(_, _, name)| name.as_str())
                    .collect();
                let route = format!("{scope}{route}");
                let route = route.as_str();
                let Some(method) = rest
                    .strip_prefix(",web::")
                    .and_then(|r| r.split_once("()"))
                    .map(|(m, _)| m.to_uppercase())
                else {
                    continue;
                };
                out.insert((method, format!("{prefix}{route}")));
            }
        }
    }
    out
}

#[test]
fn every_route_has_a_row_in_the_matrix() {
    let source = routes_in_source();
    let matrix: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = source.difference(&matrix).collect();
    let stale: Vec<_> = matrix.difference(&source).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the permission matrix: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "rows for routes that no longer exist: {stale:?}"
    );
    assert!(
        source.len() > 70,
        "the route scan found only {} routes",
        source.len()
    );
}

/// Everything the calls need.
struct World {
    app: TestApp,
    client: Client,
    contact_a: String,
    contact_b: String,
    conversation: String,
    file_url: String,
    member_id: String,
    tokens: [Option<String>; 7],
    sessions: [Option<(String, String)>; 7],
    counter: std::sync::atomic::AtomicU64,
}

fn csrf_for(session: &str) -> String {
    hex::encode(Sha256::digest(format!("natter-csrf:{session}").as_bytes()))
}

async fn session(app: &TestApp, client: &Client, email: &str, password: &str) -> (String, String) {
    let r =
        crate::helpers::post_login(client, app, &[("email", email), ("password", password)]).await;
    if r.status() != StatusCode::SEE_OTHER {
        panic!(
            "sign-in of {email} failed: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let token = cookie.split_once('=').unwrap().1.to_owned();
    (cookie, csrf_for(&token))
}

impl World {
    async fn new() -> World {
        let app = spawn_app().await;
        let client = crate::helpers::client_builder()
            .redirect(redirect::Policy::none())
            .build()
            .unwrap();
        let (_, contact_a) = app.contact().await;
        let (_, contact_b) = app.contact().await;
        let (conversation, _) = app
            .start_conversation(&contact_a, "the subject of every check")
            .await;
        app.contact_says(&contact_a, &conversation, "a second message")
            .await;
        let png = b"\x89PNG\r\n\x1a\n0000".to_vec();
        let form = reqwest::multipart::Form::new()
            .text("body", "with a file")
            .part(
                "file",
                reqwest::multipart::Part::bytes(png).file_name("a.png"),
            );
        let m = body(
            app.client
                .post(app.url(&format!(
                    "/api/v1/customer/conversations/{conversation}/messages"
                )))
                .bearer_auth(&contact_a)
                .multipart(form)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let file_url = m["attachments"][0]["url"].as_str().unwrap().to_owned();
        let (_, outsider) = app.create_agent("outsider@example.com", "agent").await;
        let (member_id, member) = app.member_agent("member@example.com").await;
        let (deact_id, deactivated) = app.create_agent("deact@example.com", "agent").await;
        let outsider_s = session(&app, &client, "outsider@example.com", "agent-password").await;
        let member_s = session(&app, &client, "member@example.com", "agent-password").await;
        let deact_s = session(&app, &client, "deact@example.com", "agent-password").await;
        let admin_s = session(
            &app,
            &client,
            crate::helpers::ADMIN_EMAIL,
            crate::helpers::ADMIN_PASSWORD,
        )
        .await;
        app.add_member(&app.inbox_id.clone(), &deact_id).await;
        let r = app
            .patch(
                &format!("/api/v1/agents/{deact_id}"),
                &app.admin_token,
                json!({"active": false}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let tokens = [
            None,
            Some(contact_a.clone()),
            Some(contact_b.clone()),
            Some(outsider),
            Some(member),
            Some(deactivated),
            Some(app.admin_token.clone()),
        ];
        let sessions = [
            None,
            None,
            None,
            Some(outsider_s),
            Some(member_s),
            Some(deact_s),
            Some(admin_s),
        ];
        World {
            app,
            client,
            contact_a,
            contact_b,
            conversation,
            file_url,
            member_id,
            tokens,
            sessions,
            counter: Default::default(),
        }
    }

    fn next(&self) -> u64 {
        self.counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    async fn fresh_agent(&self) -> String {
        let n = self.next();
        let r = self
            .app
            .post("/api/v1/agents", &self.app.admin_token, json!({"email": format!("fresh{n}@example.com"), "name": "Fresh", "password": "fresh-password"}))
            .await;
        body(r).await["id"].as_str().unwrap().to_owned()
    }

    async fn fresh_webhook(&self) -> String {
        let r = self
            .app
            .post(
                "/api/v1/webhooks",
                &self.app.admin_token,
                json!({"url": "https://example.com/hook", "events": ["contact.deleted"]}),
            )
            .await;
        body(r).await["id"].as_str().unwrap().to_owned()
    }

    async fn fresh_backup(&self) -> String {
        let r = self
            .app
            .post("/api/v1/admin/backups", &self.app.admin_token, json!({}))
            .await;
        body(r).await["name"].as_str().unwrap().to_owned()
    }

    async fn fresh_team(&self) -> String {
        let n = self.next();
        let r = self
            .app
            .post(
                "/api/v1/teams",
                &self.app.admin_token,
                json!({"name": format!("Fresh team {n}")}),
            )
            .await;
        body(r).await["id"].as_str().unwrap().to_owned()
    }

    async fn fresh_contact(&self) -> String {
        self.app.contact().await.0
    }

    async fn fresh_canned(&self) -> String {
        // Through the admin's settings form, then read back from the page.
        let n = self.next();
        let (cookie, csrf) = self.sessions[6].clone().unwrap();
        let shortcut = format!("c{n}");
        self.client
            .post(self.app.url("/settings/canned"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .form(&[("shortcut", shortcut.as_str()), ("text", "hello")])
            .send()
            .await
            .unwrap();
        let html = self
            .client
            .get(self.app.url("/settings/canned"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let marker = format!("value=\"{shortcut}\"");
        let before = &html[..html.find(&marker).unwrap()];
        let action = before.rsplit("action=\"/settings/canned/").next().unwrap();
        action.split('"').next().unwrap().to_owned()
    }

    /// The concrete path, body and credentials for one cell.
    async fn call(&self, method: &str, template: &str, role: Role) -> StatusCode {
        let i = ROLES.iter().position(|r| *r == role).unwrap();
        let app = &self.app;
        let key = app.widget_key.clone();
        let mut path = template
            .replace("{widget_key}", &key)
            .replace("{key}", &key)
            .replace("{file:.*}", "app.css")
            .replace("{section}", "agents");
        let conv = self.conversation.clone();
        let is_api = path.starts_with("/api/");
        let is_messenger = path.starts_with("/m/");
        let mut json_body: Option<Value> = None;
        let mut form: Vec<(String, String)> = Vec::new();
        // Fill ids and bodies per route.
        match (method, template) {
            (_, "/files/{id}/{name}") => path = self.file_url.clone(),
            ("POST", "/setup") => {
                form = vec![
                    ("token".into(), "bogus".into()),
                    ("name".into(), "X".into()),
                    ("email".into(), "x@example.com".into()),
                    ("password".into(), "xxxxxxxx".into()),
                ]
            }
            ("POST", "/api/v1/auth/login") => {
                json_body =
                    Some(json!({"email": "member@example.com", "password": "agent-password"}))
            }
            ("POST", "/api/v1/me/password") => {
                json_body =
                    Some(json!({"current_password": "wrong-one", "new_password": "new-password-1"}))
            }
            ("POST", "/api/v1/agents") => {
                let n = self.next();
                json_body = Some(
                    json!({"email": format!("new{n}@example.com"), "name": "New", "password": "new-password"}),
                );
            }
            ("GET", "/api/v1/agents/{id}") => path = path.replace("{id}", &self.member_id),
            ("POST", "/api/v1/agents/{id}/password-link")
            | ("POST", "/settings/agents/{id}/link") => {
                path = path.replace("{id}", &self.fresh_agent().await)
            }
            ("POST", "/api/v1/auth/forgot") => {
                let n = self.next();
                json_body = Some(json!({"email": format!("forgetful{n}@example.com")}));
            }
            ("POST", "/password/forgot") => form = vec![("email".into(), "me@example.com".into())],
            ("GET", "/password/set") => path.push_str("?t=i1.0.bogus"),
            ("POST", "/password/set") => {
                form = vec![
                    ("t".into(), "i1.0.bogus".into()),
                    ("password".into(), "a-new-password".into()),
                ]
            }
            ("PATCH", "/api/v1/agents/{id}") => {
                path = path.replace("{id}", &self.fresh_agent().await);
                json_body = Some(json!({"name": "Renamed"}));
            }
            ("POST", "/api/v1/inboxes") => json_body = Some(json!({"name": "Another"})),
            ("POST", "/api/v1/inboxes/{id}/members") => {
                path = path.replace("{id}", &app.inbox_id);
                json_body = Some(json!({"agent_id": self.fresh_agent().await}));
            }
            ("DELETE", "/api/v1/inboxes/{id}/members/{agent_id}") => {
                let a = self.fresh_agent().await;
                app.add_member(&app.inbox_id, &a).await;
                path = path
                    .replace("{id}", &app.inbox_id)
                    .replace("{agent_id}", &a);
            }
            ("PATCH", "/api/v1/inboxes/{id}") => {
                path = path.replace("{id}", &app.inbox_id);
                json_body = Some(json!({"name": "Website"}));
            }
            (_, t) if t.starts_with("/api/v1/inboxes/{id}") => {
                path = path.replace("{id}", &app.inbox_id)
            }
            (_, "/m/{key}/unsubscribe") => path.push_str("?c=1&t=bogus"),
            ("GET", "/m/{key}/confirm-email") => {
                path.push_str("?c=1&e=x%40example.com&at=0&d=x&t=bogus")
            }
            ("POST", "/m/{key}/confirm-email") => {
                form = [
                    ("c", "1"),
                    ("e", "x@example.com"),
                    ("at", "0"),
                    ("d", "x"),
                    ("t", "bogus"),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
            }
            ("POST", "/api/v1/push/subscriptions") => {
                json_body = Some(
                    json!({"endpoint": "https://push.example.com/x", "keys": {"p256dh": "bad", "auth": "bad"}}),
                )
            }
            ("DELETE", "/api/v1/push/subscriptions") => {
                path.push_str("?endpoint=https%3A%2F%2Fpush.example.com%2Fx")
            }
            ("PUT", "/api/v1/me/availability") => json_body = Some(json!({"availability": "busy"})),
            ("POST", "/api/v1/admin/backups") => json_body = Some(json!({})),
            ("GET", "/api/v1/admin/backups/{name}")
            | ("DELETE", "/api/v1/admin/backups/{name}")
            | ("GET", "/settings/backups/{name}/download")
            | ("POST", "/settings/backups/{name}/delete") => {
                path = path.replace("{name}", &self.fresh_backup().await)
            }
            ("POST", "/settings/teams") => {
                form = vec![("name".into(), format!("Form team {}", self.next()))]
            }
            ("POST", "/settings/teams/{id}") => {
                path = path.replace("{id}", &self.fresh_team().await);
                form = vec![("name".into(), format!("Form rename {}", self.next()))];
            }
            ("POST", "/settings/teams/{id}/delete") => {
                path = path.replace("{id}", &self.fresh_team().await)
            }
            ("POST", "/api/v1/teams") => {
                json_body = Some(json!({"name": format!("Team {}", self.next())}))
            }
            ("GET", "/api/v1/teams/{id}") | ("DELETE", "/api/v1/teams/{id}") => {
                path = path.replace("{id}", &self.fresh_team().await)
            }
            ("PATCH", "/api/v1/teams/{id}") => {
                path = path.replace("{id}", &self.fresh_team().await);
                json_body = Some(json!({"name": format!("Renamed {}", self.next())}));
            }
            ("POST", "/api/v1/webhooks") => {
                json_body =
                    Some(json!({"url": "https://example.com/hook", "events": ["contact.deleted"]}))
            }
            ("DELETE", "/api/v1/webhooks/{id}") => {
                path = path.replace("{id}", &self.fresh_webhook().await)
            }
            ("GET", "/api/v1/webhooks/{id}/deliveries")
            | ("GET", "/settings/webhooks/{id}")
            | ("POST", "/settings/webhooks/{id}/delete") => {
                path = path.replace("{id}", &self.fresh_webhook().await)
            }
            ("POST", "/api/v1/webhooks/{id}/deliveries/{event_id}/retry") => {
                path = path
                    .replace("{id}", &self.fresh_webhook().await)
                    .replace("{event_id}", "1")
            }
            ("POST", "/settings/webhooks/{id}/retry") => {
                path = path.replace("{id}", &self.fresh_webhook().await);
                form = vec![("event_id".into(), "1".into())];
            }
            ("POST", "/settings/webhooks") => {
                form = vec![
                    ("url".into(), "https://example.com/hook".into()),
                    ("events".into(), "contact.deleted".into()),
                ]
            }
            ("GET", "/api/v1/contacts/{id}") => {
                path = path.replace("{id}", &self.fresh_contact().await)
            }
            ("POST", "/api/v1/contacts/{id}/merge") => {
                path = path.replace("{id}", &self.fresh_contact().await);
                json_body = Some(json!({"into": self.fresh_contact().await}));
            }
            ("POST", "/api/v1/channels/api/{inbox_id}/messages") => {
                path = path.replace("{inbox_id}", &app.inbox_id);
                json_body = Some(json!({"source_id": "s1", "body": "hi"}));
            }
            (_, t) if t.contains("{seq}") => path = path.replace("{seq}", "1"),
            (_, t) if t.starts_with("/hooks/") => {
                path = path
                    .replace("{provider}", "twilio")
                    .replace("{inbox_id}", &app.inbox_id)
                    .replace("{sub}", "status")
            }
            ("PATCH", "/api/v1/conversations/{id}") => {
                json_body = Some(json!({"labels": ["checked"]}))
            }
            ("POST", "/api/v1/conversations/{id}/messages")
            | ("POST", "/api/v1/customer/conversations/{id}/messages")
            | ("POST", "/api/v1/customer/conversations") => {
                json_body = Some(json!({"body": "hello"}))
            }
            ("POST", t) if t.ends_with("/typing") && is_api => {
                json_body = Some(json!({"typing": true}))
            }
            ("POST", t) if t.ends_with("/read") && is_api => json_body = Some(json!({"seq": 1})),
            ("GET", "/api/v1/search") | ("GET", "/api/v1/customer/search") | ("GET", "/search") => {
                path.push_str("?q=subject")
            }
            ("DELETE", "/api/v1/contacts/{id}") => {
                path = path.replace("{id}", &self.fresh_contact().await)
            }
            ("POST", "/api/v1/widget/{widget_key}/contacts") => json_body = Some(json!({})),
            ("POST", "/api/v1/widget/{widget_key}/resume") => {
                json_body = Some(json!({"token": "bogus"}))
            }
            ("POST", "/m/{key}/start")
            | ("POST", "/m/{key}/c/{id}/messages")
            | ("POST", "/ui/conversations/{id}/messages") => {
                form = vec![("body".into(), "hello".into())]
            }
            ("GET", "/m/{key}/c/{id}/older") => path.push_str("?before=2"),
            ("POST", "/m/{key}/c/{id}/rate") => form = vec![("score".into(), "5".into())],
            ("POST", "/api/v1/customer/conversations/{id}/rating") => {
                json_body = Some(json!({"score": 5}))
            }
            (_, "/rate/{token}") => {
                path = path.replace("{token}", "1.1.0123456789abcdef0123456789abcdef");
                form = vec![("score".into(), "5".into())];
            }
            ("POST", "/m/{key}/resume") => form = vec![("token".into(), "bogus".into())],
            ("POST", "/m/{key}/email") => form = vec![("email".into(), "me@example.com".into())],
            ("POST", "/login") => {
                form = vec![
                    (
                        "email".into(),
                        format!("not-an-agent{}@example.com", self.next()),
                    ),
                    ("password".into(), "wrong-password".into()),
                ]
            }
            ("POST", "/ui/conversations/{id}/update") => {
                form = vec![("status".into(), "open".into())]
            }
            ("POST", "/ui/conversations/{id}/typing") => {
                form = vec![("typing".into(), "true".into())]
            }
            ("POST", "/ui/bulk") => {
                form = vec![
                    ("ids".into(), conv.clone()),
                    ("action".into(), "label".into()),
                    ("label".into(), "matrix".into()),
                ]
            }
            ("POST", "/ui/profile/availability") => {
                form = vec![("availability".into(), "busy".into())]
            }
            ("POST", "/ui/profile/timezone") => {
                form = vec![("timezone".into(), "Europe/Paris".into())]
            }
            ("POST", "/settings/profile") => form = vec![("name".into(), "Same Name".into())],
            ("POST", "/settings/password") => {
                form = vec![
                    ("current_password".into(), "wrong-one".into()),
                    ("new_password".into(), "new-password-1".into()),
                ]
            }
            ("POST", "/settings/agents") => {
                let n = self.next();
                form = vec![
                    ("name".into(), "New".into()),
                    ("email".into(), format!("form{n}@example.com")),
                    ("role".into(), "agent".into()),
                    ("password".into(), "form-password".into()),
                ];
            }
            ("POST", "/settings/agents/{id}") => {
                path = path.replace("{id}", &self.fresh_agent().await);
                form = vec![("role".into(), "agent".into())];
            }
            ("POST", "/settings/inboxes") => form = vec![("name".into(), "Form inbox".into())],
            ("POST", "/settings/inboxes/{id}") => {
                path = path.replace("{id}", &app.inbox_id);
                form = vec![("name".into(), "Website".into())];
            }
            ("POST", "/settings/inboxes/{id}/channel")
            | ("POST", "/settings/inboxes/{id}/test")
            | ("GET", "/settings/inboxes/{id}") => path = path.replace("{id}", &app.inbox_id),
            ("POST", "/ui/contacts/{id}/merge") => {
                path = path.replace("{id}", &self.fresh_contact().await);
                form = vec![("into".into(), self.fresh_contact().await)];
            }
            ("POST", "/settings/inboxes/{id}/rotate-secret") => {
                path = path.replace("{id}", &app.inbox_id)
            }
            ("POST", "/settings/inboxes/{id}/members") => {
                path = path.replace("{id}", &app.inbox_id);
                form = vec![("agent_id".into(), self.fresh_agent().await)];
            }
            ("POST", "/settings/inboxes/{id}/assignment") => {
                path = path.replace("{id}", &app.inbox_id);
                form = vec![("mode".into(), "off".into())];
            }
            ("POST", "/settings/inboxes/{id}/sla") => path = path.replace("{id}", &app.inbox_id),
            ("POST", "/settings/inboxes/{id}/hours") => {
                path = path.replace("{id}", &app.inbox_id);
                form = vec![("out_of_office".into(), String::new())];
            }
            ("POST", "/settings/inboxes/{id}/members/{agent}/remove") => {
                let a = self.fresh_agent().await;
                app.add_member(&app.inbox_id, &a).await;
                path = path.replace("{id}", &app.inbox_id).replace("{agent}", &a);
            }
            ("POST", "/settings/canned") => {
                let n = self.next();
                form = vec![
                    ("shortcut".into(), format!("s{n}")),
                    ("text".into(), "hi".into()),
                ];
            }
            ("POST", "/settings/canned/{id}") => {
                path = path.replace("{id}", &self.fresh_canned().await);
                form = vec![
                    ("shortcut".into(), format!("e{}", self.next())),
                    ("text".into(), "edited".into()),
                ];
            }
            ("POST", "/settings/canned/{id}/delete") => {
                path = path.replace("{id}", &self.fresh_canned().await)
            }
            _ => {}
        }
        path = path.replace("{id}", &conv);
        let mut req = self.client.request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            app.url(&path),
        );
        // Credentials: bearer tokens for the API and the messenger's
        // contacts, session cookies for pages.
        let consumes = matches!(template, "/api/v1/auth/logout" | "/logout");
        if is_api || (is_messenger && matches!(role, Role::ContactA | Role::ContactB)) {
            let token = if consumes && matches!(role, Role::Outsider | Role::Member | Role::Admin) {
                let email = match role {
                    Role::Outsider => "outsider@example.com",
                    Role::Member => "member@example.com",
                    _ => crate::helpers::ADMIN_EMAIL,
                };
                let pw = if role == Role::Admin {
                    crate::helpers::ADMIN_PASSWORD
                } else {
                    "agent-password"
                };
                Some(app.login_ok(email, pw).await)
            } else {
                self.tokens[i].clone()
            };
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
        } else if !is_messenger {
            let s = if consumes && matches!(role, Role::Outsider | Role::Member | Role::Admin) {
                let email = match role {
                    Role::Outsider => "outsider@example.com",
                    Role::Member => "member@example.com",
                    _ => crate::helpers::ADMIN_EMAIL,
                };
                let pw = if role == Role::Admin {
                    crate::helpers::ADMIN_PASSWORD
                } else {
                    "agent-password"
                };
                Some(session(app, &self.client, email, pw).await)
            } else {
                self.sessions[i].clone()
            };
            if let Some((cookie, csrf)) = s {
                req = req.header("cookie", cookie).header("x-csrf-token", csrf);
            }
        }
        // The messenger's forms as a browser posts them from its own page
        // (cross-site posts are refused: attacks_uploads.rs).
        if is_messenger && method == "POST" {
            req = req.header("sec-fetch-site", "same-origin");
        }
        if let Some(b) = json_body {
            req = req.json(&b);
        } else if !form.is_empty() {
            req = req.form(&form);
        } else if method == "POST" && !is_api {
            req = req.form(&Vec::<(String, String)>::new());
        }
        let r = req.send().await.unwrap();
        // Streams answer with headers at once; do not read their bodies.
        r.status()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_the_matrix_says() {
    let w = World::new().await;
    let _ = (&w.contact_a, &w.contact_b);
    let mut wrong = Vec::new();
    for (method, template, expected) in MATRIX {
        for (i, role) in ROLES.iter().enumerate() {
            let got = w.call(method, template, *role).await;
            if got.as_u16() != expected[i] {
                wrong.push(format!(
                    "{method} {template} as {role:?}: expected {}, got {}",
                    expected[i],
                    got.as_u16()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

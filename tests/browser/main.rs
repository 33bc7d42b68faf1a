//! Real-browser tests: Debian's Chromium driven through chromedriver
//! (WebDriver). `.ci/run` installs both; these tests fail, rather than
//! skip, when they are missing.

// Test and benchmark code may unwrap: a failure here is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

#[allow(dead_code)]
#[path = "../api/fakes.rs"]
mod fakes;

#[path = "../api/mail_servers.rs"]
mod mail_servers;

mod attacks_uploads;
mod attacks_web;
mod confirm;
mod driver;
mod messenger;
mod settings;
mod workspace;

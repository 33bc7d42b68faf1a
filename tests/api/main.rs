//! All API integration tests in one binary (one link, one build). Each
//! module is one feature of the contract; each test is one promise.

// Test and benchmark code may unwrap: a failure here is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod acme;
mod agents;
mod assignment;
mod attachments;
mod attacks_access;
mod attacks_mail;
mod attacks_uploads;
mod attacks_web;
mod auth;
mod backups;
mod channels;
mod cli;
mod config_file;
mod conversations;
mod customer_seq;
mod customers;
mod doctor;
mod durability;
mod email;
mod email_module;
mod events;
mod export;
mod fakes;
mod fanout;
mod fuzz_regressions;
mod helpers;
mod hours;
mod http;
mod identity;
mod mail_servers;
mod migration;
mod notify;
mod pages;
mod password_links;
mod permissions;
mod push;
mod push_receiver;
mod ratings;
mod routing;
mod running;
mod search;
mod sla;
mod tls;
mod webhooks;

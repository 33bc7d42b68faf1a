//! Natter: self-hosted customer messaging in one binary.
//!
//! The crate is a library so integration tests and benchmarks can build the
//! real application in-process; `main.rs` is only the command line.
//! See ARCHITECTURE.md for the map.

pub mod channels;
pub mod config;
pub mod contract;
pub mod control;
pub mod domain;
pub mod error;
pub mod healthcheck;
pub mod metrics;
pub mod progress;
pub mod service;
pub mod startup;
pub mod store;
pub mod systemd;
pub mod web;

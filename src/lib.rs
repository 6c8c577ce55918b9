//! linechat: a customer-service live chat for LINE Official Accounts.
//!
//! Map of the crate:
//! - `config`: flags + environment → validated `Config`.
//! - `app`: `AppState`, `build` (store, bus, LINE client or sandbox), `run` (HTTP + workers).
//! - `http`: the axum routers (LINE webhook, ops, sign-in, desk pages, live updates), CSRF.
//! - `views`: Maud pages and fragments of the agent desk.
//! - `i18n`: the string catalogue (English, zh-TW).
//! - `auth`: the failed-login throttle and the first-run setup link.
//! - `store`: every SQL statement (sqlx, SQLite) and the webhook inbox's group-commit writer.
//! - `bus`: queues, live notices and cache; embedded or Redis.
//! - `hub`: the per-process live hub that feeds SSE and long-poll.
//! - `line`: Messaging API client, webhook signature and payload types, fake LINE.
//! - `worker`: ingest, delivery, media, profiles, sweeper.
//! - `domain`: validated inputs and rules with no I/O.
//! - `password`: argon2id hashing.
//! - `telemetry`: Prometheus metrics.
//! - `sandbox`: the customer simulator of sandbox mode (no LINE credentials).

pub mod app;
pub mod auth;
pub mod bus;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod hub;
pub mod i18n;
pub mod line;
pub mod password;
pub mod sandbox;
pub mod store;
pub mod telemetry;
pub mod views;
pub mod worker;

//! The integration suite: one test binary (every file in `tests/` would build its own).
//!
//! Each test runs against the real router on an ephemeral port, a fresh SQLite file and a
//! fake LINE server; tests marked for both buses run once with the embedded bus and once
//! against the Redis at `REDIS_URL` (and say so when they skip because it is unset).

mod helpers;
mod line_events;

mod admin;
mod auth;
mod collab;
mod crash;
mod delivery;
mod desk;
mod e2e;
mod hostile;
mod ingest;
mod listener;
mod live;
mod media;
mod ops;
mod redis_faults;
mod sandbox;
mod store_faults;
mod webhook;

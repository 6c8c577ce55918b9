//! Everything that speaks LINE: the Messaging API client, the webhook's signature check and
//! payload types, and the fake LINE server used by tests and sandbox mode.

pub mod client;
pub mod fake;
pub mod webhook;

pub use client::{Content, LineClient, LineError, Sent};

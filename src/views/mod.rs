//! Maud views: pages and fragments. Views take borrowed view data and a `Lang`; they never
//! query the store or see `AppState`. Every visible string comes from `i18n`; user data is
//! only ever interpolated with Maud's escaping (never `PreEscaped`).

pub mod admin;
pub mod content;
pub mod error;
pub mod history;
pub mod ids;
pub mod inbox;
pub mod layout;
pub mod live;
pub mod login;
pub mod messages;
pub mod sandbox;
pub mod stickers;

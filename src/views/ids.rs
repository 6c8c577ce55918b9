//! Element ids that `hx-target`, out-of-band swaps and `assets/app.js` depend on.

/// The conversation list (`<ul>`).
pub const CONVERSATION_LIST: &str = "conversation-list";
/// The thread pane (right of the list).
pub const THREAD_PANE: &str = "thread-pane";
/// The composer's one-use nonce field, replaced after each send.
pub const COMPOSER_NONCE: &str = "composer-nonce";
/// Where a refused reply's reason is shown.
pub const COMPOSER_ERROR: &str = "composer-error";
/// Where live fragments are swapped (they only carry out-of-band parts).
pub const LIVE_SINK: &str = "live-sink";
/// The sandbox notice on every page (sandbox mode only).
pub const SANDBOX_BANNER: &str = "sandbox-banner";
/// The simulator's view of what the customer sees (polled).
pub const SIM_CHAT: &str = "sim-chat";
/// Where a refused simulator action says why.
pub const SIM_ERROR: &str = "sim-error";

/// The admin page's read-only webhook URL (its copy button names it).
pub const WEBHOOK_URL: &str = "webhook-url";

pub fn conversation_row(id: i64) -> String {
    format!("conv-{id}")
}

pub fn thread(conversation_id: i64) -> String {
    format!("thread-{conversation_id}")
}

pub fn message(id: i64) -> String {
    format!("msg-{id}")
}

/// What the list filters redraw: the list and its empty note (`#conversation-list` inside).
pub const LIST_RESULTS: &str = "list-results";
/// The search box (`/` focuses it).
pub const LIST_SEARCH: &str = "list-search";
/// The button that turns browser notifications on and off.
pub const NOTIFY_TOGGLE: &str = "notify-toggle";

/// An open thread's header (assignee and status controls), replaced live.
pub fn thread_head(conversation_id: i64) -> String {
    format!("thread-head-{conversation_id}")
}

/// The contact panel beside a thread, replaced live.
pub fn contact_card(conversation_id: i64) -> String {
    format!("contact-{conversation_id}")
}

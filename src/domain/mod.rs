//! Domain rules with no I/O: validated inputs, message bodies, and the clock helper.
//! The store, the workers and the HTTP layer build on these; nothing here is async.

mod sticker;
mod text;

pub use sticker::{DEFAULT_STICKERS, OutgoingSticker};
pub use text::{MAX_TEXT_UTF16, OutgoingText, TextError};

/// Milliseconds since the Unix epoch: the one time unit of the store.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Direction of a stored message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
    System,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::System => "system",
        }
    }
}

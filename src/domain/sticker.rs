//! The stickers agents can send: a few from LINE's free packages on its list of stickers a
//! bot may send (developers.line.biz "List of available stickers"), so LINE never refuses
//! them. Anything else is refused before it is stored.

/// (packageId, stickerId) pairs offered by the composer's sticker picker.
pub const DEFAULT_STICKERS: &[(&str, &str)] = &[
    ("446", "1988"),
    ("446", "1989"),
    ("446", "1990"),
    ("446", "1993"),
    ("789", "10855"),
    ("789", "10856"),
    ("789", "10857"),
    ("789", "10858"),
    ("11537", "52002734"),
    ("11537", "52002735"),
    ("11537", "52002736"),
    ("11537", "52002739"),
];

/// A sticker from the allowed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutgoingSticker {
    pub package_id: &'static str,
    pub sticker_id: &'static str,
}

impl OutgoingSticker {
    /// The sticker if it is one of `DEFAULT_STICKERS`.
    pub fn parse(package_id: &str, sticker_id: &str) -> Option<Self> {
        DEFAULT_STICKERS
            .iter()
            .find(|(p, s)| *p == package_id && *s == sticker_id)
            .map(|&(package_id, sticker_id)| Self {
                package_id,
                sticker_id,
            })
    }

    /// The LINE message object (spec: StickerMessage; both ids are strings).
    pub fn message(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "sticker",
            "packageId": self.package_id,
            "stickerId": self.sticker_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_offered_stickers_parse() {
        let s = OutgoingSticker::parse("446", "1988").unwrap();
        assert_eq!(
            s.message(),
            serde_json::json!({ "type": "sticker", "packageId": "446", "stickerId": "1988" })
        );
        assert_eq!(OutgoingSticker::parse("446", "10855"), None);
        assert_eq!(OutgoingSticker::parse("1", "1"), None);
        assert_eq!(OutgoingSticker::parse("446 ", "1988"), None);
    }
}

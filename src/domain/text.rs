//! An agent's outgoing text, checked the way LINE counts it.

/// LINE's limit for a text message, counted in UTF-16 code units (an emoji may count as 2).
pub const MAX_TEXT_UTF16: usize = 5000;

/// Text that LINE will accept in a text message: not blank, at most 5000 UTF-16 code units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingText(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("the message is empty")]
    Empty,
    #[error("the message is {0} characters long; LINE accepts at most 5000")]
    TooLong(usize),
}

impl OutgoingText {
    pub fn parse(text: &str) -> Result<Self, TextError> {
        if text.trim().is_empty() {
            return Err(TextError::Empty);
        }
        let units = text.encode_utf16().count();
        if units > MAX_TEXT_UTF16 {
            return Err(TextError::TooLong(units));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_utf16_units_like_line() {
        assert!(OutgoingText::parse(&"a".repeat(5000)).is_ok());
        assert_eq!(
            OutgoingText::parse(&"a".repeat(5001)),
            Err(TextError::TooLong(5001))
        );
        // 2,500 emoji are 5,000 units; one more tips it over although it is 2,501 chars.
        assert!(OutgoingText::parse(&"😀".repeat(2500)).is_ok());
        assert_eq!(
            OutgoingText::parse(&"😀".repeat(2501)),
            Err(TextError::TooLong(5002))
        );
        assert!(OutgoingText::parse(&"字".repeat(5000)).is_ok());
    }

    #[test]
    fn blank_is_refused() {
        assert_eq!(OutgoingText::parse(""), Err(TextError::Empty));
        assert_eq!(OutgoingText::parse(" \n\t"), Err(TextError::Empty));
    }
}

//! Password hashing with argon2id (the argon2 crate's defaults: m=19 MiB, t=2, p=1, as
//! OWASP recommends). Hashing is CPU-heavy, so async callers run it on the blocking pool.

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_LENGTH} characters long")]
    TooShort,
    #[error("the password must be at most 1024 characters long")]
    TooLong,
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// Hashes a new password into a PHC string (`$argon2id$v=19$…`).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    if chars > 1024 {
        return Err(PasswordError::TooLong);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Checks a password against a stored PHC string; false for a malformed hash.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// `hash` on the blocking pool.
pub async fn hash_async(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_with_argon2id_and_verifies() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("wrong horse battery", &phc));
        assert!(!verify("correct horse battery", "not a hash"));
    }

    #[test]
    fn refuses_short_passwords() {
        assert!(matches!(hash("short"), Err(PasswordError::TooShort)));
    }
}

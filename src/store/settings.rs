//! Runtime settings edited by admins; a missing key means "use the configured default".

use sqlx::SqlitePool;

use rusqlite::OptionalExtension;

use super::{Db, Store};

/// The welcome message sent on follow (empty = off).
pub const WELCOME_MESSAGE: &str = "welcome_message";
/// "1": mark the customer's messages as read on LINE when an agent opens the conversation.
pub const MARK_AS_READ: &str = "mark_as_read";
/// "1": show LINE's loading animation to the customer while an agent types.
pub const LOADING_ANIMATION: &str = "loading_animation";

pub async fn get(pool: &SqlitePool, key: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
        .bind(key)
        .fetch_optional(pool)
        .await
}

/// `get`, inside a job of the writer (or a `direct` block).
pub fn get_in(db: &Db, key: &str) -> rusqlite::Result<Option<String>> {
    db.prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

pub async fn set(pool: &SqlitePool, key: &str, value: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES (?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(pool)
    .await?;
    Ok(())
}

/// A switch: on unless set to anything but "1" (both touches are on by default).
pub async fn switch(pool: &SqlitePool, key: &str) -> sqlx::Result<bool> {
    Ok(get(pool, key).await?.is_none_or(|v| v == "1"))
}

/// What the settings page edits, as it stands (defaults filled in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeskSettings {
    pub welcome_message: String,
    pub mark_as_read: bool,
    pub loading_animation: bool,
}

impl DeskSettings {
    /// The stored values; `default_welcome` (the configuration's) where none is stored.
    pub async fn load(pool: &SqlitePool, default_welcome: &str) -> sqlx::Result<Self> {
        Ok(Self {
            welcome_message: get(pool, WELCOME_MESSAGE)
                .await?
                .unwrap_or_else(|| default_welcome.to_owned()),
            mark_as_read: switch(pool, MARK_AS_READ).await?,
            loading_animation: switch(pool, LOADING_ANIMATION).await?,
        })
    }

    /// Stores all of them in one transaction (a half-saved form never shows).
    pub async fn save(&self, store: &Store) -> sqlx::Result<()> {
        let flag = |on: bool| if on { "1" } else { "0" };
        let mut tx = store.write().await?;
        for (key, value) in [
            (WELCOME_MESSAGE, self.welcome_message.as_str()),
            (MARK_AS_READ, flag(self.mark_as_read)),
            (LOADING_ANIMATION, flag(self.loading_animation)),
        ] {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES (?, ?)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}

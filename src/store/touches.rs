//! What the LINE "touches" (mark as read, the loading animation) remember in the store.

use super::Store;
use crate::domain::now_ms;

/// Takes the conversation's unused mark-as-read tokens: they are cleared in the same
/// statement, so each is handed out once however many agents open the conversation at once.
/// Returns `(message id, token)`, oldest first.
pub async fn take_read_tokens(
    store: &Store,
    conversation_id: i64,
) -> sqlx::Result<Vec<(i64, String)>> {
    let mut tx = store.write().await?;
    // (RETURNING would give the new value, NULL; read first, inside the same transaction.)
    let taken: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, mark_as_read_token FROM messages
         WHERE conversation_id = ? AND direction = 'in' AND mark_as_read_token IS NOT NULL
         ORDER BY id",
    )
    .bind(conversation_id)
    .fetch_all(&mut *tx)
    .await?;
    if taken.is_empty() {
        return Ok(taken);
    }
    sqlx::query(
        "UPDATE messages SET mark_as_read_token = NULL
         WHERE conversation_id = ? AND direction = 'in' AND id <= ?",
    )
    .bind(conversation_id)
    .bind(taken.last().map(|(id, _)| *id))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(taken)
}

/// Puts a token back after LINE could not be reached, so the next opening tries again
/// (unless a newer one has been taken meanwhile — that one covers this message too).
pub async fn restore_read_token(store: &Store, message_id: i64, token: &str) -> sqlx::Result<()> {
    let mut tx = store.write().await?;
    sqlx::query(
        "UPDATE messages SET mark_as_read_token = ? WHERE id = ? AND mark_as_read_token IS NULL",
    )
    .bind(token)
    .bind(message_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// A 1:1 chat's LINE user id, if the conversation is one with a user who still follows us
/// (LINE shows the loading animation in 1:1 chats only).
pub async fn loading_target(store: &Store, conversation_id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT ct.line_id FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
         WHERE c.id = ? AND ct.kind = 'user' AND ct.follow_state <> 'unfollowed'",
    )
    .bind(conversation_id)
    .fetch_optional(&store.pool)
    .await
}

/// Claims the conversation's loading-animation slot if the last one is at least `window_ms`
/// old; true when the caller should call LINE.
pub async fn claim_loading(
    store: &Store,
    conversation_id: i64,
    window_ms: i64,
) -> sqlx::Result<bool> {
    let now = now_ms();
    // Most pings fall inside the window: answer those from a read, without taking the
    // write gate that webhooks and replies queue on.
    let last: Option<i64> =
        sqlx::query_scalar("SELECT loading_started_at FROM conversations WHERE id = ?")
            .bind(conversation_id)
            .fetch_optional(&store.pool)
            .await?
            .flatten();
    if last.is_some_and(|at| at > now - window_ms) {
        return Ok(false);
    }
    let mut tx = store.write().await?;
    let n = sqlx::query(
        "UPDATE conversations SET loading_started_at = ?1
         WHERE id = ?2 AND (loading_started_at IS NULL OR loading_started_at <= ?1 - ?3)",
    )
    .bind(now)
    .bind(conversation_id)
    .bind(window_ms)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n == 1)
}

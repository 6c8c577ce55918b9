//! The media worker: downloads what customers sent (images, video, audio, files) from LINE's
//! data API into the data directory, because LINE deletes content after a while.
//!
//! Large video and audio may not be ready at first (202): those are asked for again with
//! backoff, up to MAX_ATTEMPTS. Content from an `external` provider is never downloaded; the
//! message keeps the URLs LINE gave.

use std::{path::PathBuf, time::Duration};

use crate::{
    app::AppState,
    bus::Queue,
    domain::now_ms,
    line::{Content, LineError},
    store::{
        Db,
        events::{self, EventKind},
        messages,
    },
};

/// Downloads in flight at once.
const CONCURRENCY: usize = 4;
/// Attempts before a download is given up (not-ready answers included).
pub const MAX_ATTEMPTS: i64 = 12;

pub async fn run(state: AppState) {
    super::consume(state, Queue::Media, CONCURRENCY, |state, id| async move {
        download(&state, id).await
    })
    .await
}

/// Where a message's content is kept, relative to the data directory.
pub fn relative_path(conversation_id: i64, message_id: i64) -> PathBuf {
    PathBuf::from("media")
        .join(conversation_id.to_string())
        .join(message_id.to_string())
}

pub async fn download(state: &AppState, id: i64) -> anyhow::Result<()> {
    // Long enough for one download to finish or time out.
    let lease = (state.config.line_timeout * 3).as_millis() as i64;
    let claimed = state
        .store
        .writer
        .run(move |db| Ok(messages::claim_media(db, id, lease)?))
        .await?;
    let Some(job) = claimed else {
        return Ok(());
    };
    let Some(line_id) = job.line_message_id.as_deref() else {
        return fail(state, job.conversation_id, id, "no LINE message id").await;
    };
    let relative = relative_path(job.conversation_id, id);
    let dest = state.config.data_dir.join(&relative);
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    match state.line.content_to_file(line_id, &dest).await {
        Ok(Content::Saved { mime, size }) => {
            let path = relative.to_string_lossy().into_owned();
            finish(
                state,
                job.conversation_id,
                id,
                r#"{"media":"ready"}"#,
                move |db| messages::media_ready(db, id, &path, &mime, size as i64),
            )
            .await
        }
        Ok(Content::NotReady) => {
            retry(
                state,
                job.conversation_id,
                id,
                job.media_attempts,
                "content not ready yet",
                None,
            )
            .await
        }
        Err(LineError::Status { status: 404, .. }) => {
            fail(
                state,
                job.conversation_id,
                id,
                "LINE no longer has this content",
            )
            .await
        }
        Err(e) if e.is_retryable() => {
            let after = e.retry_after();
            retry(
                state,
                job.conversation_id,
                id,
                job.media_attempts,
                &e.to_string(),
                after,
            )
            .await
        }
        Err(e) => fail(state, job.conversation_id, id, &e.to_string()).await,
    }
}

async fn retry(
    state: &AppState,
    conversation_id: i64,
    id: i64,
    attempts: i64,
    reason: &str,
    after: Option<Duration>,
) -> anyhow::Result<()> {
    if attempts >= MAX_ATTEMPTS {
        return fail(state, conversation_id, id, reason).await;
    }
    let delay = super::backoff(attempts, Duration::from_secs(1), Duration::from_secs(120))
        .max(after.unwrap_or_default());
    let (due, reason) = (now_ms() + delay.as_millis() as i64, reason.to_owned());
    state
        .store
        .writer
        .run(move |db| Ok(messages::media_retry(db, id, due, &reason)?))
        .await?;
    state.workers.enqueue_later(state, Queue::Media, id, delay);
    Ok(())
}

async fn fail(state: &AppState, conversation_id: i64, id: i64, reason: &str) -> anyhow::Result<()> {
    tracing::warn!(message_id = id, reason, "media download given up");
    let reason = reason.to_owned();
    finish(
        state,
        conversation_id,
        id,
        r#"{"media":"failed"}"#,
        move |db| messages::media_failed(db, id, &reason),
    )
    .await
}

/// Records a download's end (`record`) and tells the desk (`data`), in one writer job.
async fn finish(
    state: &AppState,
    conversation_id: i64,
    id: i64,
    data: &'static str,
    record: impl FnOnce(&Db) -> rusqlite::Result<()> + Send + 'static,
) -> anyhow::Result<()> {
    let ev = state
        .store
        .writer
        .run(move |db| {
            record(db)?;
            Ok(events::append(
                db,
                EventKind::MessageUpdated,
                Some(conversation_id),
                Some(id),
                Some(data),
            )?)
        })
        .await?;
    let _ = state.bus.publish(ev).await;
    Ok(())
}

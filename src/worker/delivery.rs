//! The delivery worker: sends queued outgoing messages to LINE, exactly once (promise 3).
//!
//! * Each message has a retry key generated when it was queued; every push attempt carries
//!   it, and LINE's 409 "already accepted" counts as sent. So a retry after a timeout, a crash
//!   mid-call or a Redis restart that re-queued the id can never send it twice.
//! * The first attempt uses a reply token instead when the conversation has a fresh, unused
//!   one (reply messages are free of the monthly quota). A refused token falls back to push at
//!   once. Reply takes no retry key, so when a reply's outcome is unknown (timeout, reset, 5xx,
//!   or a crash during the call) nothing is sent again automatically: the message fails with
//!   a reason saying it may have arrived, and the agent's Retry pushes it with its retry key.
//!   Tokens live one minute and agents are slower than that, so this mostly concerns
//!   automatic messages (the welcome greeting).
//! * 429, 5xx, timeouts and transport errors retry with exponential backoff and jitter
//!   (honouring Retry-After), bounded in attempts and age; other 4xx fail at once with LINE's
//!   message, which the agent sees next to a Retry button. A 429 is LINE asking for fewer
//!   calls, not a fault of the message: it costs no attempt and waits at most a few seconds
//!   (or what Retry-After says), so a burst of them delays messages but never fails one.
//! * Attempts in flight are bounded by a semaphore and the rate of calls by a token bucket, so
//!   we stay under LINE's per-channel limit whatever the backlog.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use anyhow::Context;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::{Value, json};

use crate::{
    app::AppState,
    bus::Queue,
    config::RetryPolicy,
    domain::now_ms,
    line::{LineError, Sent},
    store::{
        Db, contacts,
        events::{self, EventKind},
        messages::{self, Claimed, NewOutgoing},
    },
};

/// A reply token is good for one minute after the event; leave a margin for the trip.
const REPLY_TOKEN_FRESH_MS: i64 = 50_000;
/// The longest backoff after a 429 without Retry-After.
const THROTTLED_MAX_DELAY: Duration = Duration::from_secs(5);

/// Queues an outgoing message inside the caller's transaction: the row (with its retry key),
/// the conversation's activity, and the event-log line. Returns (message id, event id), or
/// `None` when the client key was already used. Enqueue the id after committing.
pub fn queue_message(db: &Db, message: &NewOutgoing<'_>) -> rusqlite::Result<Option<(i64, i64)>> {
    let Some(id) = messages::insert_outgoing(db, message)? else {
        return Ok(None);
    };
    contacts::touch(db, message.conversation_id, now_ms(), id, false)?;
    let ev = events::append(
        db,
        EventKind::MessageNew,
        Some(message.conversation_id),
        Some(id),
        None,
    )?;
    Ok(Some((id, ev)))
}

/// The worker loop.
pub async fn run(state: AppState) {
    let limiter = Arc::new(RateLimiter::direct(quota(state.config.delivery_rate)));
    let concurrency = state.config.delivery_concurrency;
    super::consume(state, Queue::Delivery, concurrency, move |state, id| {
        let limiter = limiter.clone();
        async move { deliver(&state, &limiter, id).await }
    })
    .await
}

/// A claimed message with what its attempt needs, all read in the claim's transaction.
struct Attempt {
    claimed: Claimed,
    chat_id: String,
    /// A fresh reply token taken for this attempt (the message's via is now "reply").
    reply_token: Option<String>,
}

/// A token bucket that never lets more than `ceiling` calls into any one-second window
/// (for a ceiling of 2 or more): governor's `per_second(n)` would allow a full burst of `n`
/// on top of `n` a second. A small burst (1/40 of the ceiling) absorbs jitter, and as much
/// again is kept unused: LINE counts calls when they arrive, and calls let through here at
/// the edges of one second can arrive closer together than they left (the fake LINE of the
/// benchmark saw 2,001–2,002 in one second with no margin, at 1,880 deliveries a second).
/// The refill rate is what is left.
fn quota(ceiling: u32) -> Quota {
    let burst = (ceiling / 40).max(1);
    let refill = NonZeroU32::new(ceiling.saturating_sub(2 * burst)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(refill).allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

/// One delivery attempt of message `id`, if it is due and not taken by someone else.
pub async fn deliver(
    state: &AppState,
    limiter: &DefaultDirectRateLimiter,
    id: i64,
) -> anyhow::Result<()> {
    // Long enough for a reply and a push fallback to time out, so the lease never expires
    // while we are still working on the message.
    let lease = (state.config.line_timeout * 2 + Duration::from_secs(5)).as_millis() as i64;
    // One job of the group commit: claim, announce "sending", find the chat, and choose the
    // API (taking a reply token if there is one) before any call is made.
    let Some((attempt, ev)) = state
        .store
        .writer
        .run(move |db| claim(db, id, lease))
        .await?
    else {
        return Ok(());
    };
    publish(state, ev).await;

    let message: Value =
        serde_json::from_str(&attempt.claimed.body).context("stored message body is not JSON")?;
    let outcome = call(state, limiter, &attempt, &[message]).await?;
    finish(state, &attempt.claimed, outcome).await
}

fn claim(db: &Db, id: i64, lease: i64) -> anyhow::Result<Option<(Attempt, i64)>> {
    let Some(claimed) = messages::claim_delivery(db, id, lease)? else {
        return Ok(None);
    };
    let ev = status_event(db, &claimed, "sending", None)?;
    let chat_id = contacts::chat_line_id(db, claimed.conversation_id)
        .context("finding the chat of a message")?;
    // `via` is already set only when an earlier attempt chose it; a first attempt takes the
    // conversation's fresh reply token if it has one, and records the choice before the call.
    let mut reply_token = None;
    if claimed.attempts == 1 && claimed.via.is_none() {
        reply_token = messages::take_reply_token(
            db,
            claimed.conversation_id,
            now_ms() - REPLY_TOKEN_FRESH_MS,
        )?;
    }
    if claimed.via.as_deref() != Some("reply") {
        messages::set_via(
            db,
            claimed.id,
            if reply_token.is_some() {
                "reply"
            } else {
                "push"
            },
        )?;
    }
    Ok(Some((
        Attempt {
            claimed,
            chat_id,
            reply_token,
        },
        ev,
    )))
}

/// Why an attempt did not end in "sent".
enum Failed {
    /// LINE refused or could not be reached; the retry policy decides.
    Line(LineError),
    /// A reply call whose outcome is unknown (no answer in time, a broken connection, a 5xx,
    /// or a crash during the call). LINE may have delivered it, and reply calls carry no
    /// retry key, so sending again could deliver it twice: the message stops as failed with
    /// this reason and the agent decides (Retry then pushes, with the retry key).
    ReplyUnknown(String),
}

/// Whether LINE may have acted on a call that failed this way.
fn outcome_unknown(e: &LineError) -> bool {
    match e {
        LineError::Timeout | LineError::Transport(_) => true,
        LineError::Status { status, .. } => *status >= 500,
    }
}

fn reply_unknown(e: &dyn std::fmt::Display) -> Failed {
    Failed::ReplyUnknown(format!(
        "LINE did not confirm the reply ({e}); it may have reached the customer. \
         Check the chat in LINE before retrying."
    ))
}

async fn call(
    state: &AppState,
    limiter: &DefaultDirectRateLimiter,
    attempt: &Attempt,
    messages: &[Value],
) -> anyhow::Result<Result<(&'static str, Sent), Failed>> {
    let claimed = &attempt.claimed;
    // `via` was "reply" before this claim only when a reply call never finished: the process
    // died during it (every finished reply attempt ends sent, failed, or switches to push).
    if claimed.via.as_deref() == Some("reply") {
        return Ok(Err(reply_unknown(&"the process stopped during the call")));
    }
    if let Some(token) = &attempt.reply_token {
        limiter.until_ready().await;
        match state.line.reply(token, messages).await {
            Ok(sent) => return Ok(Ok(("reply", sent))),
            Err(e) if outcome_unknown(&e) => return Ok(Err(reply_unknown(&e))),
            Err(e) if !e.is_retryable() => {
                tracing::debug!(message_id = claimed.id, error = %e, "reply token refused; pushing instead");
                let id = claimed.id;
                state
                    .store
                    .writer
                    .run(move |db| Ok(messages::set_via(db, id, "push")?))
                    .await?;
            }
            // A 429: LINE did nothing; the retry pushes (the token is spent).
            Err(e) => return Ok(Err(Failed::Line(e))),
        }
    }
    limiter.until_ready().await;
    Ok(state
        .line
        .push(&attempt.chat_id, messages, &claimed.retry_key)
        .await
        .map(|sent| ("push", sent))
        .map_err(Failed::Line))
}

async fn finish(
    state: &AppState,
    claimed: &Claimed,
    outcome: Result<(&'static str, Sent), Failed>,
) -> anyhow::Result<()> {
    let policy = state.config.retry.clone();
    let job = claimed.clone();
    let (ev, retry_in) = state
        .store
        .writer
        .run(move |db| settle(db, &policy, &job, outcome))
        .await?;
    publish(state, ev).await;
    if let Some(delay) = retry_in {
        state
            .workers
            .enqueue_later(state, Queue::Delivery, claimed.id, delay);
    }
    Ok(())
}

/// Records how an attempt ended: sent, queued again after a delay, or failed with a reason.
/// Answers the event-log id and the delay when it is to be retried.
fn settle(
    db: &Db,
    policy: &RetryPolicy,
    claimed: &Claimed,
    outcome: Result<(&'static str, Sent), Failed>,
) -> anyhow::Result<(i64, Option<Duration>)> {
    let mut retry_in = None;
    let ev = match outcome {
        Ok((via, sent)) => {
            crate::telemetry::delivery("sent", Some(if sent.already_accepted { 409 } else { 200 }));
            messages::mark_sent(
                db,
                claimed.id,
                via,
                sent.message_ids.first().map(String::as_str),
            )?;
            status_event(db, claimed, "sent", None)?
        }
        Err(Failed::ReplyUnknown(reason)) => {
            messages::mark_failed(db, claimed.id, &reason)?;
            crate::telemetry::delivery("failed", None);
            tracing::warn!(
                message_id = claimed.id,
                "reply outcome unknown; not sent again automatically"
            );
            status_event(db, claimed, "failed", Some(&reason))?
        }
        Err(Failed::Line(e)) => {
            let age = Duration::from_millis((now_ms() - claimed.created_at).max(0) as u64);
            let reason = e.to_string();
            // A 429 says nothing is wrong with the message, only that LINE wants fewer calls
            // right now: it does not use up the message's attempts (only its age bounds it),
            // and its wait is short unless LINE names one in Retry-After.
            let throttled = e.status() == Some(429);
            if e.is_retryable()
                && (throttled || (claimed.attempts as u32) < policy.max_attempts)
                && age < policy.max_age
            {
                let cap = if throttled {
                    policy.max_delay.min(THROTTLED_MAX_DELAY)
                } else {
                    policy.max_delay
                };
                let delay = super::backoff(claimed.attempts, policy.base_delay, cap)
                    .max(e.retry_after().unwrap_or_default());
                // After a refused reply (429) the token is spent: the retry pushes.
                messages::set_via(db, claimed.id, "push")?;
                messages::schedule_retry(
                    db,
                    claimed.id,
                    now_ms() + delay.as_millis() as i64,
                    &reason,
                )?;
                retry_in = Some(delay);
                crate::telemetry::delivery("retry", e.status());
                tracing::info!(
                    message_id = claimed.id,
                    attempt = claimed.attempts,
                    status = e.status(),
                    delay_ms = delay.as_millis() as u64,
                    "delivery will be retried"
                );
                status_event(db, claimed, "queued", Some(&reason))?
            } else {
                messages::mark_failed(db, claimed.id, &reason)?;
                crate::telemetry::delivery("failed", e.status());
                tracing::warn!(
                    message_id = claimed.id,
                    attempt = claimed.attempts,
                    status = e.status(),
                    "delivery failed"
                );
                status_event(db, claimed, "failed", Some(&reason))?
            }
        }
    };
    Ok((ev, retry_in))
}

fn status_event(
    db: &Db,
    claimed: &Claimed,
    status: &str,
    error: Option<&str>,
) -> anyhow::Result<i64> {
    let data = json!({ "status": status, "error": error }).to_string();
    Ok(events::append(
        db,
        EventKind::MessageUpdated,
        Some(claimed.conversation_id),
        Some(claimed.id),
        Some(&data),
    )?)
}

async fn publish(state: &AppState, event_id: i64) {
    if let Err(e) = state.bus.publish(event_id).await {
        tracing::debug!(
            error = format!("{e:#}"),
            "notice not published; the hub polls"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_second_can_hold_more_calls_than_the_ceiling() {
        for ceiling in [2, 3, 40, 100, 1500, 2000] {
            let q = quota(ceiling);
            let refills_in_a_second =
                Duration::from_secs(1).as_nanos() / q.replenish_interval().as_nanos();
            let most = u128::from(q.burst_size().get()) + refills_in_a_second;
            assert!(
                most <= u128::from(ceiling),
                "ceiling {ceiling}: up to {most} in a second"
            );
            // Room for the calls' arrival jitter at LINE, from 40 a second up.
            if ceiling >= 40 {
                assert!(
                    most < u128::from(ceiling),
                    "ceiling {ceiling}: no margin below it"
                );
            }
            assert!(
                most >= u128::from(ceiling) * 9 / 10,
                "ceiling {ceiling}: only {most}"
            );
        }
    }
}

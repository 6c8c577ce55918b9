//! Profile refreshes: display names and pictures of users, group names, group members.
//!
//! Looked up after the ingest commit, at most once an hour per contact (the store remembers
//! when), through a cache shared by replicas (Redis when configured, memory otherwise), with a
//! few look-ups in flight at once.

use std::{collections::HashSet, time::Duration};

use serde_json::json;

use crate::{
    app::AppState,
    domain::now_ms,
    store::{
        Db,
        contacts::{self, ContactKind, Profile},
        events::{self, EventKind},
    },
};

/// How long a profile is trusted before it is fetched again.
pub const PROFILE_TTL: Duration = Duration::from_secs(60 * 60);

/// Whether a profile fetched at `fetched_at` (never: `None`) should be fetched again.
pub fn due(fetched_at: Option<i64>, now: i64) -> bool {
    fetched_at.is_none_or(|t| now - t >= PROFILE_TTL.as_millis() as i64)
}

/// Whose profile to fetch, and through which endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProfileJob {
    pub contact_id: i64,
    pub line_id: String,
    source: Lookup,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Lookup {
    User,
    Group,
    /// A member of a group or room: (chat kind, chat id).
    Member(&'static str, String),
    /// Rooms have no summary endpoint.
    None,
}

impl ProfileJob {
    /// The chat contact itself: a user's profile or a group's summary.
    pub fn chat(contact_id: i64, line_id: &str, kind: ContactKind) -> Self {
        let source = match kind {
            ContactKind::User => Lookup::User,
            ContactKind::Group => Lookup::Group,
            ContactKind::Room => Lookup::None,
        };
        Self {
            contact_id,
            line_id: line_id.to_owned(),
            source,
        }
    }

    /// A member of a group or room (users who are not friends have no public profile).
    pub fn member(contact_id: i64, user_id: &str, chat_id: &str, chat_kind: ContactKind) -> Self {
        Self {
            contact_id,
            line_id: user_id.to_owned(),
            source: Lookup::Member(chat_kind.as_str(), chat_id.to_owned()),
        }
    }
}

/// Spawns the look-ups that are due, each contact once.
pub fn refresh_all(state: &AppState, jobs: Vec<ProfileJob>) {
    let mut seen = HashSet::new();
    for job in jobs {
        if job.source == Lookup::None || !seen.insert(job.contact_id) {
            continue;
        }
        let state = state.clone();
        state.workers.tracker.clone().spawn(async move {
            let Ok(_permit) = state.workers.profile_permits.acquire().await else {
                return;
            };
            if let Err(e) = refresh(&state, &job).await {
                tracing::debug!(
                    contact_id = job.contact_id,
                    error = format!("{e:#}"),
                    "profile refresh failed"
                );
            }
        });
    }
}

async fn refresh(state: &AppState, job: &ProfileJob) -> anyhow::Result<()> {
    let pool = &state.store.pool;
    let Some(contact) = contacts::get(pool, job.contact_id).await? else {
        return Ok(());
    };
    let now = now_ms();
    if !due(contact.profile_fetched_at, now) {
        return Ok(());
    }
    let profile = lookup(state, job).await?;
    let contact_id = job.contact_id;
    let last = state
        .store
        .writer
        .run(move |db| {
            if !contacts::save_profile(db, contact_id, profile.as_ref(), now)? {
                return Ok(0);
            }
            announce(db, contact_id)
        })
        .await?;
    if last > 0 {
        let _ = state.bus.publish(last).await;
    }
    Ok(())
}

/// The cache first, then LINE.
async fn lookup(state: &AppState, job: &ProfileJob) -> anyhow::Result<Option<Profile>> {
    let key = format!("profile:{}", job.line_id);
    if let Ok(Some(cached)) = state.bus.cache_get(key.clone()).await
        && let Ok(profile) = serde_json::from_str::<Profile>(&cached)
    {
        return Ok(Some(profile));
    }
    let fetched = match &job.source {
        Lookup::User => state.line.profile(&job.line_id).await?,
        Lookup::Group => state.line.group_summary(&job.line_id).await?,
        Lookup::Member(kind, chat) => state.line.member_profile(kind, chat, &job.line_id).await?,
        Lookup::None => None,
    };
    if let Some(profile) = &fetched {
        let _ = state
            .bus
            .cache_set(key, serde_json::to_string(profile)?, PROFILE_TTL)
            .await;
    }
    Ok(fetched)
}

/// Logs a contact change on every conversation that shows this contact; returns the last
/// event id.
fn announce(db: &Db, contact_id: i64) -> anyhow::Result<i64> {
    let data = json!({ "contactId": contact_id }).to_string();
    let mut last = 0;
    for conversation_id in contacts::conversations_showing(db, contact_id)? {
        last = events::append(
            db,
            EventKind::ContactUpdated,
            Some(conversation_id),
            None,
            Some(&data),
        )?;
    }
    Ok(last)
}

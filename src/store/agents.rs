//! Agents: the people who sign in and answer customers.
//!
//! Changes that could leave the desk without an active admin (deactivating, demoting) check
//! and write in one statement inside the write gate, so two admins demoting each other at the
//! same moment cannot both succeed.

use sqlx::SqlitePool;

use super::Store;
use crate::domain::now_ms;

/// An agent's role: admins also manage agents and settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Agent,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "agent" => Some(Role::Agent),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Agent {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: String,
    pub active: i64,
    pub language: Option<String>,
    pub created_at: i64,
    /// Sessions signed in at an older epoch are refused (see migration 0004).
    pub session_epoch: i64,
}

impl Agent {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin.as_str()
    }
}

/// Longest username and display name accepted.
pub const MAX_USERNAME: usize = 32;
pub const MAX_DISPLAY_NAME: usize = 50;

/// A username: 2–32 of `a-z 0-9 . _ -` (what people type at sign-in, unambiguous). The same
/// rule holds wherever agents are made: the admin page, the setup link, `linechat agent add`.
pub fn valid_username(name: &str) -> bool {
    (2..=MAX_USERNAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// A display name: 1–50 characters, no control characters (the caller trims).
pub fn valid_display_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=MAX_DISPLAY_NAME).contains(&n) && !name.chars().any(char::is_control)
}

/// Why an agent could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("an agent named `{0}` already exists")]
    Taken(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Why a change to an agent was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no such agent")]
    NotFound,
    #[error("the desk must keep at least one active admin")]
    LastAdmin,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Creates an agent with an already-hashed password (display name = username).
pub async fn create(
    pool: &SqlitePool,
    username: &str,
    password_hash: &str,
    role: Role,
) -> Result<i64, CreateError> {
    create_named(pool, username, username, password_hash, role).await
}

/// Creates an agent with a display name of its own.
pub async fn create_named(
    pool: &SqlitePool,
    username: &str,
    display_name: &str,
    password_hash: &str,
    role: Role,
) -> Result<i64, CreateError> {
    sqlx::query_scalar(
        "INSERT INTO agents (username, display_name, password_hash, role, created_at)
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(username)
    .bind(display_name)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now_ms())
    .fetch_one(pool)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(ref db) if db.is_unique_violation() => {
            CreateError::Taken(username.to_owned())
        }
        other => CreateError::Db(other),
    })
}

pub async fn by_username(pool: &SqlitePool, username: &str) -> sqlx::Result<Option<Agent>> {
    sqlx::query_as("SELECT * FROM agents WHERE username = ?")
        .bind(username)
        .fetch_optional(pool)
        .await
}

/// An active agent by id (a deactivated agent's session stops working at once). Every
/// signed-in request asks, several times (the language, the session's agent, a held live
/// request before each answer), so found agents are kept in the store's memory; every
/// change to an agent made through this module forgets it on commit, and nothing else in
/// this process changes agents. The cache's short life bounds what another process (the
/// CLI only adds agents) could leave stale.
pub async fn active_by_id(store: &Store, id: i64) -> sqlx::Result<Option<Agent>> {
    if let Some(agent) = store.agents.get(&id) {
        return Ok(Some(agent));
    }
    let agent: Option<Agent> = sqlx::query_as("SELECT * FROM agents WHERE id = ? AND active = 1")
        .bind(id)
        .fetch_optional(&store.pool)
        .await?;
    if let Some(agent) = &agent {
        store.agents.insert(id, agent.clone());
    }
    Ok(agent)
}

pub async fn count(pool: &SqlitePool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM agents")
        .fetch_one(pool)
        .await
}

/// Active agents by display name: who a conversation can be assigned to.
pub async fn active(pool: &SqlitePool) -> sqlx::Result<Vec<Agent>> {
    sqlx::query_as("SELECT * FROM agents WHERE active = 1 ORDER BY display_name, id")
        .fetch_all(pool)
        .await
}
/// Every agent, active ones first, then by username.
pub async fn list(pool: &SqlitePool) -> sqlx::Result<Vec<Agent>> {
    sqlx::query_as("SELECT * FROM agents ORDER BY active DESC, username")
        .fetch_all(pool)
        .await
}

/// Turns an agent on or off. Turning off the last active admin is refused.
pub async fn set_active(store: &Store, id: i64, active: bool) -> Result<(), ChangeError> {
    let mut tx = store.write().await?;
    let n = sqlx::query(
        "UPDATE agents SET active = ?1 WHERE id = ?2
           AND (?1 = 1 OR role <> 'admin' OR active = 0 OR EXISTS (
                SELECT 1 FROM agents o WHERE o.role = 'admin' AND o.active = 1 AND o.id <> ?2))",
    )
    .bind(i64::from(active))
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    settle(store, tx, n, id).await
}

/// Changes an agent's role. Demoting the last active admin is refused.
pub async fn set_role(store: &Store, id: i64, role: Role) -> Result<(), ChangeError> {
    let mut tx = store.write().await?;
    let n = sqlx::query(
        "UPDATE agents SET role = ?1 WHERE id = ?2
           AND (?1 = 'admin' OR role <> 'admin' OR active = 0 OR EXISTS (
                SELECT 1 FROM agents o WHERE o.role = 'admin' AND o.active = 1 AND o.id <> ?2))",
    )
    .bind(role.as_str())
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    settle(store, tx, n, id).await
}

/// Commits a guarded update, or says why it matched nothing.
async fn settle(
    store: &Store,
    mut tx: super::WriteTx,
    updated: u64,
    id: i64,
) -> Result<(), ChangeError> {
    if updated == 1 {
        tx.commit().await?;
        store.agents.invalidate(&id);
        return Ok(());
    }
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM agents WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    Err(if exists.is_some() {
        ChangeError::LastAdmin
    } else {
        ChangeError::NotFound
    })
}

/// Sets a new password and moves the agent to a new session epoch, which ends every session
/// signed in before; returns the new epoch (the caller re-stamps its own session with it).
pub async fn set_password(store: &Store, id: i64, password_hash: &str) -> Result<i64, ChangeError> {
    let mut tx = store.write().await?;
    let epoch: Option<i64> = sqlx::query_scalar(
        "UPDATE agents SET password_hash = ?, session_epoch = session_epoch + 1 WHERE id = ?
         RETURNING session_epoch",
    )
    .bind(password_hash)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let epoch = epoch.ok_or(ChangeError::NotFound)?;
    tx.commit().await?;
    store.agents.invalidate(&id);
    Ok(epoch)
}

/// The agent's own language for the desk (`None`: follow the browser).
pub async fn set_language(store: &Store, id: i64, language: Option<&str>) -> sqlx::Result<()> {
    let mut tx = store.write().await?;
    sqlx::query("UPDATE agents SET language = ? WHERE id = ?")
        .bind(language)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    store.agents.invalidate(&id);
    Ok(())
}

/// The language an agent chose, if any (read on every signed-in request).
pub async fn language(store: &Store, id: i64) -> sqlx::Result<Option<String>> {
    Ok(active_by_id(store, id).await?.and_then(|a| a.language))
}

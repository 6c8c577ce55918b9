//! Agents: the people who sign in and answer customers.

use sqlx::SqlitePool;

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
}

/// Why an agent could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("an agent named `{0}` already exists")]
    Taken(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Creates an agent with an already-hashed password.
pub async fn create(
    pool: &SqlitePool,
    username: &str,
    password_hash: &str,
    role: Role,
) -> Result<i64, CreateError> {
    sqlx::query_scalar(
        "INSERT INTO agents (username, display_name, password_hash, role, created_at)
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(username)
    .bind(username)
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

/// An active agent by id (a deactivated agent's session stops working at once).
pub async fn active_by_id(pool: &SqlitePool, id: i64) -> sqlx::Result<Option<Agent>> {
    sqlx::query_as("SELECT * FROM agents WHERE id = ? AND active = 1")
        .bind(id)
        .fetch_optional(pool)
        .await
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

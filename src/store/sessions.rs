//! Sign-in sessions: a `tower_sessions::SessionStore` over the `sessions` table.
//!
//! Why our own: `tower-sessions-sqlx-store` 0.15 is built on sqlx 0.8, and we are on sqlx 0.9,
//! so the two cannot share a pool. The table is tiny and the store is four statements.
//!
//! What the session holds (the signed-in agent's id, the CSRF token) is decided in
//! `http::auth`; this module only persists records. Every signed-in request loads its
//! session, and live clients come back every few seconds (a long-poll answers each event), so
//! records are also kept in memory: every write of a session goes through this store, which
//! updates the memory after its commit, so a hit is as good as the table. (The table stays the
//! record: sessions survive a restart.)

use async_trait::async_trait;
use time::OffsetDateTime;
use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store::{Error, Result},
};

use super::Store;
use crate::domain::now_ms;

/// Writes go through the store's write gate like every other writer of the process.
#[derive(Clone)]
pub struct SqliteSessionStore {
    store: Store,
    /// Records as last committed, by id.
    recent: moka::sync::Cache<Id, Record>,
}

impl std::fmt::Debug for SqliteSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteSessionStore")
    }
}

impl SqliteSessionStore {
    pub fn new(store: Store) -> Self {
        let recent = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_idle(std::time::Duration::from_secs(15 * 60))
            .build();
        Self { store, recent }
    }

    /// Removes every expired session; run now and then (sign-in does).
    pub async fn delete_expired(&self) -> sqlx::Result<u64> {
        let mut tx = self.store.write().await?;
        let n = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now_ms())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        if n > 0 {
            self.recent.invalidate_all();
        }
        Ok(n)
    }
}

fn backend(e: sqlx::Error) -> Error {
    Error::Backend(e.to_string())
}

fn expiry_ms(record: &Record) -> i64 {
    (record.expiry_date.unix_timestamp_nanos() / 1_000_000) as i64
}

#[async_trait]
impl SessionStore for SqliteSessionStore {
    /// Inserts a fresh record; on the (astronomically unlikely) id collision, draws a new id
    /// rather than overwriting someone else's session.
    async fn create(&self, record: &mut Record) -> Result<()> {
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        let mut tx = self.store.write().await.map_err(backend)?;
        loop {
            let inserted = sqlx::query(
                "INSERT INTO sessions (id, data, expires_at) VALUES (?, ?, ?)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(record.id.to_string())
            .bind(&data)
            .bind(expiry_ms(record))
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
            if inserted == 1 {
                tx.commit().await.map_err(backend)?;
                self.recent.insert(record.id, record.clone());
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        let mut tx = self.store.write().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO sessions (id, data, expires_at) VALUES (?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
        )
        .bind(record.id.to_string())
        .bind(data)
        .bind(expiry_ms(record))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        self.recent.insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        if let Some(record) = self.recent.get(id) {
            if record.expiry_date > OffsetDateTime::now_utc() {
                return Ok(Some(record));
            }
            self.recent.invalidate(id);
            return Ok(None);
        }
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT data, expires_at FROM sessions WHERE id = ? AND expires_at > ?")
                .bind(id.to_string())
                .bind(now_ms())
                .fetch_optional(&self.store.pool)
                .await
                .map_err(backend)?;
        let Some((data, expires_at)) = row else {
            return Ok(None);
        };
        let expiry_date =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(expires_at) * 1_000_000)
                .map_err(|e| Error::Decode(e.to_string()))?;
        let record = Record {
            id: *id,
            data: serde_json::from_str(&data).map_err(|e| Error::Decode(e.to_string()))?,
            expiry_date,
        };
        self.recent.insert(*id, record.clone());
        Ok(Some(record))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let mut tx = self.store.write().await.map_err(backend)?;
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        self.recent.invalidate(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use time::Duration;

    use super::*;
    use crate::store::Store;

    fn record(expires_in: Duration) -> Record {
        Record {
            id: Id::default(),
            data: HashMap::from([("agent_id".to_owned(), serde_json::json!(7))]),
            expiry_date: OffsetDateTime::now_utc() + expires_in,
        }
    }

    #[tokio::test]
    async fn records_survive_a_reopen_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = SqliteSessionStore::new(Store::open(&url, dir.path()).await.unwrap());
        let mut live = record(Duration::hours(1));
        store.create(&mut live).await.unwrap();
        let mut stale = record(Duration::seconds(-1));
        store.create(&mut stale).await.unwrap();

        // A new pool on the same file: what a restarted process sees.
        let reopened = SqliteSessionStore::new(Store::open(&url, dir.path()).await.unwrap());
        let loaded = reopened.load(&live.id).await.unwrap().expect("kept");
        assert_eq!(loaded.data, live.data);
        assert_eq!(
            loaded.expiry_date.unix_timestamp(),
            live.expiry_date.unix_timestamp()
        );
        assert!(reopened.load(&stale.id).await.unwrap().is_none(), "expired");
        assert_eq!(reopened.delete_expired().await.unwrap(), 1);

        reopened.delete(&live.id).await.unwrap();
        assert!(reopened.load(&live.id).await.unwrap().is_none());
    }
}

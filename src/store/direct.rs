//! Many statements in one hop to the connection's thread.
//!
//! sqlx-sqlite runs every statement on a thread of its own per connection: each statement is
//! a channel round trip there and back, two thread wake-ups. On two cores that, not SQL,
//! bounded every transaction made of many small statements (profiles in docs/BENCHMARKS.md:
//! the kernel's task switching on top, SQLite's own `sqlite3VdbeExec` at 1–4 %). `direct`
//! borrows the connection's SQLite handle once — one round trip — and runs a closure of
//! rusqlite statements on the calling thread, inside whatever transaction the connection is
//! in. The pool, the transactions, migrations and the read queries stay with sqlx.

use std::{cell::Cell, ops::Deref};

use super::Conn;

/// What store statements run on: in a `direct` block, a rusqlite view of sqlx's borrowed
/// handle (it does not own it, so dropping it never closes sqlx's connection); in the
/// group-commit writer, the writer's own connection.
pub struct Db {
    connection: rusqlite::Connection,
    /// Set when an event-log row was appended (`events::append`) since the last `take_logged`:
    /// the writer tells the live hub to read the log only after commits that wrote to it.
    logged: Cell<bool>,
}

impl Db {
    /// Wraps a connection: the writer's own, or a view of a handle sqlx lends (`direct`).
    pub(super) fn new(connection: rusqlite::Connection) -> Self {
        Self {
            connection,
            logged: Cell::new(false),
        }
    }

    pub(super) fn note_logged(&self) {
        self.logged.set(true);
    }

    /// Whether an event was logged since the last call; clears the mark.
    pub(super) fn take_logged(&self) -> bool {
        self.logged.replace(false)
    }
}

impl Deref for Db {
    type Target = rusqlite::Connection;
    fn deref(&self) -> &rusqlite::Connection {
        &self.connection
    }
}

/// Runs `f` on the raw SQLite handle of `conn`, on this thread, with sqlx's worker parked;
/// its errors come back as sqlx's, so callers treat them like any other store error.
/// `f` should be short (it holds a runtime thread): a batch of statements, no waiting.
pub async fn direct<T>(
    conn: &mut Conn,
    f: impl FnOnce(&Db) -> rusqlite::Result<T>,
) -> sqlx::Result<T> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is locked for us: sqlx's worker thread waits on that lock and uses
    // the connection again only after `handle` is dropped, below, after `db` is. sqlx opens
    // its connections in SQLite's multi-thread mode, which allows a connection on any one
    // thread at a time. `from_handle` does not take ownership: dropping `db` finalizes the
    // statements it prepared and leaves the connection open.
    let db = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) }
        .map_err(into_sqlx)?;
    let db = Db::new(db);
    let out = f(&db).map_err(into_sqlx);
    drop(db);
    drop(handle);
    out
}

/// A rusqlite error as sqlx reports a database error: SQLite's extended code in `code()`,
/// so `store::unavailable` and constraint checks read it the same way.
fn into_sqlx(e: rusqlite::Error) -> sqlx::Error {
    match e {
        rusqlite::Error::SqliteFailure(failure, message) => {
            sqlx::Error::Database(Box::new(SqliteFailure {
                code: failure.extended_code,
                message: message.unwrap_or_else(|| failure.to_string()),
            }))
        }
        other => sqlx::Error::Protocol(format!("SQLite: {other}")),
    }
}

#[derive(Debug)]
struct SqliteFailure {
    code: i32,
    message: String,
}

impl std::fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for SqliteFailure {}

impl sqlx::error::DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        // SQLITE_CONSTRAINT_{UNIQUE, PRIMARYKEY, FOREIGNKEY, NOTNULL, CHECK}.
        match self.code {
            2067 | 1555 => sqlx::error::ErrorKind::UniqueViolation,
            787 => sqlx::error::ErrorKind::ForeignKeyViolation,
            1299 => sqlx::error::ErrorKind::NotNullViolation,
            275 => sqlx::error::ErrorKind::CheckViolation,
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}

/// Whether a rusqlite error says the store cannot take writes right now (see
/// `store::unavailable`).
pub fn unavailable(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(err, _) => super::unavailable_code(err.extended_code),
        _ => false,
    }
}

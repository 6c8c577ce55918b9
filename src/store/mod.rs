//! The store: linechat's system of record (sqlx over SQLite, WAL mode).
//!
//! Every SQL statement of the crate lives under this module, a file per table group. Functions
//! take an executor (`&mut SqliteConnection`, usually a transaction) so callers can group
//! several writes in one commit, or — the writes of the hot paths — a `Db`, the connection's
//! handle borrowed by `direct` or the group-commit writer's own connection (`writer`), so a
//! whole batch of statements costs one hop. `Store` is the cheap-to-clone handle that owns
//! the pool, the write gate and the writer.
//!
//! The SQL is kept portable (integer epoch-ms times, TEXT states, `RETURNING`,
//! `ON CONFLICT … DO NOTHING`) so a PostgreSQL backend can be added without rewriting it.

pub mod agents;
pub mod contacts;
pub mod conversations;
pub mod direct;
pub mod events;
pub mod inbox;
pub mod messages;
pub mod sessions;
pub mod settings;
pub mod touches;
pub mod writer;

use std::{
    ops::{Deref, DerefMut},
    path::Path,
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use sqlx::{
    Sqlite, SqlitePool, Transaction,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub use direct::{Db, direct};
pub use inbox::NewInboxRow;
pub use writer::Writer;

/// The database executor type every store function takes.
pub type Conn = sqlx::SqliteConnection;

/// Handle to the store: the pool, the write gate, and the group-commit writer.
#[derive(Clone)]
pub struct Store {
    pub pool: SqlitePool,
    /// Where the hot paths' small write transactions go to be committed together.
    pub writer: Writer,
    /// Active agents by id (see `agents::active_by_id`).
    agents: moka::sync::Cache<i64, agents::Agent>,
    gate: WriteGate,
}

/// Whether `e` says the store cannot take writes right now (disk full, read-only, an I/O
/// failure, a lock, the pool exhausted) rather than that a statement or its data was wrong.
/// Such a failure is the store's, not the event's: it must not count against an event's
/// attempts, and callers answer 503 so the sender tries again.
pub fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(unavailable_code),
        _ => false,
    }
}

/// Whether an SQLite result code (primary or extended) is one of BUSY, LOCKED, READONLY,
/// IOERR, FULL, CANTOPEN: the store, not the statement, is at fault.
pub(crate) fn unavailable_code(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
}

/// `unavailable` for an error with context around it.
pub fn unavailable_in(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<sqlx::Error>().is_some_and(unavailable)
            || cause
                .downcast_ref::<rusqlite::Error>()
                .is_some_and(direct::unavailable)
            || cause
                .downcast_ref::<writer::CommitFailed>()
                .is_some_and(|f| f.unavailable)
    })
}

/// SQLite lets one transaction write at a time. Left to SQLite, a writer that finds the lock
/// taken sleeps in its busy handler for growing intervals (up to 100 ms a nap), so under load
/// the webhook's commit could sleep while the ingest worker kept winning the lock. Every
/// write transaction in this process takes this fair (FIFO) async lock first instead, so
/// writers queue in order and SQLite never has to make one wait.
#[derive(Clone, Default)]
pub struct WriteGate(Arc<tokio::sync::Mutex<()>>);

/// A write transaction holding the gate; commit it, or drop it to roll back.
pub struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteGate {
    /// Waits for this process's turn to write, then begins an IMMEDIATE transaction (taking
    /// SQLite's write lock now rather than failing to upgrade a read lock later).
    pub async fn begin(&self, pool: &SqlitePool) -> sqlx::Result<WriteTx> {
        let turn = self.0.clone().lock_owned().await;
        let tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// The turn for a writer on a thread outside the runtime (the group-commit writer).
    pub(crate) fn blocking_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.blocking_lock()
    }
}

impl WriteTx {
    pub async fn commit(self) -> sqlx::Result<()> {
        self.tx.commit().await
    }
}

impl Deref for WriteTx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.tx
    }
}

impl Store {
    /// Opens (creating if needed) the database, applies migrations, and starts the inbox
    /// writer. Fails with a clear message when the data directory is not writable or the
    /// database cannot be opened.
    pub async fn open(database_url: &str, data_dir: &Path) -> anyhow::Result<Self> {
        let pool = connect(database_url, data_dir).await?;
        migrate(&pool).await?;
        let gate = WriteGate::default();
        let writer = Writer::start(pool.connect_options().get_filename(), gate.clone())?;
        let agents = moka::sync::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(Duration::from_secs(5))
            .build();
        Ok(Self {
            pool,
            writer,
            agents,
            gate,
        })
    }

    /// Begins a write transaction in turn with every other writer of this process.
    pub async fn write(&self) -> sqlx::Result<WriteTx> {
        self.gate.begin(&self.pool).await
    }

    /// A quick write probe for readiness checks.
    pub async fn check_writable(&self) -> anyhow::Result<()> {
        let mut tx = self.write().await.context("the store refused a write")?;
        sqlx::query("INSERT INTO settings (key, value) VALUES ('probe', '1') ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .execute(&mut *tx)
            .await
            .context("the store refused a write")?;
        tx.commit().await.context("the store refused a write")
    }
}

/// Connects to the database without migrating (used by `linechat migrate` too).
pub async fn connect(database_url: &str, data_dir: &Path) -> anyhow::Result<SqlitePool> {
    ensure_writable_dir(data_dir)?;
    configure_sqlite();
    let options = SqliteConnectOptions::from_str(database_url)
        .with_context(|| "DATABASE_URL is not a valid sqlite URL".to_string())?
        .create_if_missing(true)
        // WAL lets the live readers run while the writer commits.
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a commit is on disk before the webhook answers 2xx (promise 1). The inbox
        // writer batches many webhooks per commit, so the fsync is shared.
        .synchronous(SqliteSynchronous::Full)
        // SQLite allows one writer at a time; others wait this long instead of failing.
        .busy_timeout(Duration::from_secs(5))
        // Savepoints (one per job of the group commit) keep the pages they change in a
        // sub-journal; in a temporary file, that was a write syscall per page and a fifth of
        // the server's CPU at 5,000 webhooks/s. It is only needed until the savepoint ends.
        .pragma("temp_store", "MEMORY")
        // As on the writer's connection (`writer::open`, which says why).
        .pragma("wal_autocheckpoint", "10000")
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .with_context(|| format!("cannot open the database at {database_url}"))?;
    Ok(pool)
}

/// The id of the row the statement just run inserted, or `None` when it inserted nothing (its
/// `ON CONFLICT … DO NOTHING` found the row there already).
///
/// The hot paths' inserts ask this instead of saying `RETURNING id`: SQLite runs a statement
/// with `RETURNING` as one that may write many rows, each in a statement sub-transaction of
/// its own, and opening and releasing those was ~6 % of the server's CPU at full ingest speed.
pub(crate) fn inserted_id(db: &Db) -> Option<i64> {
    (db.changes() > 0).then(|| db.last_insert_rowid())
}

/// Process-wide SQLite settings, made before the first connection opens SQLite (afterwards
/// SQLite refuses them, harmlessly: a second store in the same process, as in the tests).
///
/// Memory statistics off: with them on, every allocation SQLite makes takes one global mutex
/// to count it, shared by the writer thread and every reader. Nothing here reads those
/// statistics; at full ingest speed the lock and unlock were ~3 % of the server's CPU.
fn configure_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config is only allowed before SQLite initializes or after it shuts
        // down, and is not thread-safe with other SQLite calls; `Once` runs this before this
        // process opens any connection, on one thread. Called too late it returns
        // SQLITE_MISUSE and changes nothing.
        let _ = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::ffi::c_int,
            )
        };
    });
}

/// Applies the embedded migrations in `migrations/`.
pub async fn migrate(pool: &SqlitePool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .context("cannot apply the database migrations")
}

fn ensure_writable_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let probe = dir.join(".write-probe");
    std::fs::write(&probe, b"ok")
        .with_context(|| format!("the data directory {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

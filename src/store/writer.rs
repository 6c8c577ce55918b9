//! The group-commit writer: small write transactions from many tasks, committed together.
//!
//! SQLite takes one writer at a time and every commit costs an fsync (`synchronous=FULL`) and
//! rewrites the pages it touched. Webhook acks, ingest batches, delivery claims and outcomes,
//! and queued replies are each a few statements; committed one by one they spend most of their
//! time in commits, each waiting for the previous one. So they are *jobs*: a closure of
//! statements handed to one writer, which takes every job that queued up while the
//! previous commit ran, runs each inside a savepoint (a failing job is rolled back alone and
//! gets its own error), commits once, and only then answers every job — nobody hears "done"
//! before the data is on disk. Bulk jobs (`run_bulk`: ingest batches) that queued in the same
//! round get a commit of their own after that one, so no ack waits for them.
//!
//! The writer is a thread of its own with its own SQLite connection: a batch costs one wake-up
//! of that thread, where going through sqlx cost a round trip to the connection's thread for
//! the BEGIN, the statements and the COMMIT each (on these VMs a thread wake-up, not SQL, was
//! the largest cost left; see docs/BENCHMARKS.md). Jobs are synchronous closures over `Db`, so
//! a job can never wait for something that waits for the writer. The thread takes the store's
//! write gate for each transaction, in turn with the other (sqlx) writers of the process.

use std::{
    any::Any,
    panic::{AssertUnwindSafe, catch_unwind},
    path::Path,
    sync::{Arc, OnceLock},
    time::Duration,
};

use anyhow::Context;
use tokio::sync::{mpsc, oneshot};

use super::{Db, WriteGate};

/// Most jobs one commit takes; bounds the transaction's length and the writer's turn.
const MAX_JOBS_PER_COMMIT: usize = 1024;

type Output = Box<dyn Any + Send>;
type Run = Box<dyn FnOnce(&Db) -> anyhow::Result<Output> + Send>;

struct Job {
    run: Run,
    done: oneshot::Sender<anyhow::Result<Output>>,
    /// Committed after the others that queued with it, in a commit of its own (`run_bulk`).
    bulk: bool,
}

/// What runs on the writer's connection after each successful commit (`Writer::after_commit`).
pub type CommitHook = Box<dyn Fn(&Db) + Send + Sync>;

/// Handle to the writer. Cloning is cheap; its thread ends when every handle is dropped.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    hook: Arc<OnceLock<CommitHook>>,
}

impl Writer {
    /// Opens the writer's connection to the database file and starts its thread.
    pub(super) fn start(file: &Path, gate: WriteGate) -> anyhow::Result<Self> {
        let db = open(file)?;
        // Bounded, so a store that has stopped answering pushes back on its callers instead
        // of growing memory without limit.
        let (jobs, rx) = mpsc::channel(8192);
        let hook = Arc::new(OnceLock::new());
        let after = Arc::clone(&hook);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(&db, &gate, rx, &after))
            .context("cannot start the store's writer thread")?;
        Ok(Self { jobs, hook })
    }

    /// Sets what runs on the writer's thread and connection after each successful commit that
    /// appended to the event log, once the commit's jobs have been answered (the live hub
    /// reads the events just written, from pages still in this connection's cache). At most
    /// one; later calls are ignored.
    pub fn after_commit(&self, hook: CommitHook) {
        let _ = self.hook.set(hook);
    }

    /// Runs `f` in the next group commit; returns its result once that commit is durable.
    /// If `f` fails, its statements are rolled back and the others' still commit; if the
    /// commit fails, every job in it gets the commit's error.
    pub async fn run<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> anyhow::Result<T> + Send + 'static,
    {
        self.submit(f, false).await
    }

    /// `run` for a long job that nobody is waiting on in a hurry (an ingest batch): it is
    /// committed after the short jobs that queued with it, in a commit of its own, so a
    /// webhook's ack waits for the commit of its own row, not for a batch of hundreds of
    /// events applied in the same transaction. Costs a second fsync per round.
    pub async fn run_bulk<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> anyhow::Result<T> + Send + 'static,
    {
        self.submit(f, true).await
    }

    async fn submit<T, F>(&self, f: F, bulk: bool) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> anyhow::Result<T> + Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        let run: Run = Box::new(move |db| f(db).map(|out| Box::new(out) as Output));
        self.jobs
            .send(Job { run, done, bulk })
            .await
            .map_err(|_| anyhow::anyhow!("the store's writer has stopped"))?;
        let out = answer
            .await
            .context("the store's writer dropped the job")??;
        Ok(*out
            .downcast::<T>()
            .expect("a job's output has the job's type"))
    }
}

/// The writer's own connection, set up as `store::connect` sets up the pool's.
fn open(file: &Path) -> anyhow::Result<Db> {
    let db = rusqlite::Connection::open(file)
        .with_context(|| format!("cannot open the database at {}", file.display()))?;
    db.busy_timeout(Duration::from_secs(5))?;
    for (pragma, value) in [
        ("journal_mode", "wal"),
        ("synchronous", "full"),
        ("foreign_keys", "on"),
        ("temp_store", "memory"),
        // Every ingest batch walks the inbox, contacts, conversations, messages and events
        // indexes; with SQLite's default 2 MB cache their pages were read back from the file
        // over and over (pread was ~3 % of the server's CPU at full speed). 32 MiB at most,
        // filled only as pages are used.
        ("cache_size", "-32768"),
        // SQLite copies the WAL back into the database file (and fsyncs it) once the WAL
        // holds this many pages; the default of 1,000 meant a checkpoint every few hundred
        // milliseconds at full speed, each rewriting the same hot index pages. 10,000 pages
        // (~40 MB of WAL at most) writes each of them back far less often.
        ("wal_autocheckpoint", "10000"),
    ] {
        db.pragma_update(None, pragma, value)
            .with_context(|| format!("cannot set {pragma} on the writer's connection"))?;
    }
    Ok(Db::new(db))
}

fn run(db: &Db, gate: &WriteGate, mut rx: mpsc::Receiver<Job>, hook: &OnceLock<CommitHook>) {
    let mut batch = Vec::new();
    while rx.blocking_recv_many(&mut batch, MAX_JOBS_PER_COMMIT) > 0 {
        let (bulk, quick): (Vec<Job>, Vec<Job>) =
            std::mem::take(&mut batch).into_iter().partition(|j| j.bulk);
        for jobs in [quick, bulk] {
            if !jobs.is_empty() {
                commit_and_answer(db, gate, jobs, hook);
            }
        }
    }
}

/// One group commit of `jobs`, then every job's answer, then the hook.
fn commit_and_answer(db: &Db, gate: &WriteGate, jobs: Vec<Job>, hook: &OnceLock<CommitHook>) {
    let turn = gate.blocking_turn();
    let outcome = commit(db, jobs);
    drop(turn);
    match outcome {
        Ok(answered) => {
            for (done, out) in answered {
                let _ = done.send(out);
            }
            // Only after commits that logged events: for the others (most webhook acks) the
            // read would find nothing, and it was ~10 % of the CPU at 1,000/s.
            if db.take_logged()
                && let Some(hook) = hook.get()
            {
                hook(db);
            }
        }
        Err((e, waiting)) => {
            let failed = CommitFailed {
                message: format!("{e:#}"),
                unavailable: super::unavailable_in(&e),
            };
            tracing::error!(error = %failed.message, jobs = waiting.len(), "group commit failed");
            for done in waiting {
                let _ = done.send(Err(failed.clone().into()));
            }
        }
    }
}

/// The error every job of a failed commit gets (one error, many receivers).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct CommitFailed {
    message: String,
    /// The store could not take writes (see `store::unavailable`), rather than a bug.
    pub unavailable: bool,
}

type Answered = Vec<(
    oneshot::Sender<anyhow::Result<Output>>,
    anyhow::Result<Output>,
)>;
type Refused = (anyhow::Error, Vec<oneshot::Sender<anyhow::Result<Output>>>);

/// One transaction for all `jobs`. On success, each job's sender with its own outcome; on a
/// failed begin, savepoint or commit, the error and every sender (nothing was kept).
fn commit(db: &Db, jobs: Vec<Job>) -> Result<Answered, Refused> {
    let all = |jobs: Vec<Job>| jobs.into_iter().map(|j| j.done).collect::<Vec<_>>();
    if let Err(e) = db
        .prepare_cached("BEGIN IMMEDIATE")
        .and_then(|mut s| s.execute([]))
    {
        return Err((
            anyhow::Error::new(e).context("begin group commit"),
            all(jobs),
        ));
    }
    let mut ran: Answered = Vec::with_capacity(jobs.len());
    let mut iter = jobs.into_iter();
    while let Some(job) = iter.next() {
        match run_one(db, job.run) {
            Ok(out) => ran.push((job.done, out)),
            Err(e) => {
                // A savepoint could not be made or undone: the transaction is unusable.
                rollback(db);
                let mut waiting: Vec<_> = ran.into_iter().map(|(done, _)| done).collect();
                waiting.push(job.done);
                waiting.extend(iter.map(|j| j.done));
                return Err((e, waiting));
            }
        }
    }
    if let Err(e) = db.prepare_cached("COMMIT").and_then(|mut s| s.execute([])) {
        rollback(db);
        let waiting = ran.into_iter().map(|(done, _)| done).collect();
        return Err((anyhow::Error::new(e).context("commit"), waiting));
    }
    Ok(ran)
}

/// Ends a transaction that could not be committed (SQLite may have ended it already).
fn rollback(db: &Db) {
    if !db.is_autocommit()
        && let Err(e) = db.execute_batch("ROLLBACK")
    {
        tracing::error!(error = %e, "cannot roll back a failed group commit");
    }
}

/// Runs one job in a savepoint: its outcome, or an error about the savepoint itself.
fn run_one(db: &Db, run: Run) -> anyhow::Result<anyhow::Result<Output>> {
    db.prepare_cached("SAVEPOINT job")?.execute([])?;
    // A job that panics fails alone, like one that returns an error; the writer goes on.
    let out = catch_unwind(AssertUnwindSafe(|| run(db)))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("a store job panicked")));
    if out.is_err() {
        db.prepare_cached("ROLLBACK TO job")?.execute([])?;
    }
    db.prepare_cached("RELEASE job")?.execute([])?;
    Ok(out)
}

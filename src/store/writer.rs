//! The group-commit writer: small write transactions from many tasks, committed together.
//!
//! SQLite takes one writer at a time and every commit costs an fsync (`synchronous=FULL`) and
//! rewrites the pages it touched. Webhook acks, ingest batches, delivery claims and outcomes,
//! and queued replies are each a few statements; committed one by one they spend most of their
//! time in commits, each waiting for the previous one. So they are *jobs*: a closure of
//! statements handed to one writer task, which takes every job that queued up while the
//! previous commit ran, runs each inside a savepoint (a failing job is rolled back alone and
//! gets its own error), commits once, and only then answers every job — nobody hears "done"
//! before the data is on disk.
//!
//! Jobs are synchronous closures over `Db` (they run inside one `direct` block), so a job can
//! never wait for something that waits for the writer.

use std::any::Any;

use anyhow::Context;
use tokio::sync::{mpsc, oneshot};

use super::{Db, WriteGate, direct_with};

/// Most jobs one commit takes; bounds the transaction's length and the writer's turn.
const MAX_JOBS_PER_COMMIT: usize = 1024;

type Output = Box<dyn Any + Send>;
type Run = Box<dyn FnOnce(&Db) -> anyhow::Result<Output> + Send>;

struct Job {
    run: Run,
    done: oneshot::Sender<anyhow::Result<Output>>,
}

/// Handle to the writer task. Cloning is cheap; the task ends when every handle is dropped.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub(super) fn start(pool: sqlx::SqlitePool, gate: WriteGate) -> Self {
        // Bounded, so a store that has stopped answering pushes back on its callers instead
        // of growing memory without limit.
        let (jobs, rx) = mpsc::channel(8192);
        tokio::spawn(run(pool, gate, rx));
        Self { jobs }
    }

    /// Runs `f` in the next group commit; returns its result once that commit is durable.
    /// If `f` fails, its statements are rolled back and the others' still commit; if the
    /// commit fails, every job in it gets the commit's error.
    pub async fn run<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> anyhow::Result<T> + Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        let run: Run = Box::new(move |db| f(db).map(|out| Box::new(out) as Output));
        self.jobs
            .send(Job { run, done })
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

async fn run(pool: sqlx::SqlitePool, gate: WriteGate, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, MAX_JOBS_PER_COMMIT).await > 0 {
        let jobs = std::mem::take(&mut batch);
        match commit(&pool, &gate, jobs).await {
            Ok(answered) => {
                for (done, out) in answered {
                    let _ = done.send(out);
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
/// failed begin, run or commit, the error and every sender.
async fn commit(
    pool: &sqlx::SqlitePool,
    gate: &WriteGate,
    jobs: Vec<Job>,
) -> Result<Answered, Refused> {
    let mut tx = match gate.begin(pool).await {
        Ok(tx) => tx,
        Err(e) => {
            let error = anyhow::Error::new(e).context("begin group commit");
            return Err((error, jobs.into_iter().map(|j| j.done).collect()));
        }
    };
    let (ran, failed) = direct_with(&mut tx, move |db| {
        let mut ran: Answered = Vec::with_capacity(jobs.len());
        let mut iter = jobs.into_iter();
        for job in iter.by_ref() {
            match run_one(db, job.run) {
                Ok(out) => ran.push((job.done, out)),
                Err(e) => {
                    // The savepoint could not be made or undone: the transaction is unusable.
                    let mut waiting: Vec<_> = ran.into_iter().map(|(done, _)| done).collect();
                    waiting.push(job.done);
                    waiting.extend(iter.map(|j| j.done));
                    return Ok::<_, sqlx::Error>((Vec::new(), Some((e, waiting))));
                }
            }
        }
        Ok((ran, None))
    })
    .await
    .map_err(|e| (anyhow::Error::new(e).context("group commit"), Vec::new()))?;
    if let Some(refused) = failed {
        return Err(refused);
    }
    match tx.commit().await {
        Ok(()) => Ok(ran),
        Err(e) => Err((
            anyhow::Error::new(e).context("commit"),
            ran.into_iter().map(|(done, _)| done).collect(),
        )),
    }
}

/// Runs one job in a savepoint: its outcome, or an error about the savepoint itself.
fn run_one(db: &Db, run: Run) -> anyhow::Result<anyhow::Result<Output>> {
    db.prepare_cached("SAVEPOINT job")?.execute([])?;
    let out = run(db);
    if out.is_err() {
        db.prepare_cached("ROLLBACK TO job")?.execute([])?;
    }
    db.prepare_cached("RELEASE job")?.execute([])?;
    Ok(out)
}

//! Background work inside the server process: ingest (webhook rows → conversations),
//! delivery (outgoing messages → LINE), media (content downloads), profile refreshes, and the
//! sweeper that re-enqueues durable work whose queue entry was lost.
//!
//! Every loop is a `select!` between the shutdown token and its next unit of work; tasks are
//! spawned on the state's `TaskTracker` so `app::run` can wait for them on shutdown.

pub mod delivery;
pub mod ingest;
pub mod media;
pub mod profiles;
mod sweeper;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{app::AppState, bus::Queue};

/// The process's background machinery: the tracker every task is spawned on, the token that
/// stops them, and which loops are running (for readiness).
#[derive(Clone)]
pub struct Workers {
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
    running: Arc<Mutex<BTreeMap<&'static str, bool>>>,
    /// Bounds concurrent profile look-ups so a burst of new contacts cannot flood LINE.
    pub(crate) profile_permits: Arc<Semaphore>,
}

impl Default for Workers {
    fn default() -> Self {
        Self {
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            running: Arc::default(),
            profile_permits: Arc::new(Semaphore::new(8)),
        }
    }
}

impl Workers {
    /// The first loop that has stopped, if any.
    pub fn stopped(&self) -> Option<&'static str> {
        let running = self.running.lock().expect("workers lock");
        running.iter().find(|(_, up)| !**up).map(|(name, _)| *name)
    }

    fn set(&self, name: &'static str, up: bool) {
        self.running.lock().expect("workers lock").insert(name, up);
    }

    /// Spawns a tracked task that re-enqueues `id` on `queue` at `delay` from now, unless the
    /// process stops first (then the sweeper of the next start finds it).
    pub fn enqueue_later(&self, state: &AppState, queue: Queue, id: i64, delay: Duration) {
        let bus = state.bus.clone();
        let token = self.shutdown.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = tokio::time::sleep(delay) => {
                    if let Err(e) = bus.enqueue(queue, vec![id]).await {
                        tracing::debug!(error = format!("{e:#}"), "re-enqueue failed; the sweeper will retry");
                    }
                }
            }
        });
    }
}

/// Starts every worker loop on the state's tracker.
pub fn spawn_all(state: &AppState) {
    spawn_loop(state, "ingest", ingest::run);
    spawn_loop(state, "delivery", delivery::run);
    spawn_loop(state, "media", media::run);
    spawn_loop(state, "sweeper", sweeper::run);
}

fn spawn_loop<F, Fut>(state: &AppState, name: &'static str, body: F)
where
    F: FnOnce(AppState) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let workers = state.workers.clone();
    workers.set(name, true);
    let fut = body(state.clone());
    state.workers.tracker.spawn(async move {
        fut.await;
        workers.set(name, false);
        tracing::info!(worker = name, "stopped");
    });
}

/// The loop shared by the delivery and media workers: take one id at a time, but only when
/// one of `concurrency` slots is free (so ids are not taken off a shared queue that another
/// replica could work on), and handle it on a tracked task.
pub(crate) async fn consume<F, Fut>(state: AppState, queue: Queue, concurrency: usize, handle: F)
where
    F: Fn(AppState, i64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let token = state.workers.shutdown.clone();
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut bus_failing = false;
    loop {
        let permit = tokio::select! {
            _ = token.cancelled() => return,
            p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        let ids = tokio::select! {
            _ = token.cancelled() => return,
            ids = state.bus.dequeue(queue, 1, Duration::from_secs(1)) => ids,
        };
        match ids {
            Ok(ids) => {
                bus_failing = false;
                if let Some(id) = ids.into_iter().next() {
                    let job = handle(state.clone(), id);
                    state.workers.tracker.spawn(async move {
                        let _permit = permit;
                        if let Err(e) = job.await {
                            // The store failed us; the sweeper retries once the lease expires.
                            tracing::error!(
                                queue = queue.name(),
                                id,
                                error = format!("{e:#}"),
                                "job bookkeeping failed"
                            );
                        }
                    });
                }
            }
            Err(e) => {
                // Once per outage; the bus client reconnects by itself.
                if !bus_failing {
                    tracing::warn!(
                        queue = queue.name(),
                        error = format!("{e:#}"),
                        "bus unavailable"
                    );
                    bus_failing = true;
                }
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Exponential backoff with jitter: about `base * 2^(attempt-1)`, capped, randomised to
/// between half and all of that so retries from many messages do not march in step.
pub fn backoff(attempt: i64, base: Duration, max: Duration) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let full = base.saturating_mul(2u32.saturating_pow(exp)).min(max);
    let half = full / 2;
    half + full.saturating_sub(half).mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        for _ in 0..100 {
            let first = backoff(1, base, max);
            assert!(
                first >= Duration::from_millis(50) && first <= base,
                "{first:?}"
            );
            let fourth = backoff(4, base, max);
            assert!(fourth >= Duration::from_millis(400) && fourth <= Duration::from_millis(800));
            let late = backoff(60, base, max);
            assert!(late >= max / 2 && late <= max);
        }
    }
}

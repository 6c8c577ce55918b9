//! The live hub: one per process. Its single reader waits for bus notices ("the event log
//! grew up to N"), reads the new rows from the store once, and broadcasts them to every local
//! subscriber (SSE streams, long-polls). Browser connections never touch Redis or poll the
//! store on their own.
//!
//! Correctness never rests on a notice arriving: the reader also re-reads the log when a wait
//! times out, so a lost notice (Redis restarted, a publish that failed) only delays an event.
//! Subscribers keep their own cursor; `events_since` subscribes before reading the backlog so
//! nothing slips between the two, and a subscriber that lagged re-reads its backlog.
//!
//! The hub keeps the latest events in memory too, so the backlog of a subscriber that is
//! merely behind by a few events (every wake-up of every connection) is served without a
//! store read; only a cursor older than that window (a laptop waking after hours) reads the
//! store. This relies on event ids being committed in id order, which the store's single
//! write gate guarantees.

use std::{
    collections::VecDeque,
    sync::{
        Arc, RwLock,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use sqlx::SqlitePool;
use tokio::sync::{OnceCell, broadcast};
use tokio_util::sync::CancellationToken;

use crate::{
    bus::SharedBus,
    i18n::Lang,
    store::{
        Db,
        events::{self, Event},
    },
};

/// How long the reader waits for a notice before re-reading the log anyway.
const SAFETY_POLL: Duration = Duration::from_secs(2);
/// Most events read from the store at once.
const PAGE: i64 = 500;
/// Events kept in memory for subscribers' backlogs.
const RECENT: usize = 4096;

#[derive(Clone)]
pub struct LiveHub {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    tx: broadcast::Sender<Arc<Event>>,
    /// The highest event id broadcast so far.
    latest: AtomicI64,
    recent: RwLock<Recent>,
    /// Held while a page of events is kept and broadcast (`deliver`).
    delivering: std::sync::Mutex<()>,
    drawn: Drawn<Drawing>,
    /// Bumped whenever an agent's sign-in stops being valid (deactivated, password reset),
    /// so open live connections re-check theirs without asking the store on every event.
    sessions: AtomicU64,
}

/// One event drawn for the live transports: the HTML fragment (long-poll), and the whole SSE
/// event (its `id:` line, the fragment as `data:` lines, the blank line that ends it).
#[derive(Clone, Debug, Default)]
pub struct Drawing {
    pub html: bytes::Bytes,
    pub sse_event: bytes::Bytes,
}

impl Drawing {
    pub fn new(id: i64, html: String) -> Self {
        let mut sse = format!("id: {id}\n");
        sse.reserve(html.len() + 16);
        // SSE ends a line at CR, LF or CRLF: each line of the fragment is a `data:` line
        // (EventSource joins them back with LF).
        for line in html.split("\r\n").flat_map(|l| l.split(['\r', '\n'])) {
            sse.push_str("data: ");
            sse.push_str(line);
            sse.push('\n');
        }
        sse.push('\n');
        Self {
            html: html.into(),
            sse_event: sse.into(),
        }
    }
}

/// Every event with `floor < id <= latest`, oldest first.
struct Recent {
    floor: i64,
    events: VecDeque<Arc<Event>>,
}

impl Recent {
    /// The events after `cursor` (at most `PAGE`), or `None` when the window does not reach
    /// back that far.
    fn after(&self, cursor: i64) -> Option<Vec<Arc<Event>>> {
        if cursor < self.floor {
            return None;
        }
        let start = self.events.partition_point(|e| e.id <= cursor);
        Some(
            self.events
                .range(start..)
                .take(PAGE as usize)
                .cloned()
                .collect(),
        )
    }

    fn push(&mut self, event: Arc<Event>) {
        if self.events.len() == RECENT
            && let Some(old) = self.events.pop_front()
        {
            self.floor = old.id;
        }
        self.events.push_back(event);
    }
}

impl LiveHub {
    pub fn new(pool: SqlitePool, latest: i64) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            inner: Arc::new(Inner {
                pool,
                tx,
                latest: AtomicI64::new(latest),
                recent: RwLock::new(Recent {
                    floor: latest,
                    events: VecDeque::with_capacity(RECENT),
                }),
                delivering: std::sync::Mutex::new(()),
                drawn: Drawn::new(),
                sessions: AtomicU64::new(0),
            }),
        }
    }

    /// The highest event id this hub has broadcast.
    pub fn latest(&self) -> i64 {
        self.inner.latest.load(Ordering::Acquire)
    }

    /// Some agent's sign-in was ended: open live connections check theirs.
    pub fn sessions_changed(&self) {
        self.inner.sessions.fetch_add(1, Ordering::AcqRel);
    }

    pub fn sessions_generation(&self) -> u64 {
        self.inner.sessions.load(Ordering::Acquire)
    }

    /// Events as drawn for the live transports, shared by every connection.
    pub fn drawn(&self) -> &Drawn<Drawing> {
        &self.inner.drawn
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.inner.tx.subscribe()
    }

    /// Events after `cursor`: at once if there are any, else the first to arrive within
    /// `wait`, else none. Both live transports are thin wrappers over this. The events are
    /// shared, not copied: every connection gets the same `Arc`s.
    pub async fn events_since(&self, cursor: i64, wait: Duration) -> sqlx::Result<Vec<Arc<Event>>> {
        let mut rx = self.subscribe();
        let backlog = self.backlog(cursor).await?;
        if !backlog.is_empty() || wait.is_zero() {
            return Ok(backlog);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) | Ok(Err(broadcast::error::RecvError::Closed)) => return Ok(Vec::new()),
                Ok(Ok(event)) if event.id > cursor => {
                    // Whatever else arrived meanwhile comes in the same answer.
                    return self.backlog(cursor).await;
                }
                Ok(Ok(_)) => continue,
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    return self.backlog(cursor).await;
                }
            }
        }
    }

    /// Events after `cursor`, from memory when the window reaches back that far.
    async fn backlog(&self, cursor: i64) -> sqlx::Result<Vec<Arc<Event>>> {
        let recent = self
            .inner
            .recent
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .after(cursor);
        match recent {
            Some(events) => Ok(events),
            None => Ok(events::since(&self.inner.pool, cursor, PAGE)
                .await?
                .into_iter()
                .map(Arc::new)
                .collect()),
        }
    }

    /// The reader loop; ends when `token` is cancelled.
    pub async fn run(self, bus: SharedBus, token: CancellationToken) {
        let mut bus_failing = false;
        loop {
            let notice = tokio::select! {
                _ = token.cancelled() => return,
                n = bus.next_notice(SAFETY_POLL) => n,
            };
            match notice {
                Ok(Some(id)) if id <= self.latest() => continue,
                Ok(_) => bus_failing = false,
                Err(e) => {
                    if !bus_failing {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "live hub: bus unavailable, polling the store"
                        );
                        bus_failing = true;
                    }
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
            if let Err(e) = self.catch_up().await {
                tracing::warn!(error = %e, "live hub: cannot read the event log");
            }
        }
    }

    /// Reads everything after the last broadcast id and broadcasts it, in order.
    pub async fn catch_up(&self) -> sqlx::Result<()> {
        loop {
            let page = events::since(&self.inner.pool, self.latest(), PAGE).await?;
            if !self.deliver(page) {
                return Ok(());
            }
        }
    }

    /// `catch_up` on a connection at hand: the store's writer calls it after each commit, so
    /// what the commit logged goes out at once, read from pages still in the writer's cache,
    /// without waiting for the bus's notice (which then finds nothing new and costs no read).
    pub fn catch_up_in(&self, db: &Db) {
        loop {
            match events::since_in(db, self.latest(), PAGE) {
                Ok(page) => {
                    if !self.deliver(page) {
                        return;
                    }
                }
                Err(e) => {
                    // The notice path reads it again.
                    tracing::debug!(error = %e, "live hub: cannot read the event log after a commit");
                    return;
                }
            }
        }
    }

    /// Keeps and broadcasts the events of `page` that are newer than the latest broadcast
    /// (a page read by the other path meanwhile may have some of them already), in order.
    /// Answers whether the page had any events at all (there may be more to read).
    fn deliver(&self, page: Vec<Event>) -> bool {
        if page.is_empty() {
            return false;
        }
        // One deliverer at a time, so `latest` and the broadcast order agree.
        let _turn = self
            .inner
            .delivering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let latest = self.latest();
        let page: Vec<Arc<Event>> = page
            .into_iter()
            .filter(|e| e.id > latest)
            .map(Arc::new)
            .collect();
        let Some(last) = page.last().map(|e| e.id) else {
            return true;
        };
        {
            let mut recent = self
                .inner
                .recent
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for event in &page {
                recent.push(event.clone());
            }
        }
        self.inner.latest.store(last, Ordering::Release);
        for event in page {
            // No receivers is fine: nobody is watching right now.
            let _ = self.inner.tx.send(event);
        }
        true
    }
}

/// What an event looks like once drawn, shared by every connection that sends it: each
/// event is looked up and rendered once per language, however many agents watch
/// (`http::live`). Bounded: the oldest entries go first.
pub struct Drawn<V> {
    entries: std::sync::Mutex<DrawnEntries<V>>,
}

/// (event id, language) → its drawing, oldest event first.
type DrawnEntries<V> = std::collections::BTreeMap<(i64, Lang), Arc<OnceCell<V>>>;

/// Drawn events kept (per language, about the memory window's length).
const DRAWN: usize = 2 * RECENT;

impl<V: Clone> Drawn<V> {
    pub fn new() -> Self {
        Self {
            entries: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    /// The drawing of event `id` in `lang`, made by `draw` if nobody made it yet (callers
    /// that ask at the same time wait for the one drawing). A failed drawing is not kept:
    /// the next caller tries again.
    pub async fn get_or_draw<F, Fut, E>(&self, id: i64, lang: Lang, draw: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        let cell = {
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let cell = entries.entry((id, lang)).or_default().clone();
            while entries.len() > DRAWN {
                entries.pop_first();
            }
            cell
        };
        cell.get_or_try_init(draw).await.cloned()
    }
}

impl<V: Clone> Default for Drawn<V> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64) -> Arc<Event> {
        Arc::new(Event {
            id,
            kind: "message.new".to_owned(),
            conversation_id: Some(1),
            message_id: Some(id),
            data: None,
            created_at: 0,
        })
    }

    fn ids(events: Option<Vec<Arc<Event>>>) -> Option<Vec<i64>> {
        events.map(|v| v.into_iter().map(|e| e.id).collect())
    }

    #[test]
    fn the_window_serves_cursors_it_covers_and_refuses_older_ones() {
        let mut r = Recent {
            floor: 10,
            events: VecDeque::new(),
        };
        assert_eq!(ids(r.after(10)), Some(vec![]), "nothing new yet");
        assert_eq!(ids(r.after(9)), None, "before the window: read the store");
        for id in [11, 12, 15] {
            r.push(event(id));
        }
        assert_eq!(ids(r.after(10)), Some(vec![11, 12, 15]));
        assert_eq!(ids(r.after(12)), Some(vec![15]), "ids may have gaps");
        assert_eq!(ids(r.after(13)), Some(vec![15]));
        assert_eq!(ids(r.after(15)), Some(vec![]));
    }

    #[test]
    fn a_drawing_is_one_sse_event_with_a_data_line_per_line_of_html() {
        let d = Drawing::new(7, "<p>a\r\nb\rc\nd</p>".to_owned());
        assert_eq!(&d.html[..], b"<p>a\r\nb\rc\nd</p>");
        assert_eq!(
            &d.sse_event[..],
            b"id: 7\ndata: <p>a\ndata: b\ndata: c\ndata: d</p>\n\n"
        );
    }

    #[tokio::test]
    async fn each_event_is_drawn_once_per_language() {
        let drawn = Drawn::<u32>::new();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let draw = || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Ok::<_, ()>(7)
        };
        assert_eq!(drawn.get_or_draw(1, Lang::En, draw).await, Ok(7));
        assert_eq!(drawn.get_or_draw(1, Lang::En, draw).await, Ok(7));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        let _ = drawn.get_or_draw(1, Lang::ZhTw, draw).await;
        assert_eq!(calls.load(Ordering::Relaxed), 2);
        // A failure is not kept.
        assert_eq!(
            drawn.get_or_draw(9, Lang::En, || async { Err(()) }).await,
            Err(())
        );
        assert_eq!(drawn.get_or_draw(9, Lang::En, draw).await, Ok(7));
        for id in 10..=(DRAWN as i64 + 15) {
            let _ = drawn
                .get_or_draw(id, Lang::En, || async { Ok::<_, ()>(0) })
                .await;
        }
        assert_eq!(drawn.entries.lock().unwrap().len(), DRAWN, "bounded");
    }

    #[test]
    fn trimming_moves_the_floor_so_nothing_is_skipped() {
        let mut r = Recent {
            floor: 0,
            events: VecDeque::new(),
        };
        for id in 1..=(RECENT as i64 + 3) {
            r.push(event(id));
        }
        assert_eq!(r.events.len(), RECENT);
        assert_eq!(r.floor, 3, "events 1..=3 left the window");
        assert_eq!(ids(r.after(2)), None);
        let from_floor = ids(r.after(3)).expect("in the window");
        assert_eq!(from_floor.first(), Some(&4));
        assert_eq!(from_floor.len(), PAGE as usize, "one page at a time");
    }
}

//! Live updates over real sockets: SSE (with `id:` and `Last-Event-ID` resume) and long-poll
//! (answers at once after the cursor, resumes from the cursor it returns) — promise 4.

use std::time::Duration;

use futures::StreamExt;

use crate::{
    both_buses,
    helpers::{Browser, TestApp},
    line_events::{body, text, user},
};

/// One parsed SSE event.
#[derive(Debug)]
struct SseEvent {
    id: Option<i64>,
    data: String,
}

/// Reads an SSE response event by event (comments and keep-alives skipped).
struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    async fn open(b: &Browser, path: &str, last_event_id: Option<i64>) -> Self {
        let mut r = b.request(reqwest::Method::GET, path);
        if let Some(id) = last_event_id {
            r = r.header("last-event-id", id.to_string());
        }
        let response = b.send(r).await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    id: None,
                    data: String::new(),
                };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        has_data = true;
                    }
                }
                if has_data || event.id.is_some() {
                    return event;
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(15), self.stream.next())
                .await
                .expect("an SSE event within 15 s")
                .expect("the stream is open")
                .expect("read");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The first event whose data contains `needle`.
    async fn until(&mut self, needle: &str) -> SseEvent {
        loop {
            let e = self.next().await;
            if e.data.contains(needle) {
                return e;
            }
        }
    }
}

async fn latest_event(app: &TestApp) -> i64 {
    app.count("SELECT COALESCE(MAX(id), 0) FROM events").await
}

both_buses!(
    sse_streams_a_new_customer_message_with_its_event_id_and_resumes,
    |bus| async move {
        let app = TestApp::spawn(bus).await;
        let u = user(80);
        let conv = app.conversation(&u).await;
        let b = app.signed_in("amy").await;
        let cursor = latest_event(&app).await;
        let mut sse = SseReader::open(&b, &format!("/live/sse?after={cursor}"), None).await;

        app.webhook(&body(vec![text(&u, "98001", "first live message")]))
            .await;
        let first = sse.until("first live message").await;
        let id = first.id.expect("every event carries its id");
        assert!(id > cursor);
        let (kind, conversation): (String, i64) =
            sqlx::query_as("SELECT kind, conversation_id FROM events WHERE id = ?")
                .bind(id)
                .fetch_one(app.pool())
                .await
                .unwrap();
        assert_eq!((kind.as_str(), conversation), ("message.new", conv));
        assert!(first.data.contains(&format!("beforeend:#thread-{conv}")));
        assert!(first.data.contains("afterbegin:#conversation-list"));
        drop(sse);

        // A reconnect with Last-Event-ID resumes after it: the first message is not replayed,
        // the one sent while disconnected is delivered.
        app.webhook(&body(vec![text(&u, "98002", "sent while away")]))
            .await;
        let mut sse = SseReader::open(&b, "/live/sse?after=0", Some(id)).await;
        let next = sse.next().await;
        assert!(next.id.unwrap() > id);
        let mut seen = vec![next];
        while !seen.iter().any(|e| e.data.contains("sent while away")) {
            seen.push(sse.next().await);
        }
        assert!(
            seen.iter().all(|e| !e.data.contains("first live message")),
            "no replay before the resume point"
        );
        let ids: Vec<i64> = seen.iter().map(|e| e.id.unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    }
);

both_buses!(
    long_poll_answers_after_the_cursor_and_resumes_from_the_next_one,
    |bus| async move {
        let app = TestApp::spawn(bus).await;
        let u = user(81);
        let conv = app.conversation(&u).await;
        let b = app.signed_in("amy").await;
        let c0 = latest_event(&app).await;

        app.webhook(&body(vec![text(&u, "98101", "poll one")]))
            .await;
        crate::helpers::eventually("stored", Duration::from_secs(10), || async {
            latest_event(&app).await > c0
        })
        .await;
        let poll = |after: i64| {
            let b = &b;
            async move {
                let r = b
                    .send(b.request(reqwest::Method::GET, &format!("/live/poll?after={after}")))
                    .await;
                assert_eq!(r.status(), 200);
                let next: i64 = r.headers()["x-live-cursor"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                (next, r.text().await.unwrap())
            }
        };
        let started = std::time::Instant::now();
        let (c1, first) = poll(c0).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "answers at once"
        );
        assert!(first.contains("poll one"), "{first}");
        assert!(first.contains(&format!("thread-{conv}")));
        assert!(c1 > c0);

        // Held until something arrives, then only what is after the cursor.
        let waiting = tokio::spawn({
            let url = format!("/live/poll?after={c1}");
            let r = b.request(reqwest::Method::GET, &url);
            async move { r.send().await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "the poll holds while nothing is new"
        );
        app.webhook(&body(vec![text(&u, "98102", "poll two")]))
            .await;
        let r = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the held poll answers when an event arrives")
            .unwrap();
        let c2: i64 = r.headers()["x-live-cursor"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let second = r.text().await.unwrap();
        assert!(second.contains("poll two"));
        assert!(!second.contains("poll one"), "nothing before the cursor");
        assert!(c2 > c1);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_live_connections_end_on_shutdown() {
    let app = TestApp::spawn(crate::helpers::Bus::Local).await;
    let b = app.signed_in("amy").await;
    let sse = b.send(b.request(reqwest::Method::GET, "/live/sse")).await;
    assert_eq!(sse.status(), 200);
    let mut sse = sse.bytes_stream();
    let poll = tokio::spawn(b.request(reqwest::Method::GET, "/live/poll").send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "the long-poll holds");

    app.state.workers.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = sse.next().await {}
    })
    .await
    .expect("the SSE stream ends on shutdown");
    let answered = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("the held long-poll answers on shutdown")
        .unwrap()
        .unwrap();
    assert_eq!(answered.status(), 200);
}

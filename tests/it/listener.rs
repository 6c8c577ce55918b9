//! The listener over raw sockets: a fresh `GET /live/sse` connection is answered by the
//! listener itself (chunked, `Connection: close`, the router's headers and sign-in rules);
//! every other connection reaches hyper unchanged, however its first bytes were split.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    helpers::{Browser, Bus, TestApp, eventually},
    line_events::{body, text, user},
};

/// A raw HTTP/1.1 client connection.
struct Raw {
    stream: TcpStream,
    read: Vec<u8>,
}

impl Raw {
    async fn connect(app: &TestApp) -> Self {
        Self {
            stream: TcpStream::connect(app.addr).await.expect("connect"),
            read: Vec::new(),
        }
    }

    /// Writes `pieces` one after another, pausing between them so each is its own segment.
    async fn send(&mut self, pieces: &[&str]) {
        for piece in pieces {
            self.stream.write_all(piece.as_bytes()).await.unwrap();
            self.stream.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// More bytes, or `false` at the end of the stream.
    async fn fill(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(15), self.stream.read(&mut buf))
            .await
            .expect("bytes within 15 s")
            .expect("read");
        self.read.extend_from_slice(&buf[..n]);
        n > 0
    }

    /// The response head: status and lower-cased headers.
    async fn head(&mut self) -> (u16, Vec<(String, String)>) {
        loop {
            if let Some(end) = find(&self.read, b"\r\n\r\n") {
                let head = String::from_utf8(self.read.drain(..end + 4).collect()).unwrap();
                let mut lines = head.split("\r\n");
                let status = lines.next().unwrap();
                assert!(status.starts_with("HTTP/1.1 "), "{status}");
                let code = status[9..12].parse().unwrap();
                let headers = lines
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        let (n, v) = l.split_once(':').expect("a header line");
                        (n.to_ascii_lowercase(), v.trim().to_owned())
                    })
                    .collect();
                return (code, headers);
            }
            assert!(self.fill().await, "closed before the response head");
        }
    }

    /// The next chunk of a chunked body (empty for the last one).
    async fn chunk(&mut self) -> Vec<u8> {
        loop {
            if let Some(end) = find(&self.read, b"\r\n") {
                let size = std::str::from_utf8(&self.read[..end]).unwrap();
                let size = usize::from_str_radix(size, 16).expect("a chunk size in hex");
                if self.read.len() >= end + 2 + size + 2 {
                    let chunk: Vec<u8> = self.read.drain(..end + 2 + size + 2).collect();
                    assert_eq!(&chunk[end + 2 + size..], b"\r\n", "a chunk ends with CRLF");
                    return chunk[end + 2..end + 2 + size].to_vec();
                }
            }
            assert!(self.fill().await, "closed inside the chunked body");
        }
    }

    /// Decoded body chunks until one contains `needle`.
    async fn chunks_until(&mut self, needle: &str) -> String {
        let mut seen = String::new();
        while !seen.contains(needle) {
            let chunk = self.chunk().await;
            assert!(!chunk.is_empty(), "the stream ended before {needle:?}");
            seen.push_str(&String::from_utf8(chunk).unwrap());
        }
        seen
    }

    /// Reads to the end of the stream (the server closed it).
    async fn read_to_close(&mut self) {
        while self.fill().await {}
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn cookie(b: &Browser) -> String {
    format!(
        "{}={}",
        linechat::http::SESSION_COOKIE,
        b.get_cookie().expect("signed in")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_sse_connection_is_streamed_chunked_and_closed_on_shutdown() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.signed_in("amy").await;
    let mut raw = Raw::connect(&app).await;
    // Split inside the request line and inside the headers: the listener waits for the rest.
    let request = format!(
        "Host: x\r\nAccept: text/event-stream\r\nCookie: {}\r\n\r\n",
        cookie(&b)
    );
    raw.send(&["GET /live/s", "se?after=0 HTTP/1.1\r\n", &request])
        .await;
    let (status, headers) = raw.head().await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("text/event-stream"));
    assert_eq!(header(&headers, "transfer-encoding"), Some("chunked"));
    assert_eq!(header(&headers, "connection"), Some("close"));
    assert_eq!(header(&headers, "content-length"), None);
    assert!(header(&headers, "date").is_some());
    // The router's layers ran: the security headers and the request id are there.
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    assert!(header(&headers, "x-request-id").is_some());

    let r = app
        .webhook(&body(vec![text(
            &user(41),
            "m-listen-1",
            "raw socket hello",
        )]))
        .await;
    assert_eq!(r.status(), 200);
    let events = raw.chunks_until("raw socket hello").await;
    assert!(events.contains("id: "), "{events}");
    assert!(events.contains("data: "), "{events}");

    app.state.workers.shutdown.cancel();
    loop {
        if raw.chunk().await.is_empty() {
            break;
        }
    }
    raw.read_to_close().await;
    assert!(raw.read.is_empty(), "nothing after the last chunk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_sse_connection_without_a_session_gets_the_routers_answer() {
    let app = TestApp::spawn(Bus::Local).await;
    // The same request through hyper (a pooled connection) gives the reference answer.
    let b = app.browser();
    let expected = b.send(b.request(reqwest::Method::GET, "/live/sse")).await;
    let expected_status = expected.status().as_u16();
    let expected_location = expected
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let expected_body = expected.bytes().await.unwrap();
    assert_ne!(expected_status, 200);

    let mut raw = Raw::connect(&app).await;
    raw.send(&["GET /live/sse HTTP/1.1\r\nHost: x\r\n\r\n"])
        .await;
    let (status, headers) = raw.head().await;
    assert_eq!(status, expected_status);
    assert_eq!(
        header(&headers, "location").map(str::to_owned),
        expected_location
    );
    assert_eq!(header(&headers, "connection"), Some("close"));
    let length: usize = header(&headers, "content-length")
        .expect("a body of known length says so")
        .parse()
        .unwrap();
    raw.read_to_close().await;
    assert_eq!(length, raw.read.len());
    assert_eq!(raw.read, expected_body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_connections_reach_hyper_however_their_first_bytes_are_split() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.signed_in("ben").await;

    // Split after two bytes, then a second request on the same (kept-alive) connection: a live
    // stream on a connection that carried a request is hyper's, and still works.
    let mut raw = Raw::connect(&app).await;
    raw.send(&["GE", "T /healthz HTTP/1.1\r\nHost: x\r\n\r\n"])
        .await;
    let (status, headers) = raw.head().await;
    assert_eq!(status, 200);
    let length: usize = header(&headers, "content-length").unwrap().parse().unwrap();
    while raw.read.len() < length {
        assert!(raw.fill().await);
    }
    raw.read.drain(..length);
    let request = format!(
        "GET /live/sse HTTP/1.1\r\nHost: x\r\nCookie: {}\r\n\r\n",
        cookie(&b)
    );
    raw.send(&[&request]).await;
    let (status, headers) = raw.head().await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("text/event-stream"));
    assert_eq!(header(&headers, "connection"), None, "hyper keeps it open");
    let r = app
        .webhook(&body(vec![text(&user(42), "m-listen-2", "via hyper")]))
        .await;
    assert_eq!(r.status(), 200);
    raw.chunks_until("via hyper").await;

    // Near misses of the live request line are routed as usual.
    for (request, expected) in [
        ("GET /live/ssex HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (
            "POST /live/sse HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            403,
        ),
        (
            "GET /live/sse HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab",
            401,
        ),
    ] {
        let mut raw = Raw::connect(&app).await;
        raw.send(&[request]).await;
        let (status, headers) = raw.head().await;
        assert_eq!(status, expected, "{request:?}");
        assert_eq!(
            header(&headers, "connection"),
            None,
            "{request:?} is hyper's"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_when_its_client_goes_away() {
    let app = TestApp::spawn(Bus::Local).await;
    let b = app.signed_in("cat").await;
    let tasks = || app.state.workers.tracker.len();
    eventually(
        "the background tasks settle",
        Duration::from_secs(10),
        || {
            let before = tasks();
            async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                before == tasks()
            }
        },
    )
    .await;
    let before = tasks();
    let mut raw = Raw::connect(&app).await;
    let request = format!(
        "GET /live/sse HTTP/1.1\r\nHost: x\r\nCookie: {}\r\n\r\n",
        cookie(&b)
    );
    raw.send(&[&request]).await;
    assert_eq!(raw.head().await.0, 200);
    assert_eq!(
        tasks(),
        before + 1,
        "the stream is a task of the listener's"
    );
    drop(raw);
    eventually(
        "the stream's task ends",
        Duration::from_secs(10),
        || async { tasks() == before },
    )
    .await;
}

//! The server's listener: every accepted connection is served by hyper (through
//! `axum::serve`) except one kind, a fresh connection whose first request is
//! `GET /live/sse`, which is answered here.
//!
//! Why: those are the desk's live streams, tens of thousands of them, each idle nearly all
//! the time. hyper keeps an 8 KiB read buffer and an 8 KiB write buffer for every connection
//! for as long as it lives, which made a held stream cost ~22 KB (docs/BENCHMARKS.md). Here
//! the request head is read into a buffer that is dropped once parsed (by `httparse`, the
//! parser hyper itself uses), the same router answers it (session, sign-in, `live.rs`), and
//! the response goes straight to the socket: its head once, then everything a wake-up brings
//! as one HTTP/1.1 chunk from a buffer freed after the write. Between events a stream holds
//! only its socket and the handler's small state.
//!
//! Such a response says `Connection: close`: the stream ends only when the desk goes away or
//! the process stops, so nothing is lost by not keeping the connection. Anything else — a
//! request line that is not `GET /live/sse`, a head that is malformed, too large or followed
//! by a body, HTTP/1.0, a connection that already carried a request — is hyper's, untouched:
//! the bytes read so far are put back in front of the stream (`Rewound`).

use std::{
    convert::Infallible,
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use axum::{
    Router,
    body::{Body, HttpBody},
    extract::ConnectInfo,
    http::{HeaderName, HeaderValue, Method, Request, Response, Uri, Version, header},
};
use bytes::{Buf, Bytes};
use futures::{FutureExt, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

/// The request line this listener answers itself, up to the path's end.
const LIVE_LINE: &[u8] = b"GET /live/sse";
/// Largest request head read here; a larger one (unusual cookies) is left to hyper.
const MAX_HEAD: usize = 16 * 1024;
/// Most headers parsed here (hyper allows 100; a browser's SSE request has about 15).
const MAX_HEADERS: usize = 64;
/// How long a connection may take to send its head before it is handed to hyper as it is.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes of ready events gathered into one write.
const MAX_WRITE: usize = 256 * 1024;

/// A connection for hyper, with the bytes already read from it put back in front.
pub struct Rewound {
    read: Bytes,
    stream: TcpStream,
}

/// The listener `axum::serve` takes: it yields the connections hyper is to serve.
pub struct Listener {
    connections: mpsc::Receiver<(Rewound, SocketAddr)>,
    local: SocketAddr,
}

impl Listener {
    /// Starts accepting on `tcp`. Live streams are answered by `router` here; the rest come
    /// out of `accept`. Accepting stops when `shutdown` is cancelled; the connections served
    /// here are tracked by `tracker`, so shutdown waits for their streams to end.
    pub fn start(
        tcp: TcpListener,
        router: Router,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        // A short queue: when hyper's side is slow to take connections, accepting slows too
        // and the kernel's backlog holds the rest.
        let (tx, connections) = mpsc::channel(256);
        let accepting = accept_loop(tcp, tx, router, shutdown, tracker.clone());
        tracker.spawn(accepting);
        Ok(Self { connections, local })
    }
}

impl axum::serve::Listener for Listener {
    type Io = Rewound;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Rewound, SocketAddr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The accept loop has stopped (shutdown): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    tcp: TcpListener,
    hyper: mpsc::Sender<(Rewound, SocketAddr)>,
    router: Router,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        // Each write is a whole answer or a whole batch of events: nothing to wait for.
        let _ = stream.set_nodelay(true);
        let connection = route(
            stream,
            peer,
            hyper.clone(),
            router.clone(),
            shutdown.clone(),
        );
        tracker.spawn(connection);
    }
}

/// As axum's own listener does: a connection that failed before it was accepted is nobody's
/// concern; anything else (out of file descriptors) is logged, and accepting pauses a moment
/// so some can close.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// What the first bytes of a connection said.
enum Sniffed {
    /// A complete `GET /live/sse` head, for this listener.
    Live(Box<Request<Body>>),
    /// Anything else, for hyper, with the bytes read so far.
    Other(Vec<u8>),
    /// Closed (or shutdown came) before anything worth serving arrived.
    Gone,
}

async fn route(
    mut stream: TcpStream,
    peer: SocketAddr,
    hyper: mpsc::Sender<(Rewound, SocketAddr)>,
    router: Router,
    shutdown: CancellationToken,
) {
    // Outside the timed read, so what a slow client sent before the timeout is not lost.
    let mut read = Vec::new();
    let sniffed = tokio::select! {
        _ = shutdown.cancelled() => Sniffed::Gone,
        sniffed = tokio::time::timeout(HEAD_TIMEOUT, sniff(&mut stream, &mut read)) => {
            match sniffed {
                Ok(sniffed) => sniffed,
                // A client slow to speak (a browser's preconnect): hyper's rules apply, as
                // they would have from the start, to the bytes it sent so far.
                Err(_) => Sniffed::Other(std::mem::take(&mut read)),
            }
        }
    };
    // The head is parsed (or handed on): its bytes are not kept for the stream's life.
    drop(read);
    match sniffed {
        Sniffed::Live(mut request) => {
            request.extensions_mut().insert(ConnectInfo(peer));
            serve_live(stream, *request, router).await;
        }
        Sniffed::Other(read) => {
            let rewound = Rewound {
                read: read.into(),
                stream,
            };
            // Fails only once the server has stopped taking connections.
            let _ = hyper.send((rewound, peer)).await;
        }
        Sniffed::Gone => {}
    }
}

/// Reads the first request's head into `read` as far as needed to tell whose connection this
/// is. The buffer is dropped as soon as the head is parsed; a browser's SSE head is well under
/// 2 KiB.
async fn sniff(stream: &mut TcpStream, read: &mut Vec<u8>) -> Sniffed {
    loop {
        read.reserve(2048);
        match stream.read_buf(read).await {
            Ok(0) | Err(_) if read.is_empty() => return Sniffed::Gone,
            // Closed mid-head or broken: hyper says what it makes of it.
            Ok(0) | Err(_) => return Sniffed::Other(std::mem::take(read)),
            Ok(_) => {}
        }
        if !could_be_live(read) {
            return Sniffed::Other(std::mem::take(read));
        }
        match parse_live_head(read) {
            Head::Complete(request) => return Sniffed::Live(request),
            Head::Partial if read.len() < MAX_HEAD => continue,
            Head::Partial | Head::NotOurs => return Sniffed::Other(std::mem::take(read)),
        }
    }
}

/// Whether the bytes read so far are, or may still become, `GET /live/sse` followed by the
/// end of the path or its query.
fn could_be_live(read: &[u8]) -> bool {
    let n = read.len().min(LIVE_LINE.len());
    read[..n] == LIVE_LINE[..n]
        && read
            .get(LIVE_LINE.len())
            .is_none_or(|b| matches!(b, b' ' | b'?'))
}

enum Head {
    Complete(Box<Request<Body>>),
    Partial,
    NotOurs,
}

/// Parses a `GET /live/sse` head into a request for the router, or says why it is not one
/// to serve here (hyper will answer it, including with its errors).
fn parse_live_head(read: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let length = match head.parse(read) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::NotOurs,
    };
    // Bytes after the head would be a body or a pipelined request: not a plain GET.
    if length != read.len() || head.method != Some("GET") || head.version != Some(1) {
        return Head::NotOurs;
    }
    let Some(uri) = head.path.and_then(|p| p.parse::<Uri>().ok()) else {
        return Head::NotOurs;
    };
    if uri.path() != "/live/sse" {
        return Head::NotOurs;
    }
    let mut request = Request::new(Body::empty());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    for h in head.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Head::NotOurs;
        };
        request.headers_mut().append(name, value);
    }
    let body_follows = request.headers().contains_key(header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if body_follows {
        return Head::NotOurs;
    }
    Head::Complete(Box::new(request))
}

/// Answers a live-stream request: the router's response, written by hand.
async fn serve_live(mut stream: TcpStream, request: Request<Body>, router: Router) {
    // Boxed, so the router's (large) future takes no room in this one while the stream lives.
    let response: Result<Response<Body>, Infallible> = Box::pin(router.oneshot(request)).await;
    let Ok(response) = response;
    let (parts, body) = response.into_parts();
    let length = body.size_hint().exact();
    let head = response_head(&parts, length);
    if stream.write_all(&head).await.is_err() {
        return;
    }
    drop(head);
    write_body(stream, body, length.is_none()).await;
}

/// The status line and headers. The body is framed by its length when the router knows it
/// (a redirect to sign-in, an error), else chunked; either way the connection closes after.
fn response_head(parts: &axum::http::response::Parts, length: Option<u64>) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(
        parts
            .status
            .canonical_reason()
            .unwrap_or("Unknown")
            .as_bytes(),
    );
    head.extend_from_slice(b"\r\n");
    let framing = [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
    ];
    for (name, value) in &parts.headers {
        if framing.contains(name) {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key(header::DATE) {
        head.extend_from_slice(b"date: ");
        head.extend_from_slice(httpdate::fmt_http_date(SystemTime::now()).as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    match length {
        Some(n) => head.extend_from_slice(format!("content-length: {n}\r\n").as_bytes()),
        None => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    head.extend_from_slice(b"connection: close\r\n\r\n");
    head
}

/// Writes the body as it comes, everything ready at once in one write, until it ends or the
/// client goes away; then closes the connection.
async fn write_body(mut stream: TcpStream, body: Body, chunked: bool) {
    let mut data = body.into_data_stream();
    let (mut reader, mut writer) = stream.split();
    // An SSE client sends nothing after its request: a read that returns means it closed the
    // connection (or broke the protocol); either way the stream is over.
    let mut probe = [0u8; 1];
    loop {
        let first = tokio::select! {
            next = data.next() => next,
            _ = reader.read(&mut probe) => return,
        };
        let first = match first {
            Some(Ok(first)) => first,
            // The body ended: the last chunk says so. (A body that failed gets no last chunk:
            // the client sees a broken stream, and an EventSource reconnects.)
            ended => {
                if ended.is_none() && chunked {
                    let _ = writer.write_all(b"0\r\n\r\n").await;
                }
                let _ = writer.shutdown().await;
                return;
            }
        };
        let mut ready = vec![first];
        let mut size = ready[0].len();
        while size < MAX_WRITE {
            match data.next().now_or_never() {
                Some(Some(Ok(more))) => {
                    size += more.len();
                    ready.push(more);
                }
                _ => break,
            }
        }
        if size == 0 {
            continue;
        }
        let out = frame(&ready, size, chunked);
        drop(ready);
        if writer.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// The pieces as one write: one HTTP/1.1 chunk, or the bytes as they are.
fn frame(pieces: &[Bytes], size: usize, chunked: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 16);
    if chunked {
        out.extend_from_slice(format!("{size:x}\r\n").as_bytes());
    }
    for piece in pieces {
        out.extend_from_slice(piece);
    }
    if chunked {
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl AsyncRead for Rewound {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read.has_remaining() {
            let n = this.read.remaining().min(buf.remaining());
            buf.put_slice(&this.read[..n]);
            this.read.advance(n);
            if !this.read.has_remaining() {
                // Let the allocation go rather than keep an empty view of it.
                this.read = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewound {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(head: &str) -> Option<Request<Body>> {
        match parse_live_head(head.as_bytes()) {
            Head::Complete(r) => Some(*r),
            _ => None,
        }
    }

    #[test]
    fn a_plain_sse_get_is_ours_with_its_headers() {
        let r = parsed(
            "GET /live/sse?after=7 HTTP/1.1\r\nHost: x\r\nCookie: a=b\r\nLast-Event-ID: 9\r\n\r\n",
        )
        .expect("ours");
        assert_eq!(r.uri().query(), Some("after=7"));
        assert_eq!(r.headers()["cookie"], "a=b");
        assert_eq!(r.headers()["last-event-id"], "9");
    }

    #[test]
    fn anything_unusual_is_left_to_hyper() {
        for head in [
            "GET /live/sse HTTP/1.0\r\nHost: x\r\n\r\n",
            "GET /live/sse/more HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /live/sse HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
            "GET /live/sse HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /live/sse HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            "GET /live/sse HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ] {
            assert!(
                matches!(parse_live_head(head.as_bytes()), Head::NotOurs),
                "{head:?}"
            );
        }
        assert!(matches!(
            parse_live_head(b"GET /live/sse HTTP/1.1\r\nHost: x\r\n"),
            Head::Partial
        ));
    }

    #[test]
    fn only_the_live_request_line_is_kept_for_a_full_head() {
        for ours in [
            "G",
            "GET /live/s",
            "GET /live/sse",
            "GET /live/sse ",
            "GET /live/sse?a",
        ] {
            assert!(could_be_live(ours.as_bytes()), "{ours:?}");
        }
        for other in [
            "P",
            "GET / ",
            "GET /live/poll",
            "GET /live/ssex",
            "get /live/sse ",
        ] {
            assert!(!could_be_live(other.as_bytes()), "{other:?}");
        }
    }

    #[test]
    fn chunks_are_framed_by_their_length_in_hex() {
        let pieces = [
            Bytes::from_static(b"id: 1\n"),
            Bytes::from_static(b"data: x\n\n"),
        ];
        assert_eq!(frame(&pieces, 15, true), b"f\r\nid: 1\ndata: x\n\n\r\n");
        assert_eq!(frame(&pieces, 15, false), b"id: 1\ndata: x\n\n");
    }
}

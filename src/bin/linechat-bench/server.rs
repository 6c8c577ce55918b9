//! The linechat under test: a child process with a fresh data dir, one admin agent, and a
//! fake LINE; plus signing in the way a browser does.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::Context;
use linechat::line::fake::FakeLine;

use crate::Args;

pub const SECRET: &str = "bench-channel-secret";
pub const TOKEN: &str = "bench-access-token";
pub const AGENT: &str = "bench";
const PASSWORD: &str = "bench-password-0123";

/// The ceiling on LINE send calls per second the server is started with: LINE's own limit
/// for a channel (linechat's default, 1,500, leaves headroom for other senders).
pub const DELIVERY_RATE: u64 = 2000;

pub struct Server {
    child: Child,
    exe: PathBuf,
    env: Vec<(String, String)>,
    pub dir: PathBuf,
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
}

/// A signed-in desk session.
#[derive(Clone, Debug)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

impl Server {
    /// Starts linechat against a plain fake LINE.
    pub async fn start(args: &Args) -> anyhow::Result<Self> {
        let fake = FakeLine::new(TOKEN);
        let line_base = fake.spawn().await?;
        Self::start_with(args, fake, &line_base).await
    }

    /// Starts linechat against the fake LINE served at `line_base` (possibly behind a layer).
    pub async fn start_with(args: &Args, _fake: FakeLine, line_base: &str) -> anyhow::Result<Self> {
        Self::start_on(args.server.as_deref(), args.redis_url.as_deref(), line_base).await
    }

    /// Starts `exe` (default: the `linechat` next to this binary) with a fresh data dir.
    pub async fn start_on(
        exe: Option<&std::path::Path>,
        redis_url: Option<&str>,
        line_base: &str,
    ) -> anyhow::Result<Self> {
        raise_fd_limit();
        let dir =
            std::env::temp_dir().join(format!("linechat-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let exe = match exe {
            Some(path) => path.to_owned(),
            None => std::env::current_exe()?.with_file_name("linechat"),
        };
        let mut env: Vec<(String, String)> = [
            ("LINECHAT_ADDR", addr.to_string()),
            ("LINECHAT_DATA_DIR", dir.display().to_string()),
            ("LINE_CHANNEL_SECRET", SECRET.to_owned()),
            ("LINE_CHANNEL_ACCESS_TOKEN", TOKEN.to_owned()),
            ("LINE_API_BASE", line_base.to_owned()),
            ("LINE_DATA_API_BASE", line_base.to_owned()),
            ("LINECHAT_WELCOME_MESSAGE", String::new()),
            ("RUST_LOG", "warn".to_owned()),
            ("LINECHAT_DELIVERY_RATE", DELIVERY_RATE.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(url) = redis_url {
            env.push(("REDIS_URL".into(), url.to_owned()));
            env.push((
                "LINECHAT_REDIS_PREFIX".into(),
                format!("bench-{}", uuid::Uuid::new_v4().simple()),
            ));
        }
        let mut add = Command::new(&exe);
        add.env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["agent", "add", AGENT, "--admin", "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        let mut adding = add.spawn().context("start `linechat agent add`")?;
        {
            use std::io::Write;
            let mut stdin = adding.stdin.take().context("agent add stdin")?;
            writeln!(stdin, "{PASSWORD}")?;
        }
        anyhow::ensure!(adding.wait()?.success(), "`linechat agent add` failed");

        let child = spawn_serve(&exe, &env)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(1024)
            .build()?;
        let server = Server {
            child,
            exe,
            env,
            dir,
            addr,
            base: format!("http://{addr}"),
            http,
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    /// SIGKILL: no shutdown, no flush, exactly like a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same server again (same data dir, port and settings) after a `kill`.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.child = spawn_serve(&self.exe, &self.env)?;
        self.wait_healthy().await
    }

    /// The store's SQLite file.
    pub fn database(&self) -> PathBuf {
        self.dir.join("linechat.db")
    }

    async fn wait_healthy(&self) -> anyhow::Result<()> {
        for _ in 0..600 {
            if self
                .http
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("linechat did not become healthy")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs the bench agent in through the login form, as a browser would.
    pub async fn sign_in(&self) -> anyhow::Result<Session> {
        let page = self.http.get(self.url("/login")).send().await?;
        let cookie = session_cookie(&page).context("the login page sets a session cookie")?;
        let html = page.text().await?;
        let csrf = input_value(&html, "csrf").context("the login form has a csrf field")?;
        let r = self
            .http
            .post(self.url("/login"))
            .header(
                "cookie",
                format!("{}={cookie}", linechat::http::SESSION_COOKIE),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("csrf", &csrf),
                ("username", AGENT),
                ("password", PASSWORD),
            ]))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 303, "sign-in answered {}", r.status());
        let cookie = session_cookie(&r).context("sign-in sets the session cookie")?;
        // The signed-in page carries the rotated CSRF token.
        let inbox = self
            .http
            .get(self.url("/"))
            .header(
                "cookie",
                format!("{}={cookie}", linechat::http::SESSION_COOKIE),
            )
            .send()
            .await?
            .text()
            .await?;
        let csrf = csrf_header(&inbox).context("the inbox carries a CSRF token")?;
        Ok(Session { cookie, csrf })
    }

    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_ticks(self.child.id()).map(|t| t as f64 / 100.0)
    }

    pub fn rss_mb(&self) -> Option<f64> {
        rss_kb(self.child.id()).map(|k| k as f64 / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An `application/x-www-form-urlencoded` body.
pub fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).expect("string pairs encode")
}

/// Serves a (fake LINE) router on 127.0.0.1:0; returns its base URL.
pub async fn serve_line(router: axum::Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(base)
}

/// The ids of the first `want` conversations, from the inbox page's links, once they exist.
pub async fn conversation_ids(
    http: &reqwest::Client,
    base: &str,
    session: &Session,
    want: usize,
) -> anyhow::Result<Vec<i64>> {
    let cookie = format!("{}={}", linechat::http::SESSION_COOKIE, session.cookie);
    for _ in 0..200 {
        let html = http
            .get(format!("{base}/"))
            .header("cookie", &cookie)
            .send()
            .await?
            .text()
            .await?;
        let mut ids: Vec<i64> = html
            .split("/conversations/")
            .skip(1)
            .filter_map(|s| s[..s.find(|c: char| !c.is_ascii_digit())?].parse().ok())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() >= want {
            return Ok(ids);
        }
        if ids.len() >= LIST_SHOWS {
            // The list shows the most recently active conversations only; the older ones are
            // found the way a link would open them (once they all exist).
            let all = older_conversations(http, base, &cookie, ids, want).await?;
            if all.len() >= want {
                return Ok(all);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!("the conversations did not appear in the inbox")
}

/// Conversations the inbox list shows at most.
const LIST_SHOWS: usize = 100;

/// `ids` plus conversations not listed (ids below the newest listed) that open, until there
/// are `want`.
async fn older_conversations(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    mut ids: Vec<i64>,
    want: usize,
) -> anyhow::Result<Vec<i64>> {
    let listed: std::collections::HashSet<i64> = ids.iter().copied().collect();
    let newest = ids.last().copied().unwrap_or(0);
    for n in (1..newest).rev().filter(|n| !listed.contains(n)) {
        if ids.len() >= want {
            break;
        }
        let r = http
            .get(format!("{base}/conversations/{n}"))
            .header("cookie", cookie)
            .header("hx-request", "true")
            .send()
            .await?;
        if r.status().is_success() {
            ids.push(n);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

fn spawn_serve(exe: &std::path::Path, env: &[(String, String)]) -> anyhow::Result<Child> {
    Command::new(exe)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("start `linechat serve`")
}

fn session_cookie(r: &reqwest::Response) -> Option<String> {
    let prefix = format!("{}=", linechat::http::SESSION_COOKIE);
    r.headers().get_all("set-cookie").iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let pair = v.split(';').next()?;
        pair.strip_prefix(&prefix).map(str::to_owned)
    })
}

/// The `value` of `<input name="NAME" … value="…">`.
fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let tag = &html[start..start + html[start..].find('>')?];
    let v = tag.split("value=\"").nth(1)?;
    Some(v[..v.find('"')?].to_owned())
}

/// The token in the page's `hx-headers` (`{"x-csrf-token":"…"}`, HTML-escaped).
fn csrf_header(html: &str) -> Option<String> {
    let at = html.find("x-csrf-token")?;
    let rest = &html[at..];
    let rest = &rest[rest.find(':')? + 1..];
    let rest = rest
        .strip_prefix("&quot;")
        .or_else(|| rest.strip_prefix('"'))?;
    let end = rest.find(|c: char| !c.is_ascii_alphanumeric())?;
    Some(rest[..end].to_owned())
}

/// Lets this process (and the server it starts, which inherits it) hold tens of thousands of
/// sockets.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max.min(1 << 20);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// The open-file limit this process (and the server it starts) now has.
pub fn fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid pointer to a local struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        0
    }
}

/// utime + stime of a process, in clock ticks (100 Hz on Linux).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

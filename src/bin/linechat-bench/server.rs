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

pub struct Server {
    child: Child,
    dir: PathBuf,
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
        raise_fd_limit();
        let dir =
            std::env::temp_dir().join(format!("linechat-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let exe = match &args.server {
            Some(path) => path.clone(),
            None => std::env::current_exe()?.with_file_name("linechat"),
        };
        let env = |cmd: &mut Command| {
            cmd.env_clear()
                .env("LINECHAT_ADDR", addr.to_string())
                .env("LINECHAT_DATA_DIR", &dir)
                .env("LINE_CHANNEL_SECRET", SECRET)
                .env("LINE_CHANNEL_ACCESS_TOKEN", TOKEN)
                .env("LINE_API_BASE", line_base)
                .env("LINE_DATA_API_BASE", line_base)
                .env("LINECHAT_WELCOME_MESSAGE", "")
                .env("RUST_LOG", "warn");
            if let Some(url) = &args.redis_url {
                cmd.env("REDIS_URL", url).env(
                    "LINECHAT_REDIS_PREFIX",
                    format!("bench-{}", uuid::Uuid::new_v4().simple()),
                );
            }
        };
        let mut add = Command::new(&exe);
        env(&mut add);
        add.args(["agent", "add", AGENT, "--admin", "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        let mut adding = add.spawn().context("start `linechat agent add`")?;
        {
            use std::io::Write;
            let mut stdin = adding.stdin.take().context("agent add stdin")?;
            writeln!(stdin, "{PASSWORD}")?;
        }
        anyhow::ensure!(adding.wait()?.success(), "`linechat agent add` failed");

        let mut serve = Command::new(&exe);
        env(&mut serve);
        serve
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = serve.spawn().context("start `linechat serve`")?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(1024)
            .build()?;
        let server = Server {
            child,
            dir,
            addr,
            base: format!("http://{addr}"),
            http,
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    async fn wait_healthy(&self) -> anyhow::Result<()> {
        for _ in 0..400 {
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

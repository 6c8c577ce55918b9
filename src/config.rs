//! Configuration: read once at start-up from flags and the environment (each variable of
//! ARCHITECTURE.md's contract is also a `serve` flag), validated, then passed down as `Config`.
//! Nothing else in the crate reads the environment.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};

/// The greeting sent on `follow` when `LINECHAT_WELCOME_MESSAGE` is not set.
pub const DEFAULT_WELCOME: &str = "Thanks for adding us! Send us a message here and one of our team will reply soon. \
     感謝您加入好友！有任何問題請直接留言，我們的客服人員會盡快回覆您。";

/// Where the store lives; shared by `serve`, `migrate` and `agent add`.
#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// Directory for the SQLite file and downloaded media.
    #[arg(long, env = "LINECHAT_DATA_DIR", default_value = "./linechat-data")]
    pub data_dir: PathBuf,
    /// `sqlite://…` (default: `linechat.db` in the data directory).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// Flags of `linechat serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Listen address.
    #[arg(long, env = "LINECHAT_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// `redis://…`; unset = the embedded in-process bus.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// The channel secret (verifies webhook signatures). Unset with the token = sandbox mode.
    #[arg(long, env = "LINE_CHANNEL_SECRET", hide_env_values = true)]
    pub line_channel_secret: Option<String>,
    /// The channel access token (bearer for the Messaging API).
    #[arg(long, env = "LINE_CHANNEL_ACCESS_TOKEN", hide_env_values = true)]
    pub line_channel_access_token: Option<String>,
    #[arg(long, env = "LINE_API_BASE", default_value = "https://api.line.me")]
    pub line_api_base: String,
    #[arg(
        long,
        env = "LINE_DATA_API_BASE",
        default_value = "https://api-data.line.me"
    )]
    pub line_data_api_base: String,
    /// Sent on follow; an empty value turns it off.
    #[arg(long, env = "LINECHAT_WELCOME_MESSAGE", default_value = DEFAULT_WELCOME)]
    pub welcome_message: String,
    #[arg(
        long,
        env = "LINECHAT_LOG_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    pub log_format: LogFormat,
    /// Prefix of every Redis key linechat uses (several deployments can share one Redis).
    #[arg(long, env = "LINECHAT_REDIS_PREFIX", default_value = "linechat")]
    pub redis_prefix: String,
    /// Most deliveries in flight at once.
    #[arg(long, env = "LINECHAT_DELIVERY_CONCURRENCY", default_value_t = 64)]
    pub delivery_concurrency: usize,
    /// Ceiling on requests per second to LINE's send endpoints (LINE allows 2,000/s).
    #[arg(long, env = "LINECHAT_DELIVERY_RATE", default_value_t = 1500)]
    pub delivery_rate: u32,
    /// Bearer token that `GET /metrics` requires; unset = /metrics is off (404).
    #[arg(long, env = "LINECHAT_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Mark the session cookie `Secure` (HTTPS only). Default: on, unless the listen address
    /// is loopback (a local run over plain http, or behind a TLS proxy on the same host).
    #[arg(long, env = "LINECHAT_SECURE_COOKIES")]
    pub secure_cookies: Option<bool>,
    /// The static files of the desk (vendored htmx, CSS, JS). Default: the source tree's
    /// `assets/`; a release ships the directory and points this at it.
    #[arg(long, env = "LINECHAT_ASSETS_DIR", default_value = DEFAULT_ASSETS_DIR)]
    pub assets_dir: PathBuf,
    /// Reverse proxies whose `X-Forwarded-For` is believed (comma-separated addresses or CIDR
    /// networks); the client address for sign-in throttling is the rightmost hop not listed.
    #[arg(
        long,
        env = "LINECHAT_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = crate::http::client_addr::parse_proxy
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The desk's public https base URL (e.g. `https://chat.example.com`), used to show the
    /// webhook URL to paste into LINE's console; unset = derived from the request's Host.
    #[arg(long, env = "LINECHAT_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// `assets/` of the source tree this binary was built from.
pub const DEFAULT_ASSETS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets");

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How linechat talks to LINE.
#[derive(Clone, Debug)]
pub enum LineMode {
    /// Real credentials: the Messaging API at the configured bases.
    Live {
        channel_secret: Secret,
        access_token: Secret,
    },
    /// No credentials: an in-process fake LINE takes the outgoing calls, and the secret is
    /// made up at start-up so the customer simulator can sign its webhooks.
    Sandbox,
}

/// Retry policy of the delivery worker. Bounded in attempts and in age: LINE remembers a retry
/// key for 24 h, so a message is never retried anywhere near that old.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub max_age: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            max_age: Duration::from_secs(60 * 60),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(5 * 60),
        }
    }
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub redis_url: Option<Secret>,
    pub line: LineMode,
    pub line_api_base: String,
    pub line_data_api_base: String,
    pub welcome_message: String,
    pub log_format: LogFormat,
    pub delivery_concurrency: usize,
    pub delivery_rate: u32,
    pub retry: RetryPolicy,
    /// Key prefix for everything linechat keeps in Redis (tests use a unique one each).
    pub redis_prefix: String,
    /// How often the sweeper re-queues work the bus lost.
    pub sweep_interval: Duration,
    /// How long a pending inbox row or due outgoing message waits before the sweeper assumes
    /// its queue entry was lost.
    pub sweep_grace: Duration,
    /// How long a LINE call may take before it counts as a timeout.
    pub line_timeout: Duration,
    /// Whether the session cookie is `Secure`.
    pub secure_cookies: bool,
    /// The bearer token `/metrics` requires (`None`: metrics are not served).
    pub metrics_token: Option<Secret>,
    /// A session ends after this long without a request.
    pub session_idle: Duration,
    /// Served at `/assets`.
    pub assets_dir: PathBuf,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The desk's public base URL, without a trailing slash (`None`: use the Host header).
    pub public_url: Option<String>,
}

/// Default idle expiry of a session: a working day.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 60 * 60);

/// A start-up problem, shown to the operator as one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("LINECHAT_ADDR: `{0}` is not a socket address like 127.0.0.1:8080")]
    Addr(String),
    #[error("DATABASE_URL: only sqlite:// URLs are supported in this version (got `{0}`)")]
    DatabaseScheme(String),
    #[error("REDIS_URL: {0}")]
    RedisUrl(String),
    #[error(
        "LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN go together: set both (live) or neither (sandbox)"
    )]
    HalfCredentials,
    #[error("{name}: `{value}` is not an http(s) URL")]
    BaseUrl { name: &'static str, value: String },
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("LINECHAT_WELCOME_MESSAGE: {0}")]
    Welcome(String),
}

impl Config {
    pub fn from_args(args: ServeArgs) -> Result<Self, ConfigError> {
        let addr = args
            .addr
            .parse()
            .map_err(|_| ConfigError::Addr(args.addr.clone()))?;
        let database_url = database_url(&args.store)?;
        let redis_url = match args.redis_url.filter(|u| !u.is_empty()) {
            Some(url) => {
                // Parse now so a typo stops start-up instead of failing on first use.
                redis::Client::open(url.as_str())
                    .map_err(|e| ConfigError::RedisUrl(e.to_string()))?;
                Some(Secret::new(url))
            }
            None => None,
        };
        let line = match (
            args.line_channel_secret.filter(|s| !s.is_empty()),
            args.line_channel_access_token.filter(|s| !s.is_empty()),
        ) {
            (Some(secret), Some(token)) => LineMode::Live {
                channel_secret: Secret::new(secret),
                access_token: Secret::new(token),
            },
            (None, None) => LineMode::Sandbox,
            _ => return Err(ConfigError::HalfCredentials),
        };
        check_base("LINE_API_BASE", &args.line_api_base)?;
        check_base("LINE_DATA_API_BASE", &args.line_data_api_base)?;
        let public_url = args.public_url.filter(|u| !u.is_empty());
        if let Some(url) = &public_url {
            check_base("LINECHAT_PUBLIC_URL", url)?;
        }
        if let Err(e) = crate::domain::OutgoingText::parse(&args.welcome_message)
            && !args.welcome_message.is_empty()
        {
            return Err(ConfigError::Welcome(e.to_string()));
        }
        if args.delivery_concurrency == 0 {
            return Err(ConfigError::Zero("LINECHAT_DELIVERY_CONCURRENCY"));
        }
        if args.delivery_rate == 0 {
            return Err(ConfigError::Zero("LINECHAT_DELIVERY_RATE"));
        }
        Ok(Self {
            addr,
            data_dir: args.store.data_dir,
            database_url,
            redis_url,
            line,
            line_api_base: args.line_api_base.trim_end_matches('/').to_owned(),
            line_data_api_base: args.line_data_api_base.trim_end_matches('/').to_owned(),
            welcome_message: args.welcome_message,
            log_format: args.log_format,
            delivery_concurrency: args.delivery_concurrency,
            delivery_rate: args.delivery_rate,
            retry: RetryPolicy::default(),
            redis_prefix: args.redis_prefix,
            sweep_interval: Duration::from_secs(1),
            sweep_grace: Duration::from_secs(5),
            line_timeout: Duration::from_secs(10),
            secure_cookies: args
                .secure_cookies
                .unwrap_or(!std::net::SocketAddr::ip(&addr).is_loopback()),
            session_idle: SESSION_IDLE,
            metrics_token: args
                .metrics_token
                .filter(|t| !t.is_empty())
                .map(Secret::new),
            assets_dir: args.assets_dir,
            trusted_proxies: args.trusted_proxies,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
        })
    }

    /// A configuration for tests: live mode against `line_base` (a fake LINE), a store in
    /// `data_dir`, fast sweeps and retries.
    pub fn for_test(data_dir: PathBuf, line_base: &str, redis_url: Option<&str>) -> Self {
        Self {
            addr: "127.0.0.1:0".parse().expect("static address"),
            database_url: sqlite_url(&data_dir),
            data_dir,
            redis_url: redis_url.map(Secret::new),
            line: LineMode::Live {
                channel_secret: Secret::new("test-channel-secret"),
                access_token: Secret::new("test-access-token"),
            },
            line_api_base: line_base.to_owned(),
            line_data_api_base: line_base.to_owned(),
            welcome_message: DEFAULT_WELCOME.to_owned(),
            log_format: LogFormat::Pretty,
            delivery_concurrency: 16,
            delivery_rate: 1500,
            retry: RetryPolicy {
                max_attempts: 6,
                max_age: Duration::from_secs(60),
                base_delay: Duration::from_millis(50),
                max_delay: Duration::from_secs(2),
            },
            redis_prefix: format!("linechat-test-{}", uuid::Uuid::new_v4().simple()),
            sweep_interval: Duration::from_millis(200),
            sweep_grace: Duration::from_millis(500),
            line_timeout: Duration::from_secs(2),
            // Tests speak plain http.
            secure_cookies: false,
            metrics_token: Some(Secret::new("test-metrics-token")),
            session_idle: SESSION_IDLE,
            assets_dir: PathBuf::from(DEFAULT_ASSETS_DIR),
            trusted_proxies: Vec::new(),
            public_url: None,
        }
    }
}

/// The store URL for `migrate` and `agent add`, which need no other setting.
pub fn database_url(store: &StoreArgs) -> Result<String, ConfigError> {
    match store.database_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) if url.starts_with("sqlite:") => Ok(url.to_owned()),
        Some(url) => Err(ConfigError::DatabaseScheme(
            url.split(':').next().unwrap_or("").to_owned(),
        )),
        None => Ok(sqlite_url(&store.data_dir)),
    }
}

fn sqlite_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}", data_dir.join("linechat.db").display())
}

fn check_base(name: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(())
    } else {
        Err(ConfigError::BaseUrl {
            name,
            value: value.to_owned(),
        })
    }
}

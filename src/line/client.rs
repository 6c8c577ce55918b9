//! The Messaging API client (reqwest), for the endpoints `LINE_API_NOTES.md` §6 lists.
//!
//! It makes one attempt per call and classifies the answer; retrying is the delivery
//! worker's decision, because only it knows the retry key and the message's age. Every call
//! logs LINE's `x-line-request-id` (LINE support asks for it) and never the token or a body.

use std::{path::Path, time::Duration};

use anyhow::Context;
use futures::StreamExt;
use reqwest::{StatusCode, header::HeaderMap};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::{config::Secret, store::contacts::Profile};

/// Why a call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// LINE answered with an error status.
    #[error("LINE answered {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
        request_id: Option<String>,
    },
    /// No answer in time: LINE may or may not have acted on the request.
    #[error("LINE did not answer in time")]
    Timeout,
    /// The request did not get through (connection refused, reset, DNS...).
    #[error("could not reach LINE: {0}")]
    Transport(String),
}

impl LineError {
    /// 429, 5xx, timeouts and transport errors are worth another try; other 4xx are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            LineError::Status { status, .. } => *status == 429 || *status >= 500,
            LineError::Timeout | LineError::Transport(_) => true,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            LineError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LineError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            LineError::Timeout
        } else {
            // Without the URL: it is ours, and the error is shown to agents.
            LineError::Transport(e.without_url().to_string())
        }
    }
}

/// A message LINE accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// LINE's ids of the sent messages, in order.
    pub message_ids: Vec<String>,
    /// True when LINE answered 409 for a retry key it had already accepted: sent before.
    pub already_accepted: bool,
}

/// The answer of the content endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// 202: LINE is still preparing it (large video/audio); ask again later.
    NotReady,
    /// Saved to the given path.
    Saved { mime: String, size: u64 },
}

#[derive(Deserialize)]
struct SentBody {
    #[serde(default, rename = "sentMessages")]
    sent_messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileBody {
    display_name: String,
    picture_url: Option<String>,
    status_message: Option<String>,
    language: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

/// Cheap to clone (reqwest's client is a handle).
#[derive(Clone)]
pub struct LineClient {
    http: reqwest::Client,
    api_base: String,
    data_base: String,
    token: Secret,
}

impl LineClient {
    pub fn new(
        api_base: &str,
        data_base: &str,
        token: Secret,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .user_agent(concat!("linechat/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the LINE HTTP client")?;
        Ok(Self {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            data_base: data_base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Push with a retry key; a 409 for an already accepted key counts as sent.
    pub async fn push(
        &self,
        to: &str,
        messages: &[Value],
        retry_key: &str,
    ) -> Result<Sent, LineError> {
        let body = json!({ "to": to, "messages": messages });
        let response = self
            .post(
                &self.api_base,
                "/v2/bot/message/push",
                &body,
                Some(retry_key),
            )
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(LineError::from_reqwest)?;
        // 409 on push only ever means "this retry key was already accepted": it was sent.
        if status.is_success() || status == StatusCode::CONFLICT {
            let parsed: SentBody = serde_json::from_str(&text).unwrap_or(SentBody {
                sent_messages: Vec::new(),
            });
            return Ok(Sent {
                message_ids: parsed.sent_messages.into_iter().map(|m| m.id).collect(),
                already_accepted: status == StatusCode::CONFLICT,
            });
        }
        Err(status_error(status, &headers, &text))
    }

    /// Reply with a one-use token (no retry key: LINE refuses one on reply).
    pub async fn reply(&self, reply_token: &str, messages: &[Value]) -> Result<Sent, LineError> {
        let body = json!({ "replyToken": reply_token, "messages": messages });
        let response = self
            .post(&self.api_base, "/v2/bot/message/reply", &body, None)
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(LineError::from_reqwest)?;
        if status.is_success() {
            let parsed: SentBody = serde_json::from_str(&text).unwrap_or(SentBody {
                sent_messages: Vec::new(),
            });
            return Ok(Sent {
                message_ids: parsed.sent_messages.into_iter().map(|m| m.id).collect(),
                already_accepted: false,
            });
        }
        Err(status_error(status, &headers, &text))
    }

    /// A user's profile (`None` when LINE has none to give: not a friend, blocked...).
    pub async fn profile(&self, user_id: &str) -> Result<Option<Profile>, LineError> {
        self.get_profile(&format!("/v2/bot/profile/{}", path_segment(user_id)))
            .await
    }

    /// A group or room member's profile.
    pub async fn member_profile(
        &self,
        chat_kind: &str,
        chat_id: &str,
        user_id: &str,
    ) -> Result<Option<Profile>, LineError> {
        let path = format!(
            "/v2/bot/{}/{}/member/{}",
            if chat_kind == "room" { "room" } else { "group" },
            path_segment(chat_id),
            path_segment(user_id)
        );
        self.get_profile(&path).await
    }

    /// A group's name and picture.
    pub async fn group_summary(&self, group_id: &str) -> Result<Option<Profile>, LineError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Summary {
            group_name: String,
            picture_url: Option<String>,
        }
        let path = format!("/v2/bot/group/{}/summary", path_segment(group_id));
        let response = self.get(&self.api_base, &path).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let summary: Summary = response.json().await.map_err(LineError::from_reqwest)?;
                Ok(Some(Profile {
                    display_name: summary.group_name,
                    picture_url: summary.picture_url,
                    status_message: None,
                    language: None,
                }))
            }
            s => Err(error_from(s, response).await),
        }
    }

    /// Downloads a message's content from the data API into `dest` (through a temporary
    /// file, so a half-downloaded file is never taken for a whole one).
    pub async fn content_to_file(
        &self,
        message_id: &str,
        dest: &Path,
    ) -> Result<Content, LineError> {
        let path = format!("/v2/bot/message/{}/content", path_segment(message_id));
        let response = self.get(&self.data_base, &path).await?;
        let status = response.status();
        if status == StatusCode::ACCEPTED {
            return Ok(Content::NotReady);
        }
        if !status.is_success() {
            return Err(error_from(status, response).await);
        }
        let mime = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let tmp = dest.with_extension("part");
        let size = write_stream(response, &tmp)
            .await
            .map_err(|e| LineError::Transport(format!("saving content: {e:#}")))?;
        tokio::fs::rename(&tmp, dest)
            .await
            .map_err(|e| LineError::Transport(format!("saving content: {e}")))?;
        Ok(Content::Saved { mime, size })
    }

    /// Shows the loading animation in a 1:1 chat.
    pub async fn start_loading(&self, user_id: &str, seconds: u32) -> Result<(), LineError> {
        let body = json!({ "chatId": user_id, "loadingSeconds": seconds });
        self.expect_success(
            self.post(&self.api_base, "/v2/bot/chat/loading/start", &body, None)
                .await?,
        )
        .await
    }

    /// Marks the customer's messages up to this token as read.
    pub async fn mark_as_read(&self, token: &str) -> Result<(), LineError> {
        let body = json!({ "markAsReadToken": token });
        self.expect_success(
            self.post(&self.api_base, "/v2/bot/chat/markAsRead", &body, None)
                .await?,
        )
        .await
    }

    async fn get_profile(&self, path: &str) -> Result<Option<Profile>, LineError> {
        let response = self.get(&self.api_base, path).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let p: ProfileBody = response.json().await.map_err(LineError::from_reqwest)?;
                Ok(Some(Profile {
                    display_name: p.display_name,
                    picture_url: p.picture_url,
                    status_message: p.status_message,
                    language: p.language,
                }))
            }
            s => Err(error_from(s, response).await),
        }
    }

    async fn expect_success(&self, response: reqwest::Response) -> Result<(), LineError> {
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(error_from(status, response).await)
        }
    }

    async fn post(
        &self,
        base: &str,
        path: &str,
        body: &Value,
        retry_key: Option<&str>,
    ) -> Result<reqwest::Response, LineError> {
        let mut request = self
            .http
            .post(format!("{base}{path}"))
            .bearer_auth(self.token.expose())
            .json(body);
        if let Some(key) = retry_key {
            request = request.header("X-Line-Retry-Key", key);
        }
        let started = std::time::Instant::now();
        let result = request.send().await;
        log_call("POST", path, &result, started);
        result.map_err(LineError::from_reqwest)
    }

    async fn get(&self, base: &str, path: &str) -> Result<reqwest::Response, LineError> {
        let started = std::time::Instant::now();
        let result = self
            .http
            .get(format!("{base}{path}"))
            .bearer_auth(self.token.expose())
            .send()
            .await;
        log_call("GET", path, &result, started);
        result.map_err(LineError::from_reqwest)
    }
}

fn log_call(
    method: &str,
    path: &str,
    result: &Result<reqwest::Response, reqwest::Error>,
    started: std::time::Instant,
) {
    let elapsed = started.elapsed();
    let ms = elapsed.as_millis() as u64;
    let status = result.as_ref().ok().map(|r| r.status().as_u16());
    crate::telemetry::line_call(endpoint_label(path), status, elapsed);
    match result {
        Ok(r) => tracing::info!(
            method,
            path,
            status = r.status().as_u16(),
            ms,
            line_request_id = r
                .headers()
                .get("x-line-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-"),
            "LINE call"
        ),
        // The error text can carry the URL; the path is logged on its own.
        Err(e) => tracing::debug!(
            method,
            path,
            ms,
            timeout = e.is_timeout(),
            connect = e.is_connect(),
            "LINE call failed"
        ),
    }
}

/// A low-cardinality name for a path (ids stripped), for metrics.
fn endpoint_label(path: &str) -> &'static str {
    match path {
        "/v2/bot/message/push" => "push",
        "/v2/bot/message/reply" => "reply",
        "/v2/bot/chat/loading/start" => "loading",
        "/v2/bot/chat/markAsRead" => "mark_as_read",
        p if p.starts_with("/v2/bot/profile/") => "profile",
        p if p.ends_with("/summary") => "group_summary",
        p if p.contains("/member/") => "member_profile",
        p if p.ends_with("/content") => "content",
        _ => "other",
    }
}

/// Ids come from webhooks (outside input): keep them to one path segment.
fn path_segment(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn error_from(status: StatusCode, response: reqwest::Response) -> LineError {
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    status_error(status, &headers, &text)
}

fn status_error(status: StatusCode, headers: &HeaderMap, text: &str) -> LineError {
    let message = serde_json::from_str::<ErrorBody>(text)
        .ok()
        .and_then(|b| b.message)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    LineError::Status {
        status: status.as_u16(),
        message,
        retry_after,
        request_id: headers
            .get("x-line-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

async fn write_stream(response: reqwest::Response, path: &Path) -> anyhow::Result<u64> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut stream = response.bytes_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        file.write_all(&chunk).await?;
    }
    file.sync_all().await?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classification() {
        let status = |s| LineError::Status {
            status: s,
            message: String::new(),
            retry_after: None,
            request_id: None,
        };
        assert!(status(429).is_retryable());
        assert!(status(500).is_retryable());
        assert!(status(503).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(401).is_retryable());
        assert!(!status(403).is_retryable());
        assert!(LineError::Timeout.is_retryable());
        assert!(LineError::Transport("reset".into()).is_retryable());
    }

    #[test]
    fn ids_stay_one_path_segment() {
        assert_eq!(path_segment("../../etc/passwd"), "etcpasswd");
        assert_eq!(path_segment("U4af4980629"), "U4af4980629");
    }

    #[test]
    fn error_body_and_retry_after_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        headers.insert("x-line-request-id", "abc".parse().unwrap());
        let e = status_error(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            r#"{"message":"The API rate limit has been exceeded. Try again later."}"#,
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            e.to_string(),
            "LINE answered 429: The API rate limit has been exceeded. Try again later."
        );
    }
}

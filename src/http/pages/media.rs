//! `GET /media/{id}`: the content a customer sent (image, video, audio, file), as the media
//! worker downloaded it, to signed-in agents only.
//!
//! The file is found from the message's ids alone (`media/{conversation}/{message}` under the
//! data directory); the stored path must say the same and the resolved file must lie inside
//! the media directory, so nothing in the store can make this serve another file. Range
//! requests (seeking in a video) are handled by tower-http's `ServeFile`.
//!
//! Headers: the stored type, if it is a well-formed `type/subtype` (else octet-stream);
//! `inline` only for image/video/audio types a browser shows without running anything (no
//! SVG, no HTML), `attachment` with an RFC 6266 `filename*` for everything else; `nosniff`
//! comes from the global layer; and `private, no-cache`: the customer's content is
//! revalidated each time, so once unsent, or once the agent signed out, the cache cannot
//! show it.

use std::path::Path as FsPath;

use axum::{
    Router,
    body::Body,
    extract::{Path, Request, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::services::ServeFile;

use crate::{
    app::AppState,
    error::{AppError, Result},
    http::auth::Agent,
    store::messages,
    worker::media::relative_path,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/media/{id}", get(serve_media))
}

/// Types shown inline: raster images, and video and audio a `<video>`/`<audio>` plays.
const INLINE: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/heic",
    "image/heif",
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/3gpp",
    "audio/mp4",
    "audio/m4a",
    "audio/x-m4a",
    "audio/aac",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "audio/webm",
];

async fn serve_media(
    State(state): State<AppState>,
    _agent: Agent,
    Path(id): Path<i64>,
    request: Request,
) -> Result<Response> {
    let m = messages::get(&state.store.pool, id)
        .await?
        .ok_or(AppError::NotFound)?;
    // An unsent message's content is no longer shown anywhere, here included.
    if !matches!(m.kind.as_str(), "image" | "video" | "audio" | "file")
        || m.media_state.as_deref() != Some("ready")
        || m.status == "unsent"
    {
        return Err(AppError::NotFound);
    }
    let expected = relative_path(m.conversation_id, m.id);
    if m.media_path.as_deref() != Some(&*expected.to_string_lossy()) {
        tracing::warn!(
            message_id = id,
            "stored media path is not the expected one; refused"
        );
        return Err(AppError::NotFound);
    }
    let root = state.config.data_dir.join("media");
    let file = inside(&root, &state.config.data_dir.join(&expected))
        .await
        .ok_or(AppError::NotFound)?;
    let mime = clean_mime(m.media_mime.as_deref());
    let disposition = if m.kind != "file" && INLINE.contains(&mime.as_str()) {
        "inline".to_owned()
    } else {
        let body: serde_json::Value = serde_json::from_str(&m.body).unwrap_or_default();
        let name = body
            .get("fileName")
            .and_then(|v| v.as_str())
            .filter(|n| !n.trim().is_empty())
            .map_or_else(|| format!("{}-{}", m.kind, m.id), str::to_owned);
        attachment(&name)
    };
    let answer = ServeFile::new(&file)
        .try_call(request)
        .await
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("reading media")))?;
    let mut response = answer.map(Body::new).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&mime).unwrap_or(HeaderValue::from_static(OCTET)),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}

const OCTET: &str = "application/octet-stream";

/// The canonical `path` if it is a regular file inside `root` (symlinks resolved).
async fn inside(root: &FsPath, path: &FsPath) -> Option<std::path::PathBuf> {
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let file = tokio::fs::canonicalize(path).await.ok()?;
    let meta = tokio::fs::metadata(&file).await.ok()?;
    (file.starts_with(&root) && meta.is_file()).then_some(file)
}

/// The stored type if it is a plain `type/subtype` (parameters dropped), lowercased.
fn clean_mime(stored: Option<&str>) -> String {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let essence = stored
        .and_then(|s| s.split(';').next())
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match essence.split_once('/') {
        Some((t, sub)) if token(t) && token(sub) => essence,
        _ => OCTET.to_owned(),
    }
}

/// `attachment` with an ASCII fallback `filename` and the exact name as RFC 5987/6266
/// `filename*`. Control characters (CR/LF included) and path separators are dropped or
/// replaced, and only attr-chars are left unencoded, so the value can never end the header or
/// add a parameter.
pub fn attachment(name: &str) -> String {
    let name: String = name
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect();
    let name = name.trim();
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '%' | ';' | ',') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let fallback = if fallback.trim_matches('_').is_empty() {
        "download".to_owned()
    } else {
        fallback
    };
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_cannot_break_the_header() {
        let v = attachment("a\"b\r\nSet-Cookie: x=1;.pdf");
        assert_eq!(
            v,
            "attachment; filename=\"a_bSet-Cookie: x=1_.pdf\"; filename*=UTF-8''a%22bSet-Cookie%3A%20x%3D1%3B.pdf"
        );
        let zh = attachment("報價單 v2.pdf");
        assert!(
            zh.ends_with("filename*=UTF-8''%E5%A0%B1%E5%83%B9%E5%96%AE%20v2.pdf"),
            "{zh}"
        );
        assert!(zh.contains("filename=\"___ v2.pdf\""), "{zh}");
        assert!(attachment("../../etc/passwd").contains("filename=\".._.._etc_passwd\""));
        assert!(attachment("\r\n").contains("filename=\"download\""));
    }

    #[test]
    fn only_well_formed_types_pass() {
        assert_eq!(clean_mime(Some("image/JPEG; q=1")), "image/jpeg");
        assert_eq!(clean_mime(Some("text/html\r\nX: y")), OCTET);
        assert_eq!(clean_mime(Some("nonsense")), OCTET);
        assert_eq!(clean_mime(None), OCTET);
    }
}

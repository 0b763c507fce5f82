//! The responses several routes give: playlists, segment and init-segment
//! bodies, WebVTT, JSON with a status, an empty 204. A leaf: it imports
//! nothing else of `http`.

use std::path::Path;
use tokio_util::io::ReaderStream;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::Reply;

/// `Content-Type` of playlists (RFC 8216 §4).
pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// `Content-Type` of MPEG-TS segments (RFC 8216 §3.2).
pub const SEGMENT_TYPE: &str = "video/mp2t";
/// `Content-Type` of fragmented-MP4 init and media segments (RFC 8216
/// §3.3; ISO/IEC 14496-12's `video/mp4`, which players take for audio
/// too).
pub const FMP4_TYPE: &str = "video/mp4";
/// WebVTT's media type (W3C WebVTT §7.1).
pub const VTT_TYPE: &str = "text/vtt; charset=utf-8";
/// Bytes read from a file per chunk of a streamed body (a segment, a
/// direct play): each read is a trip through tokio's blocking pool, so a
/// small chunk (`ReaderStream`'s 4 KiB default) made serving a 1.1 MB
/// segment 7× slower; 256 KiB is 5 trips for it, and 16 MB for 64
/// bodies in flight.
pub const BODY_CHUNK_BYTES: usize = 256 * 1024;
/// `Cache-Control` of a segment: its bytes never change for its URL's
/// path (the store's rendition key names everything that decides them).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A playlist: its media type, never cached.
pub fn playlist(body: String) -> Response {
    let mut res = Response::new(body.into());
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PLAYLIST_TYPE),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// A WebVTT document or segment, never cached.
pub fn vtt(body: String) -> Response {
    let mut res = Response::new(body.into());
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(VTT_TYPE));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// A segment or init segment of `content_type` already in memory,
/// cacheable for good.
pub fn immutable_bytes(bytes: bytes::Bytes, content_type: &'static str) -> Response {
    let len = bytes.len();
    let mut res = Response::new(bytes.into());
    let h = res.headers_mut();
    h.insert(header::CONTENT_LENGTH, len.into());
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    res
}

/// An open segment file of `len` bytes and `content_type`, streamed from
/// disk (never held in memory whole), cacheable for good.
pub fn immutable_file(file: tokio::fs::File, len: u64, content_type: &'static str) -> Response {
    let mut res =
        warp::reply::stream(ReaderStream::with_capacity(file, BODY_CHUNK_BYTES)).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_LENGTH, len.into());
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    res
}

/// 206 with `bytes`, the `range` (inclusive) of a segment of
/// `total_bytes` and `content_type`, cacheable for good: for a player
/// that fetches a byte range of a segment (`EXT-X-BYTERANGE`). Segments
/// do not send `Accept-Ranges`: with it, nginx answers ffmpeg's
/// `Range: bytes=0-` of every segment with a 206 of its own.
pub fn immutable_part(
    bytes: bytes::Bytes,
    range: std::ops::RangeInclusive<u64>,
    total_bytes: u64,
    content_type: &'static str,
) -> Response {
    let mut res = immutable_bytes(bytes, content_type);
    *res.status_mut() = StatusCode::PARTIAL_CONTENT;
    let value = format!("bytes {}-{}/{total_bytes}", range.start(), range.end());
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    res
}

/// JSON `body` with `status`.
pub fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

/// An empty 204.
pub fn no_content() -> Response {
    warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response()
}

/// The media type of a file by its name, for direct play.
pub fn media_type_of(path: &Path) -> String {
    mime_guess::from_path(path)
        .first_or_octet_stream()
        .essence_str()
        .to_string()
}

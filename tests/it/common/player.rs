//! Following playlists as a player does: master playlist, media playlists
//! (URIs resolved per RFC 3986, tokens and all), every segment.

use super::*;
use std::time::{Duration, Instant};

/// `uri` resolved against the URL path `base` (RFC 3986), as a player
/// does: a path with its query.
pub fn resolve(base: &str, uri: &str) -> String {
    let root = reqwest::Url::parse("http://hlsd.invalid").unwrap();
    let url = root.join(base).unwrap().join(uri).unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// The URL of segment `n` beside a media playlist URL (its token kept).
pub fn segment_url(playlist_url: &str, n: usize) -> String {
    playlist_url.replace("playlist.m3u8", &format!("segment_{n:05}.ts"))
}

/// One variant (`EXT-X-STREAM-INF`) of a master playlist.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Its media playlist URL.
    pub url: String,
    /// `BANDWIDTH`, bits per second.
    pub bandwidth: u64,
    /// `AVERAGE-BANDWIDTH`, bits per second.
    pub average_bandwidth: Option<u64>,
    /// `RESOLUTION`.
    pub resolution: Option<(u64, u64)>,
}

/// What a master playlist lists.
#[derive(Debug, Clone)]
pub struct Master {
    /// The first variant's media playlist URL (video, or audio for
    /// audio-only): the one a player starts on.
    pub variant: String,
    /// Every variant, in the playlist's order (the rungs of a ladder).
    pub variants: Vec<Variant>,
    /// The audio renditions' media playlist URLs (`EXT-X-MEDIA`).
    pub audio: Vec<String>,
    /// The one of them marked `DEFAULT=YES`.
    pub default_audio: Option<String>,
    /// The WebVTT renditions: (language, media playlist URL).
    pub subtitles: Vec<(Option<String>, String)>,
    /// The I-frame playlists (`EXT-X-I-FRAME-STREAM-INF`), one per video
    /// variant, in the same order.
    pub iframes: Vec<Variant>,
    /// The first variant: (bandwidth, resolution, codecs).
    pub info: (u64, Option<(u64, u64)>, Option<String>),
    /// The playlist text.
    pub text: String,
}

/// Fetches and checks a master playlist as `token` (each fetch is a new
/// player of the session).
pub async fn fetch_master(server: &TestServer, master_url: &str, token: &str) -> Master {
    let r = server.get(master_url, token).await;
    assert_eq!(r.status(), 200, "master playlist");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    let text = r.text().await.unwrap();
    let mut master = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => m,
        other => panic!("not a master playlist: {other:?}"),
    };
    let iframes: Vec<Variant> = master
        .variants
        .iter()
        .filter(|v| v.is_i_frame)
        .map(|v| {
            // RFC 8216 §4.3.4.3: BANDWIDTH and URI are required; CODECS
            // and RESOLUTION as the Apple authoring spec asks; none of
            // the groups, which EXT-X-STREAM-INF alone has.
            assert!(
                v.bandwidth > 0 && v.uri.contains("/iframes.m3u8?token="),
                "{text}"
            );
            assert!(v.codecs.is_some() && v.resolution.is_some(), "{text}");
            assert!(v.audio.is_none() && v.subtitles.is_none(), "{text}");
            Variant {
                url: resolve(master_url, &v.uri),
                bandwidth: v.bandwidth,
                average_bandwidth: v.average_bandwidth,
                resolution: v.resolution.map(|r| (r.width, r.height)),
            }
        })
        .collect();
    master.variants.retain(|v| !v.is_i_frame);
    assert!(!master.variants.is_empty(), "{text}");
    for v in &master.variants {
        assert!(v.bandwidth > 0);
        assert!(
            v.average_bandwidth
                .is_some_and(|a| a > 0 && a <= v.bandwidth),
            "AVERAGE-BANDWIDTH up to BANDWIDTH: {text}"
        );
        assert!(
            v.codecs.as_deref().is_some_and(|c| !c.is_empty()),
            "CODECS present"
        );
        let first = &master.variants[0];
        assert_eq!(
            (&v.audio, &v.subtitles),
            (&first.audio, &first.subtitles),
            "every variant names the same groups: {text}"
        );
    }
    let v = &master.variants[0];
    assert!(
        !text.contains("api_key"),
        "no account token in a playlist: {text}"
    );
    let audio: Vec<String> = master
        .alternatives
        .iter()
        .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio)
        .map(|a| {
            resolve(
                master_url,
                a.uri.as_deref().expect("an audio rendition has a URI"),
            )
        })
        .collect();
    let default_audio = master
        .alternatives
        .iter()
        .find(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio && a.default)
        .and_then(|a| a.uri.as_deref())
        .map(|u| resolve(master_url, u));
    let subtitles = master
        .alternatives
        .iter()
        .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Subtitles)
        .map(|a| {
            (
                a.language.clone(),
                resolve(master_url, a.uri.as_deref().expect("subtitles have a URI")),
            )
        })
        .collect();
    if !audio.is_empty() {
        assert_eq!(
            master
                .alternatives
                .iter()
                .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio && a.default)
                .count(),
            1,
            "one default audio rendition: {text}"
        );
        assert_eq!(
            v.audio.as_deref(),
            Some("audio"),
            "the variant names its audio group"
        );
        assert!(
            ["mp4a", "Opus", "fLaC", "ac-3", "ec-3"].iter().any(|c| v
                .codecs
                .as_deref()
                .unwrap()
                .contains(c)),
            "CODECS lists the audio"
        );
    }
    Master {
        variant: resolve(master_url, &v.uri),
        variants: master
            .variants
            .iter()
            .map(|v| Variant {
                url: resolve(master_url, &v.uri),
                bandwidth: v.bandwidth,
                average_bandwidth: v.average_bandwidth,
                resolution: v.resolution.map(|r| (r.width, r.height)),
            })
            .collect(),
        audio,
        default_audio,
        subtitles,
        iframes,
        info: (
            v.bandwidth,
            v.resolution.map(|r| (r.width, r.height)),
            v.codecs.clone(),
        ),
        text,
    }
}

/// A media playlist polled until it ends (`#EXT-X-ENDLIST`).
pub async fn complete_playlist(
    server: &TestServer,
    url: &str,
    token: &str,
) -> m3u8_rs::MediaPlaylist {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let r = server.get(url, token).await;
        match r.status().as_u16() {
            200 => {
                assert_eq!(r.headers()["cache-control"], "no-cache");
                let text = r.bytes().await.unwrap();
                match m3u8_rs::parse_playlist_res(&text) {
                    Ok(m3u8_rs::Playlist::MediaPlaylist(m)) if m.end_list => return m,
                    Ok(m3u8_rs::Playlist::MediaPlaylist(_)) => {}
                    other => panic!("not a media playlist: {other:?}"),
                }
            }
            503 => assert!(r.headers().contains_key("retry-after")),
            s => panic!(
                "media playlist status {s}: {}",
                r.text().await.unwrap_or_default()
            ),
        }
        assert!(Instant::now() < deadline, "the playlist never ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An HLS playback checked as a player would: every segment of every
/// rendition fetched.
pub struct Played {
    /// Sum of the variant's `#EXTINF` durations, seconds.
    pub total_s: f64,
    /// The variant's segment count.
    pub segments: usize,
    /// Each of the variant's `#EXTINF`, seconds.
    pub durations: Vec<f64>,
    /// Bytes of every segment of the variant (video, or audio for an
    /// audio-only item), in order.
    pub segment_bytes: Vec<Vec<u8>>,
    /// Bytes of every segment of the audio rendition, when the variant is
    /// video with an audio group.
    pub audio_bytes: Vec<Vec<u8>>,
    /// The master playlist's variant: (bandwidth, resolution, codecs).
    pub variant: (u64, Option<(u64, u64)>, Option<String>),
    /// The variant's media playlist URL.
    pub playlist_url: String,
}

/// Fetches every segment of a complete media playlist.
pub async fn fetch_all(
    server: &TestServer,
    url: &str,
    media: &m3u8_rs::MediaPlaylist,
    token: &str,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for seg in &media.segments {
        assert!(
            (seg.duration as f64).round() as u64 <= media.target_duration,
            "EXTINF {} exceeds target duration {}",
            seg.duration,
            media.target_duration
        );
        assert!(
            seg.uri.contains("token="),
            "segment URIs carry a playback token"
        );
        let r = get_segment(server, &resolve(url, &seg.uri), token).await;
        assert_eq!(r.status(), 200, "segment {}", seg.uri);
        assert_eq!(r.headers()["content-type"], "video/mp2t");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        out.push(r.bytes().await.unwrap().to_vec());
    }
    out
}

/// Follows `master_url` (relative) as `token`: master → media playlists
/// (polled until `#EXT-X-ENDLIST`) → every segment of every rendition.
/// Asserts the playlist rules a player relies on.
pub async fn play_hls(server: &TestServer, master_url: &str, token: &str) -> Played {
    let master = fetch_master(server, master_url, token).await;
    let media = complete_playlist(server, &master.variant, token).await;
    let segment_bytes = fetch_all(server, &master.variant, &media, token).await;
    let mut audio_bytes = Vec::new();
    if let Some(audio) = &master.default_audio {
        let a = complete_playlist(server, audio, token).await;
        assert_eq!(
            a.segments.len(),
            media.segments.len(),
            "audio and video share the timeline"
        );
        audio_bytes = fetch_all(server, audio, &a, token).await;
    }
    Played {
        total_s: media.segments.iter().map(|s| s.duration as f64).sum(),
        segments: media.segments.len(),
        durations: media.segments.iter().map(|s| s.duration as f64).collect(),
        segment_bytes,
        audio_bytes,
        variant: master.info,
        playlist_url: master.variant,
    }
}

/// GETs a segment, retrying while the server answers 503 (it is being
/// made; the server waits a bounded time per request).
pub async fn get_segment(server: &TestServer, url: &str, token: &str) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let r = server.get(url, token).await;
        if r.status() != 503 {
            return r;
        }
        assert!(
            r.headers().contains_key("retry-after"),
            "503 without Retry-After"
        );
        assert!(Instant::now() < deadline, "segment {url} never came");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

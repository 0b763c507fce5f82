//! Dolby Vision is known and handled by its base layer: the probe reads
//! the configuration record GStreamer 1.22 does not report (MP4 `dvcC`,
//! Matroska's block addition mapping) and records its profile, level and
//! base layer. Profile 8.1 (an HDR10 base layer) plays as HDR10: copied
//! for `safari` with `VIDEO-RANGE=PQ`, tone-mapped for `generic`. Profile
//! 5 (no base layer another decoder shows right) is refused with a
//! reason.
//!
//! A client that shows Dolby Vision (`dolby_vision` in its profile) gets
//! the same copy announced with `SUPPLEMENTAL-CODECS="dvh1.08.04/db1p"`;
//! every copy's init segment carries the source's record on, which
//! ffprobe reads back.
//!
//! Over an HDR10 HEVC file made by the test with libx265, into whose
//! sample entry the test writes a `dvcC` box (profile 8.1, then 5), as a
//! Dolby Vision encoder's MP4 carries it; and the 8.1 file remuxed by
//! ffmpeg into Matroska.

use crate::common::library::form_urlencode;
use crate::common::*;

/// A `DOVIDecoderConfigurationRecord`: version 1.0, `profile`, `level`,
/// RPU and base layer present, base layer compatibility `compat`.
fn record(profile: u8, level: u8, compat: u8) -> Vec<u8> {
    let mut r = vec![
        1,
        0,
        (profile << 1) | (level >> 5),
        ((level & 31) << 3) | 0b101,
        compat << 4,
    ];
    r.resize(24, 0);
    r
}

fn size_at(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// The first box of `kind` among the boxes from `from` to `to`.
fn child(b: &[u8], from: usize, to: usize, kind: &[u8; 4]) -> usize {
    let mut at = from;
    while at + 8 <= to {
        if &b[at + 4..at + 8] == kind {
            return at;
        }
        at += size_at(b, at).max(8);
    }
    panic!("no {} box", String::from_utf8_lossy(kind));
}

/// `mp4` (its `moov` after its `mdat`, one video track) with a `dvcC`
/// box holding `record` at the end of its sample entry, and every box
/// around it grown to hold it.
fn with_dolby_vision(mp4: &[u8], record: &[u8]) -> Vec<u8> {
    let moov = child(mp4, 0, mp4.len(), b"moov");
    assert!(
        child(mp4, 0, mp4.len(), b"mdat") < moov,
        "moov after mdat: no offset moves"
    );
    let mut chain = vec![moov];
    for (kind, skip) in [
        (b"trak", 0),
        (b"mdia", 0),
        (b"minf", 0),
        (b"stbl", 0),
        (b"stsd", 0),
        (b"hvc1", 8),
    ] {
        let parent = *chain.last().unwrap();
        let from = parent + 8 + skip;
        chain.push(child(mp4, from, parent + size_at(mp4, parent), kind));
    }
    let entry = *chain.last().unwrap();
    let end = entry + size_at(mp4, entry);
    let mut dvcc = ((record.len() + 8) as u32).to_be_bytes().to_vec();
    dvcc.extend_from_slice(b"dvcC");
    dvcc.extend_from_slice(record);
    let mut out = mp4.to_vec();
    for at in chain {
        let grown = (size_at(mp4, at) + dvcc.len()) as u32;
        out[at..at + 4].copy_from_slice(&grown.to_be_bytes());
    }
    out.splice(end..end, dvcc);
    out
}

/// `safari` with Dolby Vision on its HEVC.
const DOLBY_VISION_TV: &str = r#"{"name":"dvtv","containers":[],"video":[{"codec":"hevc","max_bit_depth":10,"profiles":["main","main-10"],"hdr":["pq","hlg","dolby_vision"]}],"audio":[{"codec":"aac"}],"fmp4":true}"#;

/// The master's lines that announce Dolby Vision to a client that shows
/// it, after checking that the copy's init segment carries the record
/// (`dvvC`: profile 8, level 4, an HDR10 base layer), as ffprobe reads
/// it from the init segment and the first segment.
async fn dolby_vision_copy(server: &TestServer, id: &str) -> Vec<String> {
    let r = server
        .get(
            &format!(
                "/api/v1/stream/{id}?mode=hls&profile={}",
                form_urlencode(DOLBY_VISION_TV)
            ),
            ALICE,
        )
        .await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let master = fetch_master(server, &location, ALICE).await;
    let copy = &master.variants[0].url;
    assert!(copy.contains("video-copy"), "{}", master.text);
    let playlist = complete_playlist(server, copy, ALICE).await;
    let map = playlist.segments[0].map.as_ref().expect("EXT-X-MAP");
    let mut bytes = Vec::new();
    for uri in [&map.uri, &playlist.segments[0].uri] {
        let part = get_segment(server, &resolve(copy, uri), ALICE).await;
        bytes.extend_from_slice(&part.bytes().await.unwrap());
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(file.path())
        .output()
        .expect("ffprobe");
    let probed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let side = probed["streams"][0]["side_data_list"].to_string();
    for want in [
        "DOVI configuration record",
        "\"dv_profile\":8",
        "\"dv_level\":4",
        "\"bl_present_flag\":1",
        "\"dv_bl_signal_compatibility_id\":1",
    ] {
        assert!(side.contains(want), "{want} in {side}");
    }
    master
        .text
        .lines()
        .filter(|l| l.contains("SUPPLEMENTAL-CODECS"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dolby_vision_plays_by_its_base_layer_and_profile_5_is_refused() {
    let media = tempfile::tempdir().unwrap();
    let dir = media.path();
    let hdr10 = dir.join("made.hdr10");
    make_x265_mp4(&hdr10, 2, X265_HDR10);
    let plain = std::fs::read(&hdr10).unwrap();
    std::fs::remove_file(&hdr10).unwrap();
    std::fs::write(
        dir.join("dv81.mp4"),
        with_dolby_vision(&plain, &record(8, 4, 1)),
    )
    .unwrap();
    std::fs::write(
        dir.join("dv5.mp4"),
        with_dolby_vision(&plain, &record(5, 4, 0)),
    )
    .unwrap();
    ffmpeg_make(&[
        "-i",
        dir.join("dv81.mp4").to_str().unwrap(),
        "-c",
        "copy",
        "-strict",
        "unofficial",
        dir.join("dv81.mkv").to_str().unwrap(),
    ]);
    let server = start_server_with(dir, |_| {}).await;

    for name in ["dv81.mp4", "dv81.mkv"] {
        let id = server.media_id(name).await;
        let item = server
            .get_json(&format!("/api/v1/media/{id}"), ALICE, 200)
            .await;
        let hdr = &item["video"]["hdr"];
        assert_eq!(hdr["transfer"], "pq", "{name}: {item}");
        assert_eq!(
            hdr["dolby_vision"],
            serde_json::json!({"profile": 8, "level": 4, "compatibility_id": 1}),
            "{name}: {item}"
        );
        assert_eq!(hdr["mastering_max_nits"], 1000.0, "{name}: {item}");
        // Safari shows PQ HEVC: the base layer is copied, said to be PQ.
        let safari = server
            .get(
                &format!("/api/v1/stream/{id}?profile=safari&mode=hls"),
                ALICE,
            )
            .await;
        assert_eq!(safari.status(), 302, "{name}");
        let location = safari.headers()["location"].to_str().unwrap().to_string();
        let master = fetch_master(&server, &location, ALICE).await;
        let copy = master
            .text
            .lines()
            .find(|l| l.starts_with("#EXT-X-STREAM-INF") && l.contains("hvc1"))
            .unwrap_or_else(|| panic!("{name}: no HEVC copy: {}", master.text));
        assert!(copy.contains("VIDEO-RANGE=PQ"), "{name}: {copy}");
        assert!(
            !master.text.contains("SUPPLEMENTAL-CODECS"),
            "{name}: {copy}"
        );
        // A client that shows Dolby Vision is told what the copy is.
        let shown = dolby_vision_copy(&server, &id).await;
        assert_eq!(
            shown.len(),
            2,
            "{name}: the copy and its I-frames: {shown:?}"
        );
        for line in &shown {
            assert!(
                line.contains(",SUPPLEMENTAL-CODECS=\"dvh1.08.04/db1p\"")
                    && line.contains("CODECS=\"hvc1.")
                    && line.contains("VIDEO-RANGE=PQ"),
                "{name}: {line}"
            );
        }
        // generic does not: every variant is tone-mapped to SDR.
        let generic = server
            .get(&format!("/api/v1/stream/{id}?mode=hls"), ALICE)
            .await;
        let location = generic.headers()["location"].to_str().unwrap().to_string();
        let master = fetch_master(&server, &location, ALICE).await;
        assert!(
            !master.text.contains("VIDEO-RANGE=PQ"),
            "{name}: {}",
            master.text
        );
        assert!(!master.text.contains("hvc1"), "{name}: {}", master.text);
    }

    let id = server.media_id("dv5.mp4").await;
    let item = server
        .get_json(&format!("/api/v1/media/{id}"), ALICE, 200)
        .await;
    assert_eq!(item["video"]["hdr"]["dolby_vision"]["profile"], 5, "{item}");
    assert_eq!(
        item["video"]["hdr"]["dolby_vision"]["compatibility_id"], 0,
        "{item}"
    );
    let reasons = item["reasons"].to_string();
    assert!(
        reasons.contains("dolby_vision_without_base_layer:profile_5"),
        "{item}"
    );
    for profile in ["generic", "safari"] {
        let r = server
            .get(&format!("/api/v1/stream/{id}?profile={profile}"), ALICE)
            .await;
        assert_eq!(r.status(), 422, "{profile}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unplayable", "{profile}: {body}");
    }
    server.stop().await;
}

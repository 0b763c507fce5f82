//! I-frame playlists (RFC 8216 §4.3.3.6 and §4.3.4.3; the Apple HLS
//! authoring spec 6.1 asks for them): every video variant of a master
//! playlist has one, listing each segment's first picture as a resource
//! of its own (`iframe_N.ts`, `iframe_N.m4s`).
//!
//! Each I-frame, fetched alone (after the init segment in fMP4), must
//! decode with ffmpeg to exactly one picture: an intra random-access
//! picture whose time is its segment's first, and the segment it comes
//! from is made on request if it was not.

use crate::common::*;

/// One decoded picture of a resource: (`pict_type`, key frame, PTS in s).
type Picture = (String, bool, f64);

/// The video pictures ffmpeg decodes from `bytes`.
fn pictures(bytes: &[u8]) -> Vec<Picture> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resource");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_frames"])
        .args(["-show_entries", "frame=pict_type,key_frame,pts_time"])
        .args(["-of", "csv=p=0"])
        .arg(&path)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            // ffprobe writes the fields in its own order: key_frame,
            // pts_time, pict_type.
            let f: Vec<&str> = l.split(',').collect();
            let pts = f[1].parse().unwrap_or_else(|_| panic!("pts in {l}"));
            (f[2].to_string(), f[0] == "1", pts)
        })
        .collect()
}

/// The NAL unit types of the video's first access unit in `bytes`, read
/// from its Annex B stream as ffmpeg copies it out.
fn nal_types(bytes: &[u8], hevc: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::write(&input, bytes).unwrap();
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&input)
        .args(["-map", "0:v:0", "-c", "copy", "-f"])
        .arg(if hevc { "hevc" } else { "h264" })
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success());
    let es = std::fs::read(&output).unwrap();
    es.windows(4)
        .filter(|w| w[..3] == [0, 0, 1])
        .map(|w| {
            if hevc {
                (w[3] >> 1) & 0x3F
            } else {
                w[3] & 0x1F
            }
        })
        .collect()
}

/// Whether every picture (VCL NAL unit) in `types` is an intra random
/// access point: an IDR in H.264 (type 5); in HEVC an IDR (19, 20) or,
/// for a copy of a source with open GOPs, the source's own CRA (21).
fn random_access(types: &[u8], hevc: bool) -> bool {
    let vcl: Vec<u8> = types
        .iter()
        .copied()
        .filter(|t| if hevc { *t < 32 } else { (1..=5).contains(t) })
        .collect();
    !vcl.is_empty()
        && vcl
            .iter()
            .all(|t| if hevc { (19..=21).contains(t) } else { *t == 5 })
}

/// Checks every I-frame of every video variant of the master at
/// `location`: one per segment, with the segment's duration, each
/// decoding alone to one random-access picture at its segment's start.
/// Returns how many were checked.
async fn check_iframes(server: &TestServer, location: &str, hevc_copy: bool) -> usize {
    let master = fetch_master(server, location, ALICE).await;
    assert_eq!(
        master.iframes.len(),
        master.variants.len(),
        "an I-frame playlist per variant: {}",
        master.text
    );
    let mut checked = 0;
    for (variant, iframes) in master.variants.iter().zip(&master.iframes) {
        assert_eq!(
            iframes.url.replace("iframes.m3u8", "playlist.m3u8"),
            variant.url,
            "in variant order"
        );
        assert_eq!(iframes.resolution, variant.resolution);
        assert!(iframes.bandwidth <= variant.bandwidth, "{}", master.text);
        let media = complete_playlist(server, &variant.url, ALICE).await;
        let text = server.get(&iframes.url, ALICE).await.text().await.unwrap();
        let list = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => m,
            other => panic!("not a media playlist: {other:?}\n{text}"),
        };
        assert!(list.i_frames_only, "EXT-X-I-FRAMES-ONLY: {text}");
        assert!(list.version.unwrap_or(1) >= 4, "{text}");
        assert!(list.end_list, "{text}");
        assert_eq!(list.segments.len(), media.segments.len(), "{text}");
        let fmp4 = variant.url.contains("-cmaf/");
        let hevc = hevc_copy && variant.url.contains("/video-copy");
        let init = match &list.segments[0].map {
            Some(map) => {
                let r = get_segment(server, &resolve(&iframes.url, &map.uri), ALICE).await;
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap().to_vec()
            }
            None => {
                assert!(!fmp4, "fMP4 I-frames need their init segment: {text}");
                Vec::new()
            }
        };
        for (n, (iframe, segment)) in list.segments.iter().zip(&media.segments).enumerate() {
            assert_eq!(iframe.duration, segment.duration, "I-frame {n}");
            let r = get_segment(server, &resolve(&iframes.url, &iframe.uri), ALICE).await;
            assert_eq!(r.status(), 200, "{}", iframe.uri);
            let want_type = if fmp4 { "video/mp4" } else { "video/mp2t" };
            assert_eq!(r.headers()["content-type"], want_type);
            let cut = [init.as_slice(), &r.bytes().await.unwrap()].concat();
            let whole = [
                init.as_slice(),
                &get_segment(server, &resolve(&variant.url, &segment.uri), ALICE)
                    .await
                    .bytes()
                    .await
                    .unwrap(),
            ]
            .concat();
            assert!(
                cut.len() < whole.len(),
                "I-frame {n} is a part of its segment"
            );
            if n == 0 {
                // A byte range of a stored segment: 206 with those bytes.
                let segment_bytes = &whole[init.len()..];
                let url = server.url(&resolve(&variant.url, &segment.uri));
                let r = server
                    .client
                    .get(&url)
                    .header("range", "bytes=188-563")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 206);
                let total = segment_bytes.len();
                assert_eq!(
                    r.headers()["content-range"],
                    format!("bytes 188-563/{total}").as_str()
                );
                assert_eq!(r.bytes().await.unwrap(), &segment_bytes[188..564]);
                let r = server
                    .client
                    .get(&url)
                    .header("range", format!("bytes={total}-"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 416);
                // The whole segment, as ffmpeg asks for every URL: 200.
                let r = server
                    .client
                    .get(&url)
                    .header("range", "bytes=0-")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
            let got = pictures(&cut);
            assert_eq!(got.len(), 1, "I-frame {n} of {}: {got:?}", variant.url);
            let (kind, key, pts) = &got[0];
            assert!(kind == "I" && *key, "I-frame {n}: {got:?}");
            let first = pictures(&whole)
                .iter()
                .map(|p| p.2)
                .fold(f64::INFINITY, f64::min);
            assert!(
                (pts - first).abs() < 1e-3,
                "I-frame {n} at {pts} s, its segment starts at {first} s"
            );
            let types = nal_types(&cut, hevc);
            assert!(
                random_access(&types, hevc),
                "I-frame {n}: NAL units {types:?}"
            );
            checked += 1;
        }
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_iframe_of_a_ts_transcode_decodes_alone_to_its_segments_first_picture() {
    let fixtures = fixtures_dir();
    let file = "transcode_vp8_vorbis_20s.webm";
    let dir = media_subset(&[fixtures.join(file)]);
    let server = start_server(dir.path(), std::time::Duration::from_secs(60)).await;
    server
        .wait_library(std::time::Duration::from_secs(60))
        .await;
    let id = server.media_id(file).await;
    let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let checked = check_iframes(&server, &location, false).await;
    eprintln!("{checked} I-frames checked");
    assert!(checked >= 4, "{checked} I-frames");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_iframe_of_an_fmp4_hevc_copy_and_its_rungs_decodes_alone() {
    let Some(made) = adapt_media() else { return };
    let file = "hevc_aac_720p_12s.mkv";
    let dir = media_subset(&[made.join(file)]);
    let server = start_server(dir.path(), std::time::Duration::from_secs(60)).await;
    server
        .wait_library(std::time::Duration::from_secs(60))
        .await;
    let id = server.media_id(file).await;
    let r = server
        .get(&format!("/api/v1/stream/{id}?profile=safari"), ALICE)
        .await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let checked = check_iframes(&server, &location, true).await;
    eprintln!("{checked} I-frames checked");
    assert!(checked >= 4, "{checked} I-frames");
    // An I-frame name that is not one of the rendition's: 404 JSON.
    let master = fetch_master(&server, &location, ALICE).await;
    let wrong = master.iframes[0]
        .url
        .replace("iframes.m3u8", "iframe_00000.ts");
    let r = server.get(&wrong, ALICE).await;
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
}

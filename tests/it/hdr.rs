//! HDR is known: the probe records how a video's colours are coded and
//! whether it is HDR (PQ or HLG), with the mastering display's luminance
//! and the content light levels where the stream or container carries
//! them, and `GET /api/v1/media/{id}` shows them.
//!
//! Over files made by the test with ffmpeg's libx265 (10-bit): HDR10 with
//! SMPTE ST 2086 and CTA-861.3 metadata (1000 nits, MaxCLL 1000, MaxFALL
//! 400) in MP4 and in Matroska, HLG in MP4, and an SDR BT.709 H.264.

use crate::common::library::form_urlencode;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdr10_and_hlg_are_recorded_with_their_metadata() {
    let media = tempfile::tempdir().unwrap();
    let dir = media.path();
    let ff = ffmpeg_make;
    let src = ["-f", "lavfi", "-i", "testsrc2=s=640x360:r=24:d=1"];
    let x265 = |params: &str, out: &str| {
        let params = format!("log-level=error:{params}");
        let out = dir.join(out);
        ff(&[
            &src[..],
            &[
                "-vf",
                "format=yuv420p10le",
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
            ],
            &[
                "-x265-params",
                &params,
                "-tag:v",
                "hvc1",
                out.to_str().unwrap(),
            ],
        ]
        .concat());
    };
    x265(
        "hdr10=1:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:\
         master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):\
         max-cll=1000,400",
        "hdr10.mp4",
    );
    ff(&[
        "-i",
        dir.join("hdr10.mp4").to_str().unwrap(),
        "-c",
        "copy",
        dir.join("hdr10.mkv").to_str().unwrap(),
    ]);
    x265(
        "colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc",
        "hlg.mp4",
    );
    ff(&[
        &src[..],
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
        &[
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
            "-colorspace",
            "bt709",
        ],
        &[dir.join("sdr.mp4").to_str().unwrap()],
    ]
    .concat());
    let server = start_server_with(dir, |_| {}).await;
    let video = |name: &'static str| {
        let server = &server;
        async move {
            let id = server.media_id(name).await;
            let item = server
                .get_json(&format!("/api/v1/media/{id}"), ALICE, 200)
                .await;
            println!("{name}: {}", item["video"]);
            item["video"].clone()
        }
    };
    for name in ["hdr10.mp4", "hdr10.mkv"] {
        let v = video(name).await;
        assert_eq!(v["colour"]["primaries"], "bt2020", "{name}: {v}");
        assert_eq!(v["colour"]["transfer"], "smpte2084", "{name}: {v}");
        assert_eq!(v["colour"]["matrix"], "bt2020nc", "{name}: {v}");
        assert_eq!(v["colour"]["full_range"], false, "{name}: {v}");
        assert_eq!(v["hdr"]["transfer"], "pq", "{name}: {v}");
        assert_eq!(v["hdr"]["mastering_max_nits"], 1000.0, "{name}: {v}");
        assert_eq!(v["hdr"]["mastering_min_nits"], 0.0001, "{name}: {v}");
        assert_eq!(v["hdr"]["max_cll_nits"], 1000, "{name}: {v}");
        assert_eq!(v["hdr"]["max_fall_nits"], 400, "{name}: {v}");
        assert_eq!(v["bit_depth"], 10, "{name}: {v}");
    }
    let v = video("hlg.mp4").await;
    assert_eq!(v["colour"]["transfer"], "arib-std-b67", "{v}");
    assert_eq!(v["hdr"], serde_json::json!({"transfer": "hlg"}), "{v}");
    let v = video("sdr.mp4").await;
    assert_eq!(v["colour"]["primaries"], "bt709", "{v}");
    assert_eq!(v["colour"]["transfer"], "bt709", "{v}");
    assert!(v.get("hdr").is_none(), "SDR has no hdr: {v}");
    hdr10_passes_through_to_a_client_that_shows_it(&server).await;
    server.stop().await;
}

/// `safari` takes PQ HEVC: the HDR10 Matroska file is copied into fMP4,
/// its variants say `VIDEO-RANGE=PQ`, and its init segment carries the
/// stream's colour (`colr` nclx 9/16/9), mastering display (`mdcv`) and
/// light levels (`clli`). A profile whose HEVC lists no HDR is not given
/// the copy (`hdr_unsupported:pq`), nor is `generic`, whose master says
/// no range.
async fn hdr10_passes_through_to_a_client_that_shows_it(server: &TestServer) {
    use crate::common::fmp4_check::check_rendition;
    let id = server.media_id("hdr10.mkv").await;
    let r = server
        .get(&format!("/api/v1/stream/{id}?profile=safari"), ALICE)
        .await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let master = fetch_master(server, &location, ALICE).await;
    let variants: Vec<&str> = master
        .text
        .lines()
        .filter(|l| {
            l.starts_with("#EXT-X-STREAM-INF") || l.starts_with("#EXT-X-I-FRAME-STREAM-INF")
        })
        .collect();
    assert!(
        master.variants[0].url.contains("/video-copy"),
        "{}",
        master.text
    );
    assert!(
        variants[0].contains("CODECS=\"hvc1.2.4."),
        "Main 10: {}",
        master.text
    );
    assert!(
        variants.iter().all(|v| v.contains(",VIDEO-RANGE=PQ")),
        "{}",
        master.text
    );
    let playlist = complete_playlist(server, &master.variants[0].url, ALICE).await;
    let map = playlist.segments[0].map.as_ref().expect("EXT-X-MAP");
    let init = get_segment(server, &resolve(&master.variants[0].url, &map.uri), ALICE)
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let first = get_segment(
        server,
        &resolve(&master.variants[0].url, &playlist.segments[0].uri),
        ALICE,
    )
    .await
    .bytes()
    .await
    .unwrap()
    .to_vec();
    let report = check_rendition(&init, &[first], true);
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert_eq!(report.init.colour, Some((9, 16, 9, false)), "colr");
    // G(13250,34500) B(7500,3000) R(34000,16000) WP(15635,16450),
    // L(10000000,1): as x265 was told.
    let mut mdcv = Vec::new();
    for v in [13250u16, 34500, 7500, 3000, 34000, 16000, 15635, 16450] {
        mdcv.extend_from_slice(&v.to_be_bytes());
    }
    mdcv.extend_from_slice(&10_000_000u32.to_be_bytes());
    mdcv.extend_from_slice(&1u32.to_be_bytes());
    assert_eq!(report.init.mastering, Some(mdcv), "mdcv");
    assert_eq!(report.init.light_level, Some((1000, 400)), "clli");

    // A client whose HEVC shows no HDR is not given the copy.
    let tv = form_urlencode(
        r#"{"name":"tv","containers":[],"video":[{"codec":"hevc","max_bit_depth":10}],"audio":[{"codec":"aac"}],"fmp4":true}"#,
    );
    let item = server
        .get_json(&format!("/api/v1/media/{id}?profile={tv}"), ALICE, 200)
        .await;
    assert_eq!(item["playback"], "transcode", "{item}");
    let reasons = item["reasons"].to_string();
    assert!(reasons.contains("hdr_unsupported:pq"), "{reasons}");
    let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let master = fetch_master(server, &location, ALICE).await;
    assert!(!master.text.contains("VIDEO-RANGE"), "{}", master.text);
}

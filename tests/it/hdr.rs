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
    let x265 = |params: &str, out: &str| make_x265_mp4(&dir.join(out), 1, params);
    x265(X265_HDR10, "hdr10.mp4");
    ff(&[
        "-i",
        dir.join("hdr10.mp4").to_str().unwrap(),
        "-c",
        "copy",
        dir.join("hdr10.mkv").to_str().unwrap(),
    ]);
    x265(
        "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc",
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
    // The original is PQ; the rungs beside it are tone-mapped to SDR.
    assert!(variants[0].contains(",VIDEO-RANGE=PQ"), "{}", master.text);
    let pq = variants
        .iter()
        .filter(|v| v.contains(",VIDEO-RANGE=PQ"))
        .count();
    assert_eq!(pq, 2, "the original and its I-frames: {}", master.text);
    assert!(
        variants
            .iter()
            .filter(|v| !v.contains("VIDEO-RANGE=PQ"))
            .all(|v| v.contains(",VIDEO-RANGE=SDR")),
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
    let variants = master
        .text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
        .collect::<Vec<_>>();
    assert!(
        variants.iter().all(|v| v.contains(",VIDEO-RANGE=SDR")),
        "tone-mapped rungs only: {}",
        master.text
    );
}

/// The mean of `plane` (width `w`) over the rectangle `x0..x1`, `y0..y1`.
fn mean(plane: &[u8], w: usize, (x0, x1): (usize, usize), (y0, y1): (usize, usize)) -> f64 {
    let mut sum = 0.0;
    for y in y0..y1 {
        for x in x0..x1 {
            sum += f64::from(plane[y * w + x]);
        }
    }
    sum / ((x1 - x0) * (y1 - y0)) as f64
}

/// An HDR10 film's encoded rungs are SDR BT.709: SMPTE HD colour bars
/// made HDR10 (white at 203 cd/m², ITU-R BT.2408; x265 with a 1000 cd/m²
/// mastering display), transcoded for `generic` and decoded by ffmpeg.
/// With `--tonemap hable` the picture matches ffmpeg's own `zscale` and
/// `tonemap` chain at PSNR ≥ 35 dB on luma; with the default BT.2390 the
/// 75 % white bar is bright (the untouched PQ picture: 127), greys stay
/// grey and the bars keep their colour; the stream says BT.709.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hdr10_transcode_is_tone_mapped_to_sdr() {
    let media = tempfile::tempdir().unwrap();
    let film = media.path().join("bars_hdr10.mkv");
    ffmpeg_make(&[
        "-f",
        "lavfi",
        "-i",
        "smptehdbars=s=640x360:r=24:d=2",
        "-vf",
        "zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t=linear:p=bt709:npl=203,format=gbrpf32le,\
         zscale=p=bt2020:t=smpte2084:m=bt2020nc:r=tv:npl=203,format=yuv420p10le",
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-x265-params",
        X265_HDR10,
        film.to_str().unwrap(),
    ]);
    let (w, h) = (640usize, 360usize);
    // The first frame of the first segment of the first variant.
    let first_frame = |server: TestServer| async move {
        let id = server.media_id("bars_hdr10.mkv").await;
        let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
        assert_eq!(r.status(), 302);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let master = fetch_master(&server, &location, ALICE).await;
        assert!(master.text.contains("VIDEO-RANGE=SDR"), "{}", master.text);
        let variant = master
            .variants
            .iter()
            .find(|v| v.resolution == Some((640, 360)))
            .unwrap_or_else(|| panic!("a 360p rung: {}", master.text))
            .url
            .clone();
        let playlist = complete_playlist(&server, &variant, ALICE).await;
        let segment = get_segment(
            &server,
            &resolve(&variant, &playlist.segments[0].uri),
            ALICE,
        )
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
        server.stop().await;
        let dir = tempfile::tempdir().unwrap();
        let ts = dir.path().join("s.ts");
        std::fs::write(&ts, &segment).unwrap();
        let probe = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=color_primaries,color_transfer,color_space",
            ])
            .args(["-of", "csv=p=0"])
            .arg(&ts)
            .output()
            .unwrap();
        let tags = String::from_utf8_lossy(&probe.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let raw = ffmpeg_decode(
            &segment,
            &[
                "-frames:v",
                "1",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "yuv420p",
                "pipe:1",
            ],
        );
        (raw, tags)
    };

    let hable = start_server_with(media.path(), |c| {
        c.supervisor.tonemap = hlsd::tonemap::Curve::Hable
    })
    .await;
    let (frame, tags) = first_frame(hable).await;
    assert_eq!(tags, "bt709,bt709,bt709", "the stream says BT.709");
    let reference = {
        let out = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(&film)
            .args(["-frames:v", "1", "-vf"])
            .arg(
                "zscale=tin=smpte2084:min=bt2020nc:pin=bt2020:rin=tv:t=linear:p=bt2020:npl=100,\
                 format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0:peak=10,\
                 zscale=t=bt709:m=bt709:r=tv,format=yuv420p",
            )
            .args(["-f", "rawvideo", "pipe:1"])
            .output()
            .unwrap();
        out.stdout
    };
    let luma = w * h;
    let mse = frame[..luma]
        .iter()
        .zip(&reference[..luma])
        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
        .sum::<f64>()
        / luma as f64;
    let psnr = 10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10();
    println!("hable through the pipeline: luma PSNR {psnr:.1} dB against ffmpeg");
    assert!(psnr >= 35.0, "{psnr:.1} dB");

    let default = start_server_with(media.path(), |_| {}).await;
    let (frame, _) = first_frame(default).await;
    let (cw, cb, cr) = (
        w / 2,
        &frame[luma..luma + luma / 4],
        &frame[luma + luma / 4..],
    );
    // The top: 40 % grey over the first eighth of the width, then seven
    // bars of 3/28 of it each, 75 % white first.
    let white = mean(&frame[..luma], w, (90, 150), (40, 160));
    let grey_chroma = [cb, cr]
        .iter()
        .flat_map(|p| [(5, 30), (48, 72)].map(|x| (mean(p, cw, x, (20, 80)) - 128.0).abs()))
        .fold(0.0, f64::max);
    // Chroma saturation of the top bars against the SDR bars themselves.
    let sdr = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "smptehdbars=s=640x360"])
        .args([
            "-frames:v",
            "1",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "rawvideo",
            "pipe:1",
        ])
        .output()
        .unwrap()
        .stdout;
    let saturation = |f: &[u8]| {
        let (cb, cr) = (&f[luma..luma + luma / 4], &f[luma + luma / 4..]);
        let mut sum = 0.0;
        for y in 20..100 {
            for x in 0..cw {
                sum += (f64::from(cb[y * cw + x]) - 128.0).abs()
                    + (f64::from(cr[y * cw + x]) - 128.0).abs();
            }
        }
        sum
    };
    let kept = saturation(&frame) / saturation(&sdr);
    println!(
        "grey and white chroma: {:?}",
        [cb, cr].map(|p| [(5, 30), (48, 72)].map(|x| mean(p, cw, x, (20, 80))))
    );
    println!(
        "bt2390 through the pipeline: 75 % white bar {white:.0}, grey chroma off by {grey_chroma:.1}, {:.0} % of the SDR bars' saturation",
        kept * 100.0
    );
    assert!(white >= 145.0, "{white}");
    assert!(grey_chroma <= 3.0, "{grey_chroma}");
    assert!(kept >= 0.6, "{kept}");
}

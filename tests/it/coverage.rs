//! Coverage: files ffmpeg decodes play through `/api/v1/stream/{id}`,
//! decoded by ffmpeg as an HTTP client, to within 0.5 s of what ffmpeg
//! decodes from the file itself. The corpus is made by
//! `tests/media/make-coverage-media.sh` (kinds real libraries hold and
//! GStreamer-based servers failed on), plus the broadcast-style TS of
//! `../shared/media`.

use crate::common::ts_check::{check_rendition, starts_with_idr};
use crate::common::*;
use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_of_the_coverage_corpus_plays_with_its_duration() {
    let Some(corpus) = coverage_media() else {
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_str().unwrap().starts_with('.'))
        .filter(|p| hlsd::library::is_media_file(p))
        .collect();
    if let Some(shared) = shared_media() {
        files.push(shared.join("h264_aac_sintel_cea608.ts"));
    }
    files.sort();
    assert!(files.len() >= 9, "{files:?}");
    let media = media_subset(&files);
    let server = start_server_with(media.path(), |c| c.sessions.max_sessions_per_user = 100).await;
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let source = decoded_seconds(file.to_str().unwrap()).expect("ffmpeg decodes the source");
        let item = server.media(name).await;
        let url = server.url(&format!(
            "/api/v1/stream/{}?api_key={ALICE}",
            item["id"].as_str().unwrap()
        ));
        let played = tokio::task::spawn_blocking(move || decoded_seconds(&url))
            .await
            .unwrap();
        println!(
            "{name:36} {:12} source {source:7.3} s  played {}",
            item["playback"].as_str().unwrap_or("?"),
            match &played {
                Ok(s) => format!("{s:7.3} s"),
                Err(e) => e.clone(),
            }
        );
        // Every video segment of an HLS item opens with an IDR frame.
        if item["playback"] != "direct_play" {
            let started = server.start_hls(item["id"].as_str().unwrap(), ALICE).await;
            let hls = play_hls(&server, started["master_url"].as_str().unwrap(), ALICE).await;
            for (what, segments) in [("video", &hls.segment_bytes), ("audio", &hls.audio_bytes)] {
                let report = check_rendition(segments);
                if !report.violations.is_empty() {
                    failures.push(format!(
                        "{name} {what}: {:?}",
                        &report.violations[..report.violations.len().min(3)]
                    ));
                }
            }
            println!(
                "{name}: {} segments, {:.3} s listed",
                hls.segments, hls.total_s
            );
            if hls.variant.2.as_deref().is_some_and(|c| c.contains("avc1")) {
                for (n, seg) in hls.segment_bytes.iter().enumerate() {
                    if !starts_with_idr(seg) {
                        failures.push(format!(
                            "{name}: video segment {n} does not open with an IDR frame"
                        ));
                    }
                }
            }
        }
        match played {
            Ok(s) if (s - source).abs() <= 0.5 => {}
            Ok(s) => failures.push(format!("{name}: played {s:.3} s of {source:.3} s")),
            Err(e) => failures.push(format!("{name}: {e} ({})", item["playback"])),
        }
    }
    server.stop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

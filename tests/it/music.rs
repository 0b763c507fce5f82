//! Music and other audio-only files fit the client: a browser plays an
//! MP3 as it is (direct play for the `chromium` and `safari` profiles),
//! and where HLS is needed its MP3 is copied into MPEG-TS (stream type
//! 0x03), never encoded.

use crate::common::*;
use std::time::Duration;

const MP3: &str = "mp3_speech_mono_5s.mp3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mp3_plays_as_it_is_or_copied_into_hls() {
    let Some(shared) = shared_media() else { return };
    let file = shared.join(MP3);
    let media = media_subset(std::slice::from_ref(&file));
    let server = start_server_with(media.path(), |c| c.http.admins = vec!["alice".into()]).await;
    server.wait_library(Duration::from_secs(60)).await;
    let id = server.media_id(MP3).await;

    // Browsers play the file: direct play, its own bytes.
    for profile in ["chromium", "safari"] {
        let item = server
            .get_json(&format!("/api/v1/media/{id}?profile={profile}"), ALICE, 200)
            .await;
        assert_eq!(item["playback"], "direct_play", "{profile}: {item}");
        assert_eq!(item["container"], "mp3", "{item}");
        let r = server
            .get(&format!("/api/v1/stream/{id}?profile={profile}"), ALICE)
            .await;
        assert_eq!(r.status(), 200, "{profile}");
        assert_eq!(r.headers()["content-type"], "audio/mpeg");
        let size = std::fs::metadata(&file).unwrap().len();
        assert_eq!(r.bytes().await.unwrap().len() as u64, size);
    }

    // A generic HLS client: the MP3 copied, not encoded.
    let item = server
        .get_json(&format!("/api/v1/media/{id}"), ALICE, 200)
        .await;
    assert_eq!(item["playback"], "remux", "{item}");
    assert!(
        item["reasons"].to_string().contains("audio_copy:mp3"),
        "{item}"
    );
    let r = server
        .get(
            &format!("/api/v1/stream/{id}?mode=hls&profile=chromium"),
            ALICE,
        )
        .await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap();
    let master_url = match location.starts_with('/') {
        true => server.url(location),
        false => location.to_string(),
    };
    let master = fetch_master(&server, location, ALICE).await;
    assert!(
        master.text.contains("CODECS=\"mp4a.40.34\""),
        "{}",
        master.text
    );
    let want = decoded_seconds(file.to_str().unwrap()).unwrap();
    let got = decoded_seconds(&master_url).unwrap();
    assert!(
        (got - want).abs() < 0.1,
        "HLS decodes to {got} s, the file to {want} s"
    );
    let playlist = complete_playlist(&server, &master.variant, ALICE).await;
    let segment = get_segment(
        &server,
        &resolve(&master.variant, &playlist.segments[0].uri),
        ALICE,
    )
    .await
    .bytes()
    .await
    .unwrap();
    // The PMT names MPEG-1 audio (0x03) on the audio PID.
    let pmt = &segment[188..376];
    assert!(
        pmt.windows(3).any(|w| w == [0x03, 0xe1, 0x01]),
        "no MPEG-1 audio in the PMT"
    );
    let stats = server.admin_stats(ALICE).await;
    assert_eq!(stats["media_seconds_transcoded"], 0.0, "{stats}");
    server.stop().await;
}

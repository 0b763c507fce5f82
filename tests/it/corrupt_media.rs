//! Damaged downloads are normal: at least 50 files corrupted from the good
//! fixtures (deterministically seeded), plus empty, garbage, directory and
//! huge-size files. Each is probed and played; each gives a clear error or
//! plays, within a bounded time, while another session keeps streaming.
//! Nothing crashes, hangs, or is left behind.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The seed of every corruption: the same files on every run.
const SEED: u64 = 0x686c_7364; // "hlsd"

/// Writes the corrupted variants of `fixtures` into `dir`; returns their names.
fn make_variants(dir: &Path, fixtures: &[PathBuf]) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut names = Vec::new();
    let mut write = |name: String, bytes: &[u8]| {
        std::fs::write(dir.join(&name), bytes).unwrap();
        names.push(name);
    };
    for f in fixtures {
        let good = std::fs::read(f).unwrap();
        let stem = f.file_stem().unwrap().to_str().unwrap();
        let ext = f.extension().unwrap().to_str().unwrap();
        for i in 0..6 {
            let cut = rng.usize(1..good.len());
            write(format!("{stem}_cut{i}_{cut}.{ext}"), &good[..cut]);
        }
        for i in 0..5 {
            let mut bad = good.clone();
            for _ in 0..16 {
                let at = rng.usize(0..4096.min(bad.len()));
                bad[at] ^= rng.u8(1..=255);
            }
            write(format!("{stem}_header_flip{i}.{ext}"), &bad);
        }
        for i in 0..5 {
            let mut bad = good.clone();
            let (lo, hi) = (bad.len() / 3, 2 * bad.len() / 3);
            for _ in 0..64 {
                let at = rng.usize(lo..hi);
                bad[at] ^= rng.u8(1..=255);
            }
            write(format!("{stem}_middle_flip{i}.{ext}"), &bad);
        }
    }
    write("empty.mp4".into(), &[]);
    let garbage: Vec<u8> = (0..64 * 1024).map(|_| rng.u8(..)).collect();
    write("garbage.mp4".into(), &garbage);
    write("garbage.ts".into(), &garbage);
    write("garbage.mkv".into(), &garbage[..1000]);
    // Boxes that declare huge sizes: the MP4's first box (ftyp) claims
    // 2 GiB, and a 64-bit box size claims 2^62 bytes.
    let mut big = std::fs::read(&fixtures[0]).unwrap();
    big[0..4].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    write("huge_declared_box.mp4".into(), &big);
    let mut big = std::fs::read(&fixtures[0]).unwrap();
    let ftyp = u32::from_be_bytes(big[0..4].try_into().unwrap()) as usize;
    // The box after ftyp becomes a 64-bit-size box of 2^62 bytes.
    big[ftyp..ftyp + 4].copy_from_slice(&1u32.to_be_bytes());
    big.splice(ftyp + 8..ftyp + 8, (1u64 << 62).to_be_bytes());
    write("huge_declared_box64.mp4".into(), &big);
    // A directory whose name looks like media.
    std::fs::create_dir(dir.join("folder.mkv")).unwrap();
    names.push("folder.mkv".into());
    // A good header followed by a huge (sparse) actual size.
    let huge = dir.join("huge_sparse.mkv");
    std::fs::copy(&fixtures[1], &huge).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    names.push("huge_sparse.mkv".into());
    // A file that cannot be read (root can still read it; then it plays).
    let locked = dir.join("locked.mp4");
    std::fs::copy(&fixtures[0], &locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    names.push("locked.mp4".into());
    names
}

/// This process's open file descriptors on files under `dirs` (the
/// test's media and the server's transcode dir): other tests run in the
/// same process at once, so its descriptors for everything else say
/// nothing about this server.
fn open_fds(dirs: &[&Path]) -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| {
        d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| dirs.iter().any(|d| target.starts_with(d)))
            .count()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_corrupted_files_each_get_a_clear_answer_while_another_session_streams() {
    let fixtures = [
        fixtures_dir().join("direct_h264_aac.mp4"),
        fixtures_dir().join("remux_h264_aac.mkv"),
        fixtures_dir().join("transcode_vp8_vorbis_20s.webm"),
    ];
    let media = tempfile::tempdir().unwrap();
    let names = make_variants(media.path(), &fixtures);
    assert!(names.len() >= 50, "{} variants", names.len());
    // The good file that keeps streaming meanwhile.
    std::os::unix::fs::symlink(&fixtures[2], media.path().join("good.webm")).unwrap();

    let fds_before = open_fds(&[media.path()]);
    let scan = Instant::now();
    let server = start_server_with(media.path(), |c| {
        c.library.probe_timeout = Duration::from_secs(5).into();
    })
    .await;
    let scan_time = scan.elapsed();
    println!("scanned {} files in {scan_time:?}", names.len() + 1);

    let good = server.media_id("good.webm").await;
    let started = server.start_hls(&good, BOB).await;
    let master = started["master_url"].as_str().unwrap().to_string();
    let playlist = fetch_master(&server, &master, BOB).await.variant;
    let base = server.base.clone();
    let streaming = {
        // Bob plays the good file segment by segment meanwhile.
        let client = server.client.clone();
        tokio::spawn(async move {
            let seg = |n: usize| format!("{base}{}", segment_url(&playlist, n));
            let mut bytes = 0;
            for n in 0..4 {
                loop {
                    let r = client.get(seg(n)).bearer_auth(BOB).send().await.unwrap();
                    match r.status().as_u16() {
                        200 => {
                            bytes += r.bytes().await.unwrap().len();
                            break;
                        }
                        503 => tokio::time::sleep(Duration::from_millis(200)).await,
                        s => panic!("good session: segment {n} got {s}"),
                    }
                }
            }
            bytes
        })
    };

    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for name in &names {
        let t0 = Instant::now();
        let list = server
            .get_json("/api/v1/media?limit=1000", ALICE, 200)
            .await;
        let Some(item) = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["path"] == name.as_str())
            .cloned()
        else {
            // Not a media file at all (the directory): not listed.
            *outcomes.entry("not listed".into()).or_default() += 1;
            continue;
        };
        let id = item["id"].as_str().unwrap();
        let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
        let status = r.status().as_u16();
        let outcome = match status {
            422 => {
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "unplayable", "{name}");
                "unplayable (422)".to_string()
            }
            200 | 206 => "direct play".to_string(),
            302 => {
                let location = r.headers()["location"].to_str().unwrap().to_string();
                let sid = server.session_behind(&location, ALICE).await;
                // It ends, one way or the other, within a bound.
                let deadline = Instant::now() + Duration::from_secs(60);
                let end = loop {
                    let v = session_view(&server, &sid, ALICE).await;
                    let state = v["state"].as_str().unwrap().to_string();
                    if matches!(state.as_str(), "complete" | "failed" | "idle") {
                        break v;
                    }
                    assert!(Instant::now() < deadline, "{name}: session hangs: {v}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                };
                if end["state"] == "failed" {
                    let message = end["error"].as_str().unwrap_or("");
                    assert!(!message.is_empty(), "{name}: failed without a message");
                    let r = server.get(&location, ALICE).await;
                    assert_eq!(r.status(), 500, "{name}");
                }
                let r = server.delete_session(&sid, ALICE).await;
                assert_eq!(r.status(), 204, "{name}");
                format!("hls {}", end["state"].as_str().unwrap())
            }
            s => panic!("{name}: /stream answered {s}"),
        };
        assert!(
            t0.elapsed() < Duration::from_secs(70),
            "{name}: took {:?}",
            t0.elapsed()
        );
        *outcomes.entry(outcome).or_default() += 1;
    }
    println!("outcomes: {outcomes:?}");
    assert_eq!(server.get("/healthz", ALICE).await.status(), 200);
    let bytes = streaming.await.expect("the good session kept streaming");
    assert!(bytes > 100_000, "{bytes} bytes");

    let dir = server.stop().await;
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
    // Pipelines and files are closed: no file of the media or the store
    // is open any more.
    let fds_after = open_fds(&[media.path(), &dir]);
    assert!(
        fds_after <= fds_before,
        "open files under the media and transcode dirs: {fds_before} -> {fds_after}"
    );
}

//! Scale-out (docs/deployment.md, "Scaling out"): three hlsd nodes on loopback ports
//! behind Debian's nginx running `deploy/nginx.conf`, over a remux file, a
//! small transcode file and two longer transcode films (48 s, 36 s). Checks, in order:
//! 1. affinity: every request for one item reaches one node;
//! 2. sharing: a second user's segments are all cache hits, and no node
//!    makes anything for them;
//! 3. tokens: a cached segment is refused without a good token;
//! 6. same bytes' place: a media playlist is the same from every node, and
//!    segment N made by each node starts within one frame of the others;
//! 4. and 5. the item's node is SIGKILLed while ffmpeg plays it at its
//!    pace, then started again: every segment arrives, the decoded output
//!    is whole and continuous, and the node takes its item back; then the
//!    same with hls.js in Chromium.

use crate::common::cluster::{free_port, nginx_binary, Access, Nginx, Node, SECRET};
use crate::common::*;
use hlsd::token::{now_unix_s, Grant, Signer};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const REMUX: &str = "remux_h264_aac.mkv";
const WEBM: &str = "transcode_vp8_vorbis_20s.webm";

/// One response a player got through nginx.
struct Fetched {
    url: String,
    node: String,
    cache: String,
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

/// Plays `master_url` through `front` as `token`: the master, every media
/// playlist it lists (until complete) and each of their segments. Every
/// response's node and cache status, and the video playlist's URL.
async fn play_through(front: &TestServer, master_url: &str, token: &str) -> (Vec<Fetched>, String) {
    let master = fetch_master(front, master_url, token).await;
    let r = front.get(master_url, token).await;
    assert_eq!(r.status(), 200);
    let mut out = vec![Fetched {
        url: master_url.to_string(),
        node: header(&r, "x-hlsd-node"),
        cache: header(&r, "x-cache-status"),
    }];
    for playlist in std::iter::once(&master.variant).chain(&master.audio) {
        let media = complete_playlist(front, playlist, token).await;
        let r = front.get(playlist, token).await;
        out.push(Fetched {
            url: playlist.clone(),
            node: header(&r, "x-hlsd-node"),
            cache: header(&r, "x-cache-status"),
        });
        for seg in &media.segments {
            let url = resolve(playlist, &seg.uri);
            let r = get_segment(front, &url, token).await;
            assert_eq!(r.status(), 200, "{url}");
            out.push(Fetched {
                url,
                node: header(&r, "x-hlsd-node"),
                cache: header(&r, "x-cache-status"),
            });
            assert!(!r.bytes().await.unwrap().is_empty());
        }
    }
    (out, master.variant)
}

/// What a node has made: producers started and media seconds in the
/// segments they made.
async fn made(node: &Node) -> (f64, f64) {
    (
        node.counter("hlsd_producers_started_total").await,
        node.counter("hlsd_media_seconds_total").await,
    )
}

/// Waits (up to 60 s) until no node runs a producer.
async fn all_idle(nodes: &[Node]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for node in nodes {
        while node.counter("hlsd_producers").await > 0.0 {
            assert!(Instant::now() < deadline, "{} stays busy", node.name);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The item's playlist, segments' node: which node answers a request
/// for it through nginx now.
async fn node_of(front: &TestServer, media_id: &str) -> String {
    let r = front.get(&format!("/api/v1/media/{media_id}"), ALICE).await;
    assert_eq!(r.status(), 200);
    header(&r, "x-hlsd-node")
}

/// Per stream of an ffmpeg `-f framecrc` output: (pts, duration) of each
/// frame in seconds, in order.
fn framecrc(text: &str) -> BTreeMap<usize, Vec<(f64, f64)>> {
    let mut time_base = BTreeMap::new();
    let mut frames: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(tb) = line.strip_prefix("#tb ") {
            let (stream, ratio) = tb.split_once(": ").unwrap();
            let (num, den) = ratio.split_once('/').unwrap();
            let tb = num.trim().parse::<f64>().unwrap() / den.trim().parse::<f64>().unwrap();
            time_base.insert(stream.parse::<usize>().unwrap(), tb);
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let stream: usize = f[0].parse().unwrap();
            let tb = time_base[&stream];
            let pts: f64 = f[2].parse().unwrap();
            let dur: f64 = f[3].parse().unwrap();
            frames.entry(stream).or_default().push((pts * tb, dur * tb));
        }
    }
    frames
}

/// Where a stream's frames skip time: (seconds from its first frame,
/// length in seconds) of each step over 1.5 frames.
fn holes(frames: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut pts: Vec<f64> = frames.iter().map(|f| f.0).collect();
    pts.sort_by(f64::total_cmp);
    let mut steps: Vec<f64> = pts.windows(2).map(|w| w[1] - w[0]).collect();
    steps.sort_by(f64::total_cmp);
    let typical = steps.get(steps.len() / 2).copied().unwrap_or(0.0);
    pts.windows(2)
        .filter(|w| w[1] - w[0] > typical * 1.5 + 0.001)
        .map(|w| (w[0] - pts[0], w[1] - w[0]))
        .collect()
}

/// Asserts that what a client decoded of one stream is continuous where
/// the source is (a hole only where the source has the same one, within
/// 50 ms) and spans `duration_s` within 0.5 s.
fn assert_continuous(what: &str, frames: &[(f64, f64)], source: &[(f64, f64)], duration_s: f64) {
    assert!(frames.len() > 10, "{what}: {} frames", frames.len());
    let in_source = holes(source);
    let new: Vec<(f64, f64)> = holes(frames)
        .into_iter()
        .filter(|(at, len)| {
            !in_source
                .iter()
                .any(|(s_at, s_len)| (at - s_at).abs() <= 0.05 && (len - s_len).abs() <= 0.05)
        })
        .collect();
    assert!(
        new.is_empty(),
        "{what}: holes the source does not have (at, length): {new:?}; the source's: {in_source:?}"
    );
    let first = frames.iter().map(|f| f.0).fold(f64::MAX, f64::min);
    let end = frames.iter().map(|f| f.0 + f.1).fold(f64::MIN, f64::max);
    let span = end - first;
    assert!(
        (span - duration_s).abs() <= 0.5,
        "{what}: {span:.2} s decoded of {duration_s:.2} s"
    );
    println!(
        "{what}: {} frames, {span:.2} s of {duration_s:.2} s, continuous (the source's own holes: {in_source:?})",
        frames.len()
    );
}

/// The decoded frames of `file`'s first video and audio streams, read
/// directly with ffmpeg: what a client should see.
fn source_frames(file: &std::path::Path) -> BTreeMap<usize, Vec<(f64, f64)>> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:v:0", "-map", "0:a:0", "-f", "framecrc", "-"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success());
    framecrc(&String::from_utf8_lossy(&out.stdout))
}

/// Kills `victim` once nginx has served `after` video segments of
/// `media_id`, starts it again `down` later; returns (killed, back) as
/// Unix seconds.
async fn kill_mid_play(
    nginx: &Nginx,
    victim: &mut Node,
    media_id: &str,
    after: usize,
    down: Duration,
) -> (f64, f64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let served = nginx
            .access_log()
            .iter()
            .filter(|a| a.is_segment_of(media_id) && a.uri.contains("/video") && a.status == 200)
            .count();
        if served >= after {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the player never got {after} segments"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    victim.kill();
    let killed = unix_now();
    println!("SIGKILL {} after {after} segments", victim.name);
    tokio::time::sleep(down).await;
    victim.restart().await;
    let back = unix_now();
    println!("{} is back after {:.1} s", victim.name, back - killed);
    (killed, back)
}

/// The status nginx at `base` answers `GET {path}` with, the path sent as
/// it is (no `..` resolved).
fn raw_get_status(base: &str, path: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let answer = String::from_utf8_lossy(&bytes);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:.200}"))
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// What nginx's log says of a played item's segments: each answered
/// with 200, at most twice each (one retry), some by another node while
/// `victim` was down, and (`taken_back`) some by `victim` after it came back.
fn assert_failover(
    log: &[Access],
    media_id: &str,
    victim: u16,
    killed: f64,
    back: f64,
    taken_back: bool,
) {
    let segments: Vec<&Access> = log.iter().filter(|a| a.is_segment_of(media_id)).collect();
    let mut per_path: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &segments {
        assert_eq!(a.status, 200, "a client got {} for {}", a.status, a.uri);
        *per_path
            .entry(a.uri.split('?').next().unwrap())
            .or_default() += 1;
    }
    let most = per_path.values().max().copied().unwrap_or(0);
    assert!(most <= 2, "a segment was asked for {most} times");
    let during: Vec<&&Access> = segments
        .iter()
        .filter(|a| a.at_s > killed && a.cache == "MISS")
        .collect();
    assert!(
        during.iter().any(|a| a.answered_by() != Some(victim)),
        "no segment was made elsewhere after the kill: {during:?}"
    );
    if taken_back {
        assert!(
            segments
                .iter()
                .any(|a| a.at_s > back && a.cache == "MISS" && a.answered_by() == Some(victim)),
            "the restarted node never took its item back: {segments:?}"
        );
    }
    let mut times: Vec<f64> = segments
        .iter()
        .filter(|a| a.uri.contains("/video"))
        .map(|a| a.at_s)
        .collect();
    times.sort_by(f64::total_cmp);
    let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    println!(
        "{} segment responses ({} paths); largest time between two video segments {gap:.2} s",
        segments.len(),
        per_path.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_nginx_share_one_cache_and_lose_no_viewer() {
    let Some(nginx_bin) = nginx_binary() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let media = tmp.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    for file in [REMUX, WEBM] {
        std::os::unix::fs::symlink(fixtures_dir().join(file), media.join(file)).unwrap();
    }
    let dir = media.clone();
    let films = tokio::task::spawn_blocking(move || {
        [make_long_avi(&dir, 48), make_long_avi(&dir, 36)]
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
    })
    .await
    .unwrap();
    let mut nodes = Vec::new();
    for i in 1..=3 {
        nodes.push(Node::start(&format!("node-{i}"), free_port(), &media, tmp.path()).await);
    }
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    let nginx = Nginx::start(&nginx_bin, &tmp.path().join("nginx"), &ports).await;
    let front = TestServer::remote(&nginx.base);
    let index_of = |nodes: &[Node], name: &str| nodes.iter().position(|n| n.name == name).unwrap();
    let mut owners = BTreeMap::new();
    for file in [REMUX, WEBM, &films[0], &films[1]] {
        let id = front.media_id(file).await;
        owners.insert(file.to_string(), node_of(&front, &id).await);
    }
    println!("items' nodes: {owners:?}");

    // 1. Affinity: Alice plays both items; every answer for one item
    // names one node.
    let mut variants = BTreeMap::new();
    let mut ids = BTreeMap::new();
    for file in [REMUX, WEBM] {
        let id = front.media_id(file).await;
        let r = front
            .get(&format!("/api/v1/stream/{id}?mode=hls"), ALICE)
            .await;
        assert_eq!(r.status(), 302, "{file}");
        let stream_node = header(&r, "x-hlsd-node");
        let master_url = header(&r, "location");
        let (fetched, variant) = play_through(&front, &master_url, ALICE).await;
        let seen: BTreeSet<&str> = fetched
            .iter()
            .map(|f| f.node.as_str())
            .chain([stream_node.as_str()])
            .collect();
        assert_eq!(seen.len(), 1, "{file}: answered by {seen:?}");
        // A start that names its item in the query goes there too.
        let r = front
            .client
            .post(front.url(&format!("/api/v1/hls/start?media_id={id}")))
            .bearer_auth(ALICE)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{file}");
        assert_eq!(
            header(&r, "x-hlsd-node"),
            stream_node,
            "{file}: start?media_id="
        );
        assert!(
            fetched.iter().all(|f| f.cache != "HIT"),
            "{file}: nothing cached yet"
        );
        println!("{file}: {} answers, all from {stream_node}", fetched.len());
        variants.insert(file, variant);
        ids.insert(file, id);
    }

    // 2. Sharing: Bob plays the same; nginx's cache answers every
    // segment, and no node makes anything.
    all_idle(&nodes).await;
    let mut before = Vec::new();
    for n in &nodes {
        before.push(made(n).await);
    }
    let mut bob_segments = Vec::new();
    for file in [REMUX, WEBM] {
        let r = front
            .get(&format!("/api/v1/stream/{}?mode=hls", ids[file]), BOB)
            .await;
        assert_eq!(r.status(), 302);
        let (fetched, _) = play_through(&front, &header(&r, "location"), BOB).await;
        let segments: Vec<&Fetched> = fetched.iter().filter(|f| f.url.contains(".ts?")).collect();
        assert!(!segments.is_empty());
        for f in &segments {
            assert_eq!(f.cache, "HIT", "{file}: {}", f.url);
        }
        println!("{file}: Bob's {} segments all cache hits", segments.len());
        bob_segments.push(segments[0].url.clone());
    }
    for (n, was) in nodes.iter().zip(&before) {
        assert_eq!(made(n).await, *was, "{} made something for Bob", n.name);
    }

    // 3. Tokens: a cached segment with no token, a forged one, an expired
    // one, another item's: refused by nginx before its cache answers.
    let cached = &bob_segments[1];
    let (path, query) = cached.split_once('?').unwrap();
    let token = query.strip_prefix("token=").unwrap();
    let (fields, mac) = token.split_once('.').unwrap();
    let forged = format!("{fields}.{}", mac.chars().rev().collect::<String>());
    let signer = Signer::new(SECRET.as_bytes());
    let grant = |media: &str, expires_unix_s: u64| Grant {
        user: "bob".into(),
        media_id: uuid::Uuid::parse_str(media).unwrap(),
        session_id: uuid::Uuid::new_v4(),
        player: 1,
        expires_unix_s,
    };
    let expired = signer.sign(&grant(&ids[WEBM], now_unix_s() - 60));
    let other = signer.sign(&grant(&ids[REMUX], now_unix_s() + 600));
    for (url, status) in [
        (path.to_string(), 401),
        (format!("{path}?token={forged}"), 403),
        (format!("{path}?token={expired}"), 403),
        (format!("{path}?token={other}"), 403),
        (cached.clone(), 200),
    ] {
        let r = front.client.get(front.url(&url)).send().await.unwrap();
        assert_eq!(r.status(), status, "{url}");
        if status == 200 {
            assert_eq!(header(&r, "x-cache-status"), "HIT");
        } else {
            let body: serde_json::Value = r.json().await.expect("a JSON error");
            assert!(body["error"]["code"].is_string(), "{body}");
        }
    }
    // Nor with a good token for another item, on a path that climbs out
    // of that item into this one (sent as is: HTTP clients resolve `..`).
    let remux_token = variants[REMUX].split("token=").nth(1).unwrap();
    let rest = path.split_once(&format!("/{}/", ids[WEBM])).unwrap().1;
    let climbing = format!(
        "/api/v1/hls/media/{}/x/../../{}/{rest}?token={remux_token}",
        ids[REMUX], ids[WEBM]
    );
    let status = raw_get_status(&nginx.base, &climbing);
    assert_eq!(status, 403, "{climbing}");

    // 6. Same bytes' place: asked directly, every node lists the same
    // media playlist, and makes segment N starting at the same frame.
    for file in [REMUX, WEBM] {
        let variant = &variants[file];
        let mut texts = BTreeSet::new();
        let mut starts = Vec::new();
        for node in &nodes {
            let direct = TestServer::remote(&node.base());
            let playlist = complete_playlist(&direct, variant, ALICE).await;
            texts.insert(direct.get(variant, ALICE).await.text().await.unwrap());
            let n = playlist.segments.len().min(3) - 1;
            let r = get_segment(&direct, &segment_url(variant, n), ALICE).await;
            assert_eq!(r.status(), 200);
            assert_eq!(header(&r, "x-hlsd-node"), node.name);
            let pts = video_pts(&r.bytes().await.unwrap()).expect("ffprobe");
            starts.push((node.name.clone(), n, pts[0], pts.len()));
        }
        assert_eq!(texts.len(), 1, "{file}: the nodes' playlists differ");
        let first: Vec<f64> = starts.iter().map(|s| s.2).collect();
        let spread = first.iter().cloned().fold(f64::MIN, f64::max)
            - first.iter().cloned().fold(f64::MAX, f64::min);
        println!("{file}: segment starts by node {starts:?}, spread {spread:.4} s");
        assert!(
            spread <= 0.034,
            "{file}: segment starts differ by {spread:.3} s"
        );
        let frames: BTreeSet<usize> = starts.iter().map(|s| s.3).collect();
        assert_eq!(frames.len(), 1, "{file}: frame counts differ: {starts:?}");
    }

    // 4. and 5. ffmpeg plays a 48 s film at its pace; its node dies after
    // 3 segments and comes back 4 s later.
    let film = front.media_id(&films[0]).await;
    let duration_s = front.media(&films[0]).await["duration_s"].as_f64().unwrap();
    let victim = index_of(&nodes, &node_of(&front, &film).await);
    let victim_port = nodes[victim].port;
    let crc = tmp.path().join("ffmpeg.crc");
    let ffmpeg = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "warning", "-re", "-i"])
        .arg(format!(
            "{}/api/v1/stream/{film}?api_key={ALICE}",
            nginx.base
        ))
        .args(["-map", "0:v:0", "-map", "0:a:0", "-f", "framecrc", "-y"])
        .arg(&crc)
        .kill_on_drop(true)
        .output();
    let started = unix_now();
    let (out, (killed, back)) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(180), ffmpeg),
        kill_mid_play(&nginx, &mut nodes[victim], &film, 3, Duration::from_secs(4))
    );
    let out = out.expect("ffmpeg finishes").expect("ffmpeg runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("ffmpeg stderr:\n{stderr}");
    assert!(out.status.success(), "ffmpeg failed: {stderr}");
    let trouble: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("fail") || l.contains("invalid")
        })
        .collect();
    assert!(trouble.is_empty(), "ffmpeg saw: {trouble:?}");
    let frames = framecrc(&std::fs::read_to_string(&crc).unwrap());
    let source = source_frames(&media.join(&films[0]));
    assert_continuous("ffmpeg video", &frames[&0], &source[&0], duration_s);
    assert_continuous("ffmpeg audio", &frames[&1], &source[&1], duration_s);
    let log = nginx.access_log();
    assert_failover(&log, &film, victim_port, killed, back, true);
    let first = log
        .iter()
        .filter(|a| a.is_segment_of(&film))
        .map(|a| a.at_s)
        .fold(f64::MAX, f64::min);
    println!("ffmpeg: first segment {:.2} s after start", first - started);

    // 4. again with hls.js in Chromium: Bob plays a 36 s film on the
    // page through nginx; its node dies after 2 segments, back 3 s later.
    if let Some(chromium) = chromium() {
        let film = front.media_id(&films[1]).await;
        let duration_s = front.media(&films[1]).await["duration_s"].as_f64().unwrap();
        let victim = index_of(&nodes, &node_of(&front, &film).await);
        let victim_port = nodes[victim].port;
        let args = [
            nginx.base.clone().into(),
            BOB.into(),
            films[1].clone().into(),
        ];
        let script = run_page_script("failover.mjs", &chromium, &args, Duration::from_secs(300));
        let (stdout, (killed, back)) = tokio::join!(
            script,
            kill_mid_play(&nginx, &mut nodes[victim], &film, 2, Duration::from_secs(3))
        );
        let result = page_result(&stdout);
        assert_eq!(result["ended"], true, "{result}");
        assert!(
            result["error"].is_null() && result["shown"] == "",
            "{result}"
        );
        let time = result["time"].as_f64().unwrap();
        assert!(
            (time - duration_s).abs() <= 0.5,
            "played to {time} of {duration_s}: {result}"
        );
        // A fetch may fail (its node died) and be retried once elsewhere;
        // a stall, at the start or then (hls.js: bufferStalledError past
        // 1 s; 1.8 s at the start on a loaded 2-core machine), must end
        // within one 6 s segment.
        let mut retries: BTreeMap<String, usize> = BTreeMap::new();
        for e in result["errors"].as_array().unwrap() {
            assert_eq!(e["fatal"], false, "{e}");
            if e["details"] == "bufferStalledError" {
                continue;
            }
            assert_eq!(e["type"], "networkError", "only a fetch may fail: {e}");
            *retries.entry(e["frag"].to_string()).or_default() += 1;
        }
        assert!(retries.values().all(|n| *n <= 1), "{retries:?}");
        let stalls = result["stalls"].as_array().unwrap();
        assert!(
            stalls.len() <= 3 && stalls.iter().all(|ms| ms.as_u64().unwrap() < 6000),
            "stalls (ms): {result}"
        );
        let buffered = result["buffered"].as_array().unwrap();
        assert_eq!(buffered.len(), 1, "a hole in what was buffered: {result}");
        assert!(buffered[0][0].as_f64().unwrap() <= 0.5, "{result}");
        assert!(
            buffered[0][1].as_f64().unwrap() >= duration_s - 0.5,
            "{result}"
        );
        println!("hls.js: {result}");
        assert_failover(&nginx.access_log(), &film, victim_port, killed, back, false);
    }

    // 5. Every item is its own node's again.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for (file, owner) in &owners {
        let id = front.media_id(file).await;
        assert_eq!(&node_of(&front, &id).await, owner, "{file}");
    }
    let errors = nginx.error_log();
    println!("nginx error log (end):\n{errors}");
    // Nothing is left running: nginx's workers stop with it.
    let children = nginx.children();
    assert!(!children.is_empty(), "nginx runs workers");
    drop(nginx);
    drop(nodes);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left: Vec<u32> = children
        .into_iter()
        .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
        .collect();
    assert!(left.is_empty(), "nginx processes left running: {left:?}");
}

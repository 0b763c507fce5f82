//! The SQLite catalogue: rows, key frames and the media dir it is for.

use super::*;
use crate::container::index::Source;
use std::time::Duration;

fn row(path: &str, size: u64) -> Row {
    Row {
        path: path.into(),
        stamp: FileStamp {
            size_bytes: size,
            mtime_ns: 1_700_000_000_123_456_789,
            inode: 42,
            device: 2049,
        },
        probe_version: PROBE_VERSION,
        info: MediaInfo {
            duration: Some(Duration::from_millis(12_345)),
            container: Some("matroska".into()),
            ..Default::default()
        },
    }
}

#[test]
fn rows_and_key_frames_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new("/srv/media");
    let stamp = row("a.mkv", 10).stamp;
    {
        let c = Catalogue::open_sqlite(dir.path(), root).expect("opens");
        c.put(&row("a.mkv", 10));
        c.put(&row("b/c.mp4", 20));
        let index = KeyframeIndex {
            keyframes: vec![Duration::ZERO, Duration::from_nanos(6_006_000_001)],
            end: Some(Duration::from_secs(12)),
            source: Source::Matroska,
            offsets: vec![4_000, 900_000],
            data_end: Some(1_800_000),
        };
        c.put_keyframes("a.mkv", stamp, &index);
        c.flush();
        assert_eq!(c.keyframes("a.mkv", stamp), Some(index));
    }
    let c = Catalogue::open_sqlite(dir.path(), root).expect("reopens");
    let mut rows = c.load().expect("loads");
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(rows, vec![row("a.mkv", 10), row("b/c.mp4", 20)]);
    assert_eq!(
        c.keyframes("a.mkv", stamp).map(|k| k.keyframes.len()),
        Some(2)
    );
    // Other content: the stored key frames are not its own.
    let changed = FileStamp {
        size_bytes: 11,
        ..stamp
    };
    assert_eq!(c.keyframes("a.mkv", changed), None);
    // A new probe of the file drops its key frames.
    c.put(&row("a.mkv", 10));
    c.flush();
    assert_eq!(c.keyframes("a.mkv", stamp), None);
    c.remove("b/c.mp4");
    c.flush();
    assert_eq!(c.load().expect("loads").len(), 1);
}

#[test]
fn key_frames_stored_before_offsets_were_read_are_read_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = Catalogue::open_sqlite(dir.path(), Path::new("/srv/media")).expect("opens");
    let stamp = row("a.mp4", 10).stamp;
    c.put(&row("a.mp4", 10));
    let index = KeyframeIndex {
        keyframes: vec![Duration::ZERO, Duration::from_secs(6)],
        end: None,
        source: Source::Mp4,
        offsets: Vec::new(),
        data_end: None,
    };
    c.put_keyframes("a.mp4", stamp, &index);
    c.flush();
    assert_eq!(c.keyframes("a.mp4", stamp), Some(index));
    let null = "UPDATE items SET keyframes_pos = NULL";
    rusqlite::Connection::open(dir.path().join(FILE_NAME))
        .and_then(|conn| conn.execute(null, []))
        .expect("update");
    assert_eq!(c.keyframes("a.mp4", stamp), None);
}

#[test]
fn another_media_dir_empties_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    Catalogue::open_sqlite(dir.path(), Path::new("/one"))
        .expect("opens")
        .put(&row("a.mkv", 10));
    let c = Catalogue::open_sqlite(dir.path(), Path::new("/two")).expect("opens");
    assert!(c.load().expect("loads").is_empty());
}

#[test]
fn a_catalogue_made_before_migrations_keeps_its_rows_and_positions() {
    // The schema hlsd wrote before its migrations, without `device` and
    // `keyframes_pos` (added later by hand), with a row and a position.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new("/srv/media");
    {
        let old = rusqlite::Connection::open(dir.path().join(FILE_NAME)).expect("opens");
        let info = serde_json::to_string(&row("a.mkv", 10).info).unwrap();
        old.execute_batch(&format!(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE items (path TEXT PRIMARY KEY, size INTEGER NOT NULL,
               mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
               probe_version INTEGER NOT NULL, info TEXT NOT NULL,
               keyframes BLOB, keyframes_end INTEGER, keyframes_src TEXT);
             CREATE TABLE progress (user TEXT NOT NULL, media_id TEXT NOT NULL,
               position_ms INTEGER NOT NULL, updated_s INTEGER NOT NULL,
               PRIMARY KEY (user, media_id));
             INSERT INTO meta VALUES ('media_root', '/srv/media');
             INSERT INTO items (path, size, mtime_ns, inode, probe_version, info)
               VALUES ('a.mkv', 10, 1700000000123456789, 42, 4, '{info}');
             INSERT INTO progress VALUES ('alice', 'x', 95000, 7);"
        ))
        .expect("the old schema");
    }
    let c = Catalogue::open_sqlite(dir.path(), root).expect("migrates");
    let rows = c.load().expect("loads");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].path, "a.mkv");
    // No device was kept: the row looks changed, and is probed again.
    assert_eq!(rows[0].stamp.device, 0);
    assert_eq!(
        c.read_progress("alice", "x").expect("reads"),
        Some((95_000, 7))
    );
    // The migrated catalogue takes new writes.
    c.put(&row("b.mkv", 20));
    c.flush();
    assert_eq!(c.load().expect("loads").len(), 2);
}

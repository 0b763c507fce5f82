//! Which files are media, and listing them: the whole media dir, one
//! folder, or only the folders whose modification time changed.

use super::item::FileStamp;
use super::sidecar;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Extensions of the files that are library items (compared ignoring
/// case). Video: the containers GStreamer demuxes (Matroska, MP4/MOV and
/// their variants, AVI, ASF/WMV, FLV, MPEG-TS/PS, Ogg, 3GP, MXF,
/// RealMedia, DV); audio: the same and the bare streams (MP3, AAC, AC-3,
/// DTS, FLAC, WAV, ...). Everything else (`.nfo`, `.txt`, `.jpg`,
/// `README.md`, partial downloads such as `.part`) is not listed;
/// subtitle files attach to the media file they sit beside
/// ([`sidecar`]).
pub const MEDIA_EXTENSIONS: &[&str] = &[
    // video
    "mkv", "mk3d", "webm", "mp4", "m4v", "mov", "qt", "avi", "divx", "wmv", "asf", "flv", "f4v",
    "ts", "m2ts", "mts", "m2t", "tp", "trp", "mpg", "mpeg", "mpe", "m1v", "m2v", "vob", "ogv",
    "ogm", "3gp", "3g2", "mxf", "rm", "rmvb", "dv", "nut", "evo", "h264", "264", "hevc", "265",
    // audio
    "mp3", "m4a", "m4b", "aac", "ac3", "eac3", "dts", "flac", "ogg", "oga", "opus", "spx", "wav",
    "wma", "aif", "aiff", "ape", "wv", "mka", "mpc", "amr", "au", "mp2", "tta", "caf",
];

/// Whether the file at `path` is a library item, by its extension.
pub fn is_media_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MEDIA_EXTENSIONS.iter().any(|m| m.eq_ignore_ascii_case(e)))
}

/// Whether a file or folder name is hidden (`.name`): never listed.
pub fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// What a listing found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Media files and their stamps.
    pub files: Vec<(PathBuf, FileStamp)>,
    /// Subtitle files, by folder.
    pub subtitles: HashMap<PathBuf, Vec<String>>,
    /// Every folder listed, with its modification time.
    pub dirs: HashMap<PathBuf, SystemTime>,
}

/// Lists `dir` and every folder below it (symlinks followed, hidden
/// entries skipped).
pub fn list(dir: &Path) -> Listing {
    let mut out = Listing::default();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !is_hidden(e.path()))
    {
        let entry = match entry {
            Ok(e) => e,
            Err(err) => {
                tracing::warn!(error = %err, "skipping unreadable entry");
                continue;
            }
        };
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_dir() {
            out.dirs.insert(
                entry.path().to_path_buf(),
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            );
        } else if meta.is_file() {
            add_file(&mut out, entry.into_path(), &meta);
        }
    }
    out
}

fn add_file(out: &mut Listing, path: PathBuf, meta: &std::fs::Metadata) {
    if is_media_file(&path) {
        out.files.push((path, FileStamp::of(meta)));
    } else if sidecar::is_subtitle_file(&path) {
        if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
            out.subtitles
                .entry(parent.to_path_buf())
                .or_default()
                .push(super::id::name_text(name));
        }
    }
}

/// Lists what changed below the folders of `known` (folder → its
/// modification time at the last listing): a folder whose mtime is
/// unchanged is not read (files added, removed or renamed change their
/// folder's mtime); a changed folder is read, and a new folder below it
/// is listed whole. Folders gone from disk are in `gone`.
pub fn list_changed(known: &HashMap<PathBuf, SystemTime>) -> (Listing, Vec<PathBuf>, Vec<PathBuf>) {
    let mut out = Listing::default();
    let mut changed = Vec::new();
    let mut gone = Vec::new();
    for (dir, mtime) in known {
        match std::fs::metadata(dir) {
            Err(_) => gone.push(dir.clone()),
            Ok(meta) if !meta.is_dir() => gone.push(dir.clone()),
            Ok(meta) => {
                let now = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                if now == *mtime {
                    continue;
                }
                changed.push(dir.clone());
                out.dirs.insert(dir.clone(), now);
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                for entry in entries.filter_map(Result::ok) {
                    let path = entry.path();
                    if is_hidden(&path) {
                        continue;
                    }
                    let Ok(meta) = std::fs::metadata(&path) else {
                        continue;
                    };
                    if meta.is_dir() {
                        if !known.contains_key(&path) {
                            let below = list(&path);
                            changed.extend(below.dirs.keys().cloned());
                            out.files.extend(below.files);
                            out.subtitles.extend(below.subtitles);
                            out.dirs.extend(below.dirs);
                        }
                    } else if meta.is_file() {
                        add_file(&mut out, path, &meta);
                    }
                }
            }
        }
    }
    (out, changed, gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_files_are_known_by_extension() {
        for yes in ["a/film.MKV", "b.mp4", "c.m4b", "song.flac", "x.ts", "y.WMA"] {
            assert!(is_media_file(Path::new(yes)), "{yes}");
        }
        for no in [
            "README.md",
            "film.nfo",
            "cover.jpg",
            "film.mkv.part",
            "film.srt",
            "noext",
        ] {
            assert!(!is_media_file(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn changed_folders_only_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir(root.join("a")).expect("mkdir");
        std::fs::create_dir(root.join("b")).expect("mkdir");
        std::fs::write(root.join("a/one.mkv"), b"x").expect("write");
        std::fs::write(root.join("b/two.mkv"), b"x").expect("write");
        std::fs::write(root.join("b/two.en.srt"), b"x").expect("write");
        std::fs::write(root.join("b/notes.nfo"), b"x").expect("write");
        let first = list(root);
        assert_eq!(first.files.len(), 2);
        assert_eq!(first.subtitles.values().flatten().count(), 1);
        assert_eq!(first.dirs.len(), 3);

        // Nothing changed: nothing read.
        let (l, changed, gone) = list_changed(&first.dirs);
        assert!(l.files.is_empty() && changed.is_empty() && gone.is_empty());

        // A new file in a, a new folder c, b removed.
        let mut known = first.dirs.clone();
        // Folder mtimes have a coarse granularity on some file systems:
        // forget the recorded ones to make the change certain.
        known.insert(root.join("a"), SystemTime::UNIX_EPOCH);
        known.insert(root.to_path_buf(), SystemTime::UNIX_EPOCH);
        std::fs::write(root.join("a/three.mp4"), b"x").expect("write");
        std::fs::create_dir(root.join("c")).expect("mkdir");
        std::fs::write(root.join("c/four.webm"), b"x").expect("write");
        std::fs::remove_dir_all(root.join("b")).expect("rm");
        let (l, _, gone) = list_changed(&known);
        let mut names: Vec<String> = l
            .files
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        names.sort();
        assert_eq!(names, vec!["four.webm", "one.mkv", "three.mp4"]);
        assert_eq!(gone, vec![root.join("b")]);
    }
}

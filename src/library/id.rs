//! Stable media ids (a UUIDv5 of the file's path relative to the media
//! dir), and file names as text without loss.
//!
//! Linux allows any bytes but `/` and NUL in a file name, and an old
//! archive holds Latin-1 names that are not UTF-8. A name is kept as text
//! (the catalogue's key, the item's path, what crosses the prober's pipe)
//! by [`encode`]: its UTF-8 runs as they are, each byte that is not part
//! of one as `//` and two hex digits, which no path of components joined
//! by single slashes can contain. A UTF-8 name's text is the name itself,
//! so its id and its catalogue row are what they always were; [`decode`]
//! gives the bytes back, and [`display`] a name for people (U+FFFD for
//! each byte that is not UTF-8).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use uuid::Uuid;

/// The namespace all media ids are derived in: UUIDv5("hlsd:media") in the
/// URL namespace (RFC 9562 §5.5), fixed so that ids survive restarts.
fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"hlsd:media")
}

/// The escape that starts a byte that is not UTF-8 (see the module doc).
const ESCAPE: &str = "//";

/// `bytes` as text without loss (see the module doc).
fn encode_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(ESCAPE);
            out.push_str(&format!("{b:02x}"));
        }
    }
    out
}

/// `path` as text without loss: its bytes, escaped where they are not
/// UTF-8. Normalised as [`Path::components`] does (no `//`, no `.`), so
/// the escape cannot be mistaken for a separator.
pub fn encode(path: &Path) -> String {
    let mut bytes = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir => bytes.push(b'/'),
            Component::Normal(s) => {
                if !bytes.is_empty() && bytes.last() != Some(&b'/') {
                    bytes.push(b'/');
                }
                bytes.extend_from_slice(s.as_bytes());
            }
            Component::ParentDir => {
                if !bytes.is_empty() && bytes.last() != Some(&b'/') {
                    bytes.push(b'/');
                }
                bytes.extend_from_slice(b"..");
            }
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
    encode_bytes(&bytes)
}

/// The path [`encode`] made `text` of.
pub fn decode(text: &str) -> PathBuf {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(ESCAPE) {
        bytes.extend_from_slice(&rest.as_bytes()[..at]);
        let hex = rest.get(at + 2..at + 4);
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) => {
                bytes.push(b);
                rest = &rest[at + 4..];
            }
            None => {
                bytes.extend_from_slice(ESCAPE.as_bytes());
                rest = &rest[at + 2..];
            }
        }
    }
    bytes.extend_from_slice(rest.as_bytes());
    PathBuf::from(OsString::from_vec(bytes))
}

/// An encoded path for people: U+FFFD for each escaped byte.
pub fn display(text: &str) -> String {
    decode(text).to_string_lossy().into_owned()
}

/// The relative path in its portable spelling, without loss: components
/// joined by `/`, whatever the platform's separator, so an id is the same
/// on every OS; the item's path and its catalogue key.
pub fn portable_path(relative: &Path) -> String {
    let normal: PathBuf = relative
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    encode(&normal)
}

/// The id of the file at `relative` (a path relative to `--media-dir`).
pub fn media_id(relative: &Path) -> Uuid {
    Uuid::new_v5(&namespace(), portable_path(relative).as_bytes())
}

/// A file name (one component) as text without loss, for matching names
/// (a sidecar's to its film's).
pub fn name_text(name: &std::ffi::OsStr) -> String {
    encode_bytes(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_stable_and_path_dependent() {
        let a = media_id(Path::new("films/a.mkv"));
        assert_eq!(a, media_id(Path::new("films/a.mkv")));
        assert_ne!(a, media_id(Path::new("films/b.mkv")));
        assert_eq!(a.get_version_num(), 5);
        // Known value: guards against an accidental change of namespace,
        // which would break every client's stored ids.
        assert_eq!(a.to_string(), "b3b906e8-e706-5bc3-8cf6-2d68dbe6d7c4");
    }

    #[test]
    fn id_ignores_leading_dot_components() {
        assert_eq!(
            media_id(Path::new("./films/a.mkv")),
            media_id(Path::new("films/a.mkv"))
        );
    }

    #[test]
    fn names_that_are_not_utf8_survive_as_text() {
        let latin1 = PathBuf::from(OsString::from_vec(b"films/caf\xe9 \xff.avi".to_vec()));
        let text = portable_path(&latin1);
        assert_eq!(text, "films/caf//e9 //ff.avi");
        assert_eq!(decode(&text), latin1);
        assert_eq!(display(&text), "films/caf\u{FFFD} \u{FFFD}.avi");
        // UTF-8 names are themselves, escapes and all that looks like one.
        for name in ["Amélie/東京.mkv", "a #1 ?%20.mkv", "100%.mp4"] {
            assert_eq!(portable_path(Path::new(name)), name);
            assert_eq!(decode(name), PathBuf::from(name));
        }
        // Two names that differ only in their bytes that are not UTF-8
        // have two ids.
        let other = PathBuf::from(OsString::from_vec(b"films/caf\xe8 \xff.avi".to_vec()));
        assert_ne!(media_id(&latin1), media_id(&other));
        let abs = PathBuf::from(OsString::from_vec(b"/media/caf\xe9.avi".to_vec()));
        assert_eq!(decode(&encode(&abs)), abs);
    }
}

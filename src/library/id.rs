//! Stable media ids: a UUIDv5 of the file's path relative to the media dir.

use std::path::{Component, Path};
use uuid::Uuid;

/// The namespace all media ids are derived in: UUIDv5("hlsd:media") in the
/// URL namespace (RFC 9562 §5.5), fixed so that ids survive restarts.
fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"hlsd:media")
}

/// The relative path in its portable spelling: components joined by `/`,
/// whatever the platform's separator, so an id is the same on every OS.
pub fn portable_path(relative: &Path) -> String {
    relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The id of the file at `relative` (a path relative to `--media-dir`).
pub fn media_id(relative: &Path) -> Uuid {
    Uuid::new_v5(&namespace(), portable_path(relative).as_bytes())
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
}

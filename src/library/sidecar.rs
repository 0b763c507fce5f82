//! Sidecar subtitle files: `film.srt`, `film.en.srt`, `film.fr.forced.vtt`,
//! `film.de.sdh.ass` beside `film.mkv` belong to it. Language, forced and
//! SDH are read from the words between the media file's stem and the
//! extension, in any order (the convention of Jellyfin, Plex and Kodi).

use super::language;
use super::streams::{SubtitleKind, SubtitleSource, SubtitleStream};
use std::path::{Path, PathBuf};

/// Subtitle file extensions and their codec names.
const EXTENSIONS: &[(&str, &str)] = &[
    ("srt", "subrip"),
    ("vtt", "webvtt"),
    ("ass", "ass"),
    ("ssa", "ass"),
];

/// The codec of a subtitle file, by its extension.
fn codec_of(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    EXTENSIONS
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, codec)| *codec)
}

/// Whether `path` is a subtitle file (listed with its media file, never as
/// an item of its own).
pub fn is_subtitle_file(path: &Path) -> bool {
    codec_of(path).is_some()
}

/// What a sidecar's name says about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameTags {
    /// Its language, normalised ([`language::normalize`]).
    pub language: Option<String>,
    /// `.forced.` or `.foreign.`.
    pub forced: bool,
    /// `.sdh.` or `.cc.`.
    pub sdh: bool,
    /// `.default.`.
    pub default: bool,
}

/// The tags in `file_name` if it is a sidecar of a media file whose name
/// without extension is `stem`; `None` if it is not one of its sidecars.
pub fn parse(stem: &str, file_name: &str) -> Option<NameTags> {
    codec_of(Path::new(file_name))?;
    let without_ext = &file_name[..file_name.rfind('.')?];
    let rest = without_ext.strip_prefix(stem)?;
    if !(rest.is_empty() || rest.starts_with('.')) {
        return None;
    }
    let mut tags = NameTags::default();
    for word in rest.split('.').filter(|w| !w.is_empty()) {
        match word.to_ascii_lowercase().as_str() {
            "forced" | "foreign" => tags.forced = true,
            "sdh" | "cc" => tags.sdh = true,
            "default" => tags.default = true,
            other => {
                if tags.language.is_none() {
                    tags.language = language::normalize(other);
                }
            }
        }
    }
    Some(tags)
}

/// The sidecars of the media file at `media`, by name, numbered from
/// `first_index` on. Unreadable folders give none.
pub fn find(media: &Path, first_index: usize) -> Vec<SubtitleStream> {
    let (Some(dir), Some(stem)) = (media.parent(), media.file_stem().map(super::id::name_text))
    else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
        .map(|e| (super::id::name_text(&e.file_name()), e.path()))
        .filter(|(name, path)| path != media && !name.starts_with('.'))
        .collect();
    found.sort();
    found
        .into_iter()
        .filter_map(|(name, path)| {
            let tags = parse(&stem, &name)?;
            let codec = codec_of(&path)?;
            Some((name, path, tags, codec))
        })
        .enumerate()
        .map(|(i, (name, path, tags, codec))| SubtitleStream {
            index: first_index + i,
            codec: codec.to_string(),
            kind: SubtitleKind::Text,
            language: tags.language,
            title: None,
            forced: tags.forced,
            default: tags.default,
            source: SubtitleSource::Sidecar {
                file: name,
                sdh: tags.sdh,
                path,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_language_forced_and_sdh() {
        assert_eq!(parse("film", "film.srt"), Some(NameTags::default()));
        assert_eq!(
            parse("film", "film.en.srt").and_then(|t| t.language),
            Some("en".into())
        );
        let t = parse("film", "film.fr.forced.vtt").expect("sidecar");
        assert_eq!(
            (t.language.as_deref(), t.forced, t.sdh),
            (Some("fr"), true, false)
        );
        let t = parse("film", "film.de.sdh.ass").expect("sidecar");
        assert_eq!(
            (t.language.as_deref(), t.forced, t.sdh),
            (Some("de"), false, true)
        );
        let t = parse("film", "film.ger.SDH.srt").expect("sidecar");
        assert_eq!((t.language.as_deref(), t.sdh), (Some("de"), true));
    }

    #[test]
    fn other_files_are_not_sidecars() {
        assert_eq!(parse("film", "film2.en.srt"), None);
        assert_eq!(parse("film", "film.mkv"), None);
        assert_eq!(parse("film", "other.srt"), None);
        assert!(is_subtitle_file(Path::new("a/b.SRT")));
        assert!(!is_subtitle_file(Path::new("a/b.mkv")));
    }

    #[test]
    fn find_lists_the_sidecars_beside_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["film.mkv", "film.en.srt", "film.fr.forced.vtt", "other.srt"] {
            std::fs::write(dir.path().join(name), b"x").expect("write");
        }
        let found = find(&dir.path().join("film.mkv"), 2);
        let names: Vec<(usize, Option<&str>, bool)> = found
            .iter()
            .map(|s| (s.index, s.language.as_deref(), s.forced))
            .collect();
        assert_eq!(names, vec![(2, Some("en"), false), (3, Some("fr"), true)]);
    }
}

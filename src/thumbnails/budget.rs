//! The thumbnail sheets' disk budget: which files' sheets go when the
//! sheets of every file together pass it. Pure.
//!
//! Each file's sheets are one folder; the folders whose last sheet was
//! made longest ago go first, never one whose sheets are being made.

use std::time::SystemTime;

/// One file's sheets on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// Its name (the file's identity).
    pub name: String,
    /// Bytes its sheets hold.
    pub bytes: u64,
    /// When its last sheet was made.
    pub made: SystemTime,
}

/// The folders to delete so that the rest hold at most `budget_bytes`,
/// least recently made first, none of `keep`.
pub fn to_evict(folders: &[Folder], budget_bytes: u64, keep: &[&str]) -> Vec<String> {
    let mut total: u64 = folders.iter().map(|f| f.bytes).sum();
    let mut oldest: Vec<&Folder> = folders
        .iter()
        .filter(|f| !keep.contains(&f.name.as_str()))
        .collect();
    oldest.sort_by_key(|f| (f.made, f.name.clone()));
    let mut out = Vec::new();
    for f in oldest {
        if total <= budget_bytes {
            break;
        }
        total -= f.bytes;
        out.push(f.name.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn folder(name: &str, bytes: u64, age_s: u64) -> Folder {
        Folder {
            name: name.into(),
            bytes,
            made: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 - age_s),
        }
    }

    #[test]
    fn the_least_recently_made_go_first_until_the_rest_fit() {
        let folders = [
            folder("a", 400, 50),
            folder("b", 300, 500),
            folder("c", 300, 10),
            folder("d", 200, 900),
        ];
        assert_eq!(to_evict(&folders, 2_000, &["c"]), Vec::<String>::new());
        assert_eq!(to_evict(&folders, 900, &["c"]), ["d", "b"]);
        // The ones being made stay, even alone over the budget.
        assert_eq!(to_evict(&folders, 100, &["c"]), ["d", "b", "a"]);
        assert_eq!(to_evict(&folders, 100, &["c", "d"]), ["b", "a"]);
        assert_eq!(
            to_evict(&[folder("c", 5_000, 0)], 100, &["c"]),
            Vec::<String>::new()
        );
    }
}

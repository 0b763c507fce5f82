//! The library in memory: items by path (in path order, for paging) and
//! by id, the ids of items whose file went away, and a generation that
//! changes with every change (the list's `ETag`). Pure data.

use super::decision::Playback;
use super::item::MediaItem;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use uuid::Uuid;

/// How many ids of deleted files are remembered, to answer `media_gone`
/// rather than `not_found`.
const GONE_KEPT: usize = 10_000;

/// Most items in one page of `GET /api/v1/media`.
pub const MAX_PAGE: usize = 1000;

/// Items in a page when the client does not say.
pub const DEFAULT_PAGE: usize = 200;

/// What a lookup by id found.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A listed item.
    Found(Arc<MediaItem>),
    /// An item whose file was deleted: its path.
    Gone(String),
    /// No such item.
    Unknown,
}

/// Which items a page lists, by how they play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaybackFilter {
    /// Items that play this way.
    Mode(Playback),
    /// Probed items that cannot be played.
    Unplayable,
    /// Items not probed yet.
    Pending,
}

impl std::str::FromStr for PlaybackFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "direct_play" => PlaybackFilter::Mode(Playback::DirectPlay),
            "remux" => PlaybackFilter::Mode(Playback::Remux),
            "transcode" => PlaybackFilter::Mode(Playback::Transcode),
            "unplayable" => PlaybackFilter::Unplayable,
            "pending" => PlaybackFilter::Pending,
            other => {
                return Err(format!(
                    "playback must be direct_play, remux, transcode, unplayable or pending, not {other:?}"
                ))
            }
        })
    }
}

/// A page request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// Items to skip, in path order, after filtering.
    pub offset: usize,
    /// Items to return (at most [`MAX_PAGE`]).
    pub limit: usize,
    /// Only paths that start with this (a folder: `shows/`).
    pub path: Option<String>,
    /// Only paths that contain this, ignoring case (a search box).
    pub search: Option<String>,
    /// Only items that play this way.
    pub playback: Option<PlaybackFilter>,
}

/// One page of the library.
#[derive(Debug, Clone)]
pub struct Page {
    /// Items matching the filters, in all pages.
    pub total: usize,
    /// This page's items, in path order.
    pub items: Vec<Arc<MediaItem>>,
    /// The library's generation when the page was cut.
    pub generation: u64,
}

/// The items, by path and by id.
#[derive(Debug, Default)]
pub struct Items {
    by_path: BTreeMap<String, Arc<MediaItem>>,
    by_id: HashMap<Uuid, String>,
    gone: HashMap<Uuid, String>,
    gone_order: VecDeque<Uuid>,
    generation: u64,
    pending: usize,
}

impl Items {
    /// Adds `item`, or replaces the item at its path.
    pub fn insert(&mut self, item: Arc<MediaItem>) {
        self.generation += 1;
        self.gone.remove(&item.id);
        self.by_id.insert(item.id, item.path.clone());
        if !item.probed {
            self.pending += 1;
        }
        if let Some(old) = self.by_path.insert(item.path.clone(), item) {
            if !old.probed {
                self.pending -= 1;
            }
        }
    }

    /// Removes the item at `path`; its id then looks up as [`Lookup::Gone`].
    pub fn remove(&mut self, path: &str) -> Option<Arc<MediaItem>> {
        let old = self.by_path.remove(path)?;
        self.generation += 1;
        if !old.probed {
            self.pending -= 1;
        }
        self.by_id.remove(&old.id);
        self.gone.insert(old.id, old.path.clone());
        self.gone_order.push_back(old.id);
        while self.gone_order.len() > GONE_KEPT {
            if let Some(id) = self.gone_order.pop_front() {
                if !self.by_id.contains_key(&id) {
                    self.gone.remove(&id);
                }
            }
        }
        Some(old)
    }

    /// The item at `path`.
    pub fn at(&self, path: &str) -> Option<&Arc<MediaItem>> {
        self.by_path.get(path)
    }

    /// The item with this id.
    pub fn get(&self, id: &Uuid) -> Lookup {
        if let Some(path) = self.by_id.get(id) {
            if let Some(item) = self.by_path.get(path) {
                return Lookup::Found(item.clone());
            }
        }
        match self.gone.get(id) {
            Some(path) => Lookup::Gone(path.clone()),
            None => Lookup::Unknown,
        }
    }

    /// Paths of the items in folder `dir` (`""`: the root) and below.
    pub fn paths_under(&self, dir: &str) -> Vec<String> {
        let prefix = if dir.is_empty() || dir.ends_with('/') {
            dir.to_string()
        } else {
            format!("{dir}/")
        };
        self.by_path
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Paths of the items directly in folder `dir` (`""`: the root).
    pub fn paths_in(&self, dir: &str) -> Vec<String> {
        self.paths_under(dir)
            .into_iter()
            .filter(|p| {
                let rest = if dir.is_empty() {
                    p.as_str()
                } else {
                    &p[dir.len() + 1..]
                };
                !rest.contains('/')
            })
            .collect()
    }

    /// How many items there are, and how many wait to be probed.
    pub fn counts(&self) -> (usize, usize) {
        (self.by_path.len(), self.pending)
    }

    /// The page `q` asks for.
    pub fn page(&self, q: &PageQuery) -> Page {
        let search = q.search.as_ref().map(|s| s.to_lowercase());
        let start = q.path.clone().unwrap_or_default();
        let matching = self
            .by_path
            .range(start.clone()..)
            .take_while(|(p, _)| p.starts_with(&start))
            .map(|(_, item)| item)
            .filter(|item| {
                search
                    .as_ref()
                    .is_none_or(|s| item.path.to_lowercase().contains(s))
            })
            .filter(|item| match q.playback {
                None => true,
                Some(PlaybackFilter::Pending) => !item.probed,
                Some(PlaybackFilter::Unplayable) => item.probed && item.playback.is_none(),
                Some(PlaybackFilter::Mode(m)) => item.playback == Some(m),
            });
        let mut total = 0;
        let mut items = Vec::new();
        let limit = q.limit.min(MAX_PAGE);
        for item in matching {
            if total >= q.offset && items.len() < limit {
                items.push(item.clone());
            }
            total += 1;
        }
        Page {
            total,
            items,
            generation: self.generation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FileStamp, MediaInfo};
    use super::*;
    use std::path::Path;

    fn item(path: &str, probed: bool) -> Arc<MediaItem> {
        let root = Path::new("/m");
        let abs = root.join(path);
        Arc::new(if probed {
            MediaItem::from_probe(
                root,
                &abs,
                FileStamp::default(),
                &MediaInfo::default(),
                super::super::decide(&MediaInfo::default()),
            )
        } else {
            MediaItem::pending(root, &abs, FileStamp::default())
        })
    }

    #[test]
    fn pages_list_every_item_once_in_path_order() {
        let mut items = Items::default();
        for i in (0..25).rev() {
            items.insert(item(&format!("f{i:02}.mkv"), i % 2 == 0));
        }
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let page = items.page(&PageQuery {
                offset,
                limit: 7,
                ..Default::default()
            });
            assert_eq!(page.total, 25);
            if page.items.is_empty() {
                break;
            }
            offset += page.items.len();
            seen.extend(page.items.iter().map(|i| i.path.clone()));
        }
        let expected: Vec<String> = (0..25).map(|i| format!("f{i:02}.mkv")).collect();
        assert_eq!(seen, expected);
        assert_eq!(items.counts(), (25, 12));
        let pending = items.page(&PageQuery {
            limit: 100,
            playback: Some(PlaybackFilter::Pending),
            ..Default::default()
        });
        assert_eq!(pending.total, 12);
    }

    #[test]
    fn folders_and_search_filter() {
        let mut items = Items::default();
        for p in ["a/x.mkv", "a/b/y.mkv", "ab.mkv", "c/Film X.mp4"] {
            items.insert(item(p, true));
        }
        assert_eq!(items.paths_under("a"), vec!["a/b/y.mkv", "a/x.mkv"]);
        assert_eq!(items.paths_in("a"), vec!["a/x.mkv"]);
        assert_eq!(items.paths_in(""), vec!["ab.mkv"]);
        let q = |path: Option<&str>, search: Option<&str>| {
            items
                .page(&PageQuery {
                    limit: 10,
                    path: path.map(str::to_string),
                    search: search.map(str::to_string),
                    ..Default::default()
                })
                .total
        };
        assert_eq!(q(Some("a/"), None), 2);
        assert_eq!(q(None, Some("film x")), 1);
        assert_eq!(q(None, Some("X")), 2);
    }

    #[test]
    fn removed_items_look_up_as_gone_and_change_the_generation() {
        let mut items = Items::default();
        let a = item("a.mkv", true);
        items.insert(a.clone());
        let generation = |items: &Items| items.page(&PageQuery::default()).generation;
        let g = generation(&items);
        assert!(matches!(items.get(&a.id), Lookup::Found(_)));
        items.remove("a.mkv");
        assert!(generation(&items) > g);
        assert!(matches!(items.get(&a.id), Lookup::Gone(p) if p == "a.mkv"));
        assert!(matches!(items.get(&Uuid::nil()), Lookup::Unknown));
        items.insert(a.clone());
        assert!(matches!(items.get(&a.id), Lookup::Found(_)));
    }
}

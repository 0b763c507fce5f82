//! Titles and producers for unit tests: no file, no pipeline.

use super::{Producer, Title};
use crate::library::{FileStamp, MediaItem, Playback};
use crate::pipeline::Throttle;
use crate::store::SegmentStore;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The item of a file `/m/a.mkv` of 1 byte, probed with nothing in it.
pub fn item() -> MediaItem {
    let root = Path::new("/m");
    let stamp = FileStamp {
        size_bytes: 1,
        ..Default::default()
    };
    MediaItem::from_probe(
        root,
        &root.join("a.mkv"),
        stamp,
        &Default::default(),
        Default::default(),
    )
}

/// A title of [`item`]: see [`title_of`].
pub fn title(margin: Option<Duration>, budget_bytes: Option<u64>) -> Arc<Title> {
    title_of(item(), margin, budget_bytes)
}

/// A title of `item` with no renditions of its own, its store at a path
/// that does not exist (nothing is written), its timeline still building.
/// `margin` is its throttle margin, `budget_bytes` its store's budget.
pub fn title_of(
    item: MediaItem,
    margin: Option<Duration>,
    budget_bytes: Option<u64>,
) -> Arc<Title> {
    let store = Arc::new(SegmentStore::new("/nonexistent".into(), budget_bytes));
    Arc::new(Title::new(
        "t".into(),
        Arc::new(item),
        Vec::new(),
        Vec::new(),
        store,
        2,
        margin,
    ))
}

/// A producer of rendition 0 from segment `start`, added to `title`.
pub fn producer(title: &Title, id: u64, start: usize) -> Arc<Producer> {
    let p = Arc::new(Producer::new(
        id,
        vec![0],
        start,
        title.timeline().map(|t| t.start(start)).unwrap_or_default(),
        Playback::Remux,
        Arc::new(Throttle::new(None)),
    ));
    title.add_producer(p.clone());
    p
}

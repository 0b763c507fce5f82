//! Playback positions: where each user stopped watching each item, kept in
//! the catalogue database so that a viewer resumes there on any device and
//! after a restart (`PUT`/`GET /api/v1/progress/{media_id}`).

use super::catalogue::Catalogue;
use serde::Serialize;
use uuid::Uuid;

/// A stored position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    /// The item.
    pub media_id: Uuid,
    /// Seconds into it, to the millisecond.
    pub position_s: f64,
    /// When it was stored, seconds since the Unix epoch.
    pub updated_unix_s: i64,
}

impl Catalogue {
    /// Stores `user`'s position in `media_id`: `position_s` seconds
    /// (finite, not negative), at `now_unix_s`; waits until it is written
    /// (blocking: callers in async code use `spawn_blocking`).
    ///
    /// # Errors
    /// Fails when the database cannot be written.
    pub fn put_progress(
        &self,
        user: &str,
        media_id: &Uuid,
        position_s: f64,
        now_unix_s: i64,
    ) -> anyhow::Result<()> {
        let ms = (position_s.max(0.0) * 1000.0).round() as i64;
        self.write_progress(user, &media_id.to_string(), ms, now_unix_s)
    }

    /// `user`'s stored position in `media_id`, if any.
    ///
    /// # Errors
    /// Fails when the database cannot be read.
    pub fn progress(&self, user: &str, media_id: &Uuid) -> anyhow::Result<Option<Progress>> {
        let found = self.read_progress(user, &media_id.to_string())?;
        Ok(found.map(|(ms, updated)| Progress {
            media_id: *media_id,
            position_s: ms as f64 / 1000.0,
            updated_unix_s: updated,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_kept_per_user_and_item_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalogue::open_sqlite(dir.path(), dir.path()).unwrap();
        let film = Uuid::new_v4();
        assert_eq!(c.progress("alice", &film).unwrap(), None);
        c.put_progress("alice", &film, 95.0004, 10).unwrap();
        c.put_progress("bob", &film, 12.5, 11).unwrap();
        let p = c.progress("alice", &film).unwrap().unwrap();
        assert_eq!((p.position_s, p.updated_unix_s), (95.0, 10));
        c.put_progress("alice", &film, 120.25, 20).unwrap();
        assert_eq!(
            c.progress("alice", &film).unwrap().unwrap().position_s,
            120.25
        );
        assert_eq!(c.progress("bob", &film).unwrap().unwrap().position_s, 12.5);
        // Kept across a reopen.
        drop(c);
        let c = Catalogue::open_sqlite(dir.path(), dir.path()).unwrap();
        assert_eq!(
            c.progress("alice", &film).unwrap().unwrap().position_s,
            120.25
        );
    }
}

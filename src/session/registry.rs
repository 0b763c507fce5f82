//! The session registry: two indexes over the same sessions.
//!
//! Plain data, no locking and no GStreamer: [`super::Sessions`] holds it
//! behind a `std::sync::Mutex` that is never held across an `.await`.

use super::session::Session;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// Sessions by id and by (media, user), both O(1).
#[derive(Default)]
pub struct Registry {
    by_id: HashMap<Uuid, Arc<Session>>,
    by_owner: HashMap<(Uuid, String), Uuid>,
}

impl Registry {
    /// The session `id` if it belongs to `user`; another user's session is
    /// reported exactly like an unknown one.
    pub fn get(&self, id: &Uuid, user: &str) -> Option<Arc<Session>> {
        self.by_id.get(id).filter(|s| s.user == user).cloned()
    }

    /// The session that `user` has for `media_id`, if any.
    pub fn by_owner(&self, media_id: &Uuid, user: &str) -> Option<Arc<Session>> {
        let id = self.by_owner.get(&(*media_id, user.to_string()))?;
        self.by_id.get(id).cloned()
    }

    /// Adds `session`, replacing (and returning) the one its owner had for
    /// the same media.
    pub fn insert(&mut self, session: Arc<Session>) -> Option<Arc<Session>> {
        let key = (session.media_id, session.user.clone());
        let replaced = self
            .by_owner
            .insert(key, session.id)
            .and_then(|old| self.by_id.remove(&old));
        self.by_id.insert(session.id, session);
        replaced
    }

    /// Removes session `id` from both indexes.
    pub fn remove(&mut self, id: &Uuid) -> Option<Arc<Session>> {
        let session = self.by_id.remove(id)?;
        let key = (session.media_id, session.user.clone());
        if self.by_owner.get(&key) == Some(id) {
            self.by_owner.remove(&key);
        }
        Some(session)
    }

    /// Ids of sessions not touched for longer than `timeout(session)` at
    /// `now`.
    pub fn idle(&self, now: Instant, timeout: impl Fn(&Session) -> Duration) -> Vec<Uuid> {
        self.by_id
            .values()
            .filter(|s| now.saturating_duration_since(s.last_access()) > timeout(s))
            .map(|s| s.id)
            .collect()
    }

    /// Every session.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Session>> {
        self.by_id.values()
    }

    /// Every session of `user`.
    pub fn for_user(&self, user: &str) -> Vec<Arc<Session>> {
        self.by_id
            .values()
            .filter(|s| s.user == user)
            .cloned()
            .collect()
    }

    /// Removes and returns every session.
    pub fn drain(&mut self) -> Vec<Arc<Session>> {
        self.by_owner.clear();
        self.by_id.drain().map(|(_, s)| s).collect()
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::Playback;

    fn session(media: Uuid, user: &str) -> Arc<Session> {
        use crate::supervisor::testing;
        let title = testing::title_of(
            crate::library::MediaItem {
                id: media,
                ..testing::item()
            },
            None,
            None,
        );
        Arc::new(Session::new(
            Uuid::new_v4(),
            title,
            user,
            Playback::Remux,
            Default::default(),
            0,
            false,
        ))
    }

    #[test]
    fn both_lookups_find_the_same_session() {
        let mut r = Registry::default();
        let m = Uuid::new_v4();
        let s = session(m, "alice");
        r.insert(s.clone());
        assert!(Arc::ptr_eq(&r.get(&s.id, "alice").unwrap(), &s));
        assert!(Arc::ptr_eq(&r.by_owner(&m, "alice").unwrap(), &s));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn another_users_session_is_invisible() {
        let mut r = Registry::default();
        let m = Uuid::new_v4();
        let s = session(m, "alice");
        r.insert(s.clone());
        assert!(r.get(&s.id, "bob").is_none());
        assert!(r.by_owner(&m, "bob").is_none());
        assert!(r.for_user("bob").is_empty());
        assert_eq!(r.for_user("alice").len(), 1);
    }

    #[test]
    fn insert_replaces_the_owners_previous_session() {
        let mut r = Registry::default();
        let m = Uuid::new_v4();
        let first = session(m, "alice");
        let second = session(m, "alice");
        assert!(r.insert(first.clone()).is_none());
        let replaced = r.insert(second.clone()).unwrap();
        assert_eq!(replaced.id, first.id);
        assert!(r.get(&first.id, "alice").is_none());
        assert_eq!(r.by_owner(&m, "alice").unwrap().id, second.id);
        assert_eq!(r.len(), 1);
        // a different user's session for the same media is separate
        r.insert(session(m, "bob"));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn remove_clears_both_indexes() {
        let mut r = Registry::default();
        let m = Uuid::new_v4();
        let s = session(m, "alice");
        r.insert(s.clone());
        assert!(r.remove(&s.id).is_some());
        assert!(r.by_owner(&m, "alice").is_none());
        assert!(r.remove(&s.id).is_none());
        assert!(r.is_empty());
    }

    #[test]
    fn idle_lists_only_sessions_past_the_timeout() {
        let mut r = Registry::default();
        let s = session(Uuid::new_v4(), "alice");
        r.insert(s.clone());
        let now = Instant::now();
        assert!(r.idle(now, |_| Duration::from_secs(60)).is_empty());
        let later = now + Duration::from_secs(61);
        assert_eq!(r.idle(later, |_| Duration::from_secs(60)), vec![s.id]);
        s.touch();
        assert!(r
            .idle(Instant::now(), |_| Duration::from_secs(60))
            .is_empty());
    }
}

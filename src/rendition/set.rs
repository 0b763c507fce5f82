//! A set of a title's renditions, by their index in the title's list: what
//! a session, a player, a producer or a waiting request plays or makes.
//! Pure, `Copy`, one machine word: it owns the limit on how many
//! renditions one title may have ([`RenditionSet::CAPACITY`]).

/// Renditions of one title, by index (`0..CAPACITY`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RenditionSet(u64);

impl RenditionSet {
    /// The most renditions one title may have: [`crate::rendition::renditions_of`]
    /// makes no more, so every index fits.
    pub const CAPACITY: usize = 64;

    /// No rendition.
    pub const EMPTY: RenditionSet = RenditionSet(0);

    /// Every index up to the capacity.
    pub const ALL: RenditionSet = RenditionSet(u64::MAX);

    /// The set whose bit `i` says whether it holds rendition `i`.
    pub const fn from_bits(bits: u64) -> RenditionSet {
        RenditionSet(bits)
    }

    /// Rendition `i` alone; empty when `i` is past [`Self::CAPACITY`].
    pub fn one(i: usize) -> RenditionSet {
        if i < Self::CAPACITY {
            RenditionSet(1 << i)
        } else {
            Self::EMPTY
        }
    }

    /// The renditions `indexes` names (those past the capacity are left out).
    pub fn of(indexes: impl IntoIterator<Item = usize>) -> RenditionSet {
        indexes
            .into_iter()
            .fold(Self::EMPTY, |s, i| s.union(Self::one(i)))
    }

    /// Whether it holds rendition `i`.
    pub fn contains(self, i: usize) -> bool {
        self.intersects(Self::one(i))
    }

    /// Whether it holds none.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many it holds.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the two share a rendition.
    pub fn intersects(self, other: RenditionSet) -> bool {
        self.0 & other.0 != 0
    }

    /// Both together.
    #[must_use]
    pub fn union(self, other: RenditionSet) -> RenditionSet {
        RenditionSet(self.0 | other.0)
    }

    /// Those in both.
    #[must_use]
    pub fn intersection(self, other: RenditionSet) -> RenditionSet {
        RenditionSet(self.0 & other.0)
    }

    /// Those of `self` not in `other`.
    #[must_use]
    pub fn without(self, other: RenditionSet) -> RenditionSet {
        RenditionSet(self.0 & !other.0)
    }

    /// The same set with rendition `i`.
    #[must_use]
    pub fn with(self, i: usize) -> RenditionSet {
        self.union(Self::one(i))
    }

    /// Whether every rendition of `other` is in it.
    pub fn is_superset(self, other: RenditionSet) -> bool {
        other.0 & !self.0 == 0
    }

    /// The lowest index it holds.
    pub fn first(self) -> Option<usize> {
        (!self.is_empty()).then(|| self.0.trailing_zeros() as usize)
    }

    /// Its indexes, ascending.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..Self::CAPACITY).filter(move |i| self.contains(*i))
    }
}

impl FromIterator<usize> for RenditionSet {
    fn from_iter<T: IntoIterator<Item = usize>>(iter: T) -> Self {
        RenditionSet::of(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::RenditionSet;

    #[test]
    fn a_set_holds_what_it_was_given_up_to_its_capacity() {
        let s = RenditionSet::of([0, 3, 63, 64, 200]);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 3, 63]);
        assert_eq!(s.len(), 3);
        assert!(s.contains(63) && !s.contains(64) && !s.contains(1));
        assert_eq!(s.first(), Some(0));
        assert_eq!(RenditionSet::EMPTY.first(), None);
        assert!(RenditionSet::one(64).is_empty());
    }

    #[test]
    fn set_operations_agree_with_their_indexes() {
        let a = RenditionSet::of([1, 2, 5]);
        let b = RenditionSet::of([2, 7]);
        assert_eq!(a.union(b), RenditionSet::of([1, 2, 5, 7]));
        assert_eq!(a.intersection(b), RenditionSet::one(2));
        assert_eq!(a.without(b), RenditionSet::of([1, 5]));
        assert!(a.intersects(b) && !a.intersects(RenditionSet::one(7)));
        assert!(a.with(7).is_superset(b.without(RenditionSet::one(2))));
        assert_eq!(a.with(9).len(), 4);
    }
}

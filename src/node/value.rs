//! The values a key can hold, and the [`Kind`] trait behind typed lookups.
//!
//! Containers are chosen for the commands that use them: `IndexMap`/`IndexSet` give O(1)
//! access by position, which HRANDFIELD, SRANDMEMBER and SPOP need to pick a random element
//! without walking the collection; `VecDeque` serves both list ends; the sorted set keeps a
//! score map next to an ordered index.
//!
//! The aggregates are boxed so that a `Value` is as small as a string's: the key table holds
//! values inline, and a string GET/SET (the commonest access) touches fewer cache lines of it.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, VecDeque};

use bytes::Bytes;
use indexmap::{IndexMap, IndexSet};

/// A hash value: field → value.
pub type Hash = IndexMap<Bytes, Bytes>;
/// A list value.
pub type List = VecDeque<Bytes>;
/// A set value.
pub type Set = IndexSet<Bytes>;

/// The value stored under a key. Strings also carry integers (as text, like Redis's shared
/// representation for clients) and HyperLogLogs (Redis stores those as strings too).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string (also integers and HyperLogLogs).
    Str(Bytes),
    /// A hash.
    Hash(Box<Hash>),
    /// A list.
    List(Box<List>),
    /// A set.
    Set(Box<Set>),
    /// A sorted set.
    ZSet(Box<ZSet>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }
}

/// One value type, for typed lookups: `ctx.read::<List>(key)` finds the key, answers
/// WRONGTYPE if it holds another type, and gives the container. Implemented by [`Bytes`]
/// (strings), [`Hash`], [`List`], [`Set`] and [`ZSet`].
pub trait Kind: Sized {
    /// The container inside `v`, if `v` is of this type.
    fn of(v: &Value) -> Option<&Self>;
    /// The same, mutably.
    fn of_mut(v: &mut Value) -> Option<&mut Self>;
    /// A new, empty value of this type (for "get or create").
    fn empty() -> Value;
    /// True when the container has no elements: Redis never keeps an empty aggregate, so a
    /// command that removed the last element deletes the key.
    fn is_empty(&self) -> bool;
}

macro_rules! kind {
    ($ty:ty, $variant:ident, $new:expr, |$x:ident| $inner:expr, |$y:ident| $inner_mut:expr) => {
        impl Kind for $ty {
            fn of(v: &Value) -> Option<&Self> {
                match v {
                    Value::$variant($x) => Some($inner),
                    _ => None,
                }
            }
            fn of_mut(v: &mut Value) -> Option<&mut Self> {
                match v {
                    Value::$variant($y) => Some($inner_mut),
                    _ => None,
                }
            }
            fn empty() -> Value {
                Value::$variant($new)
            }
            fn is_empty(&self) -> bool {
                <$ty>::is_empty(self)
            }
        }
    };
}

kind!(Bytes, Str, Bytes::new(), |x| x, |x| x);
kind!(Hash, Hash, Box::default(), |x| &**x, |x| &mut **x);
kind!(List, List, Box::default(), |x| &**x, |x| &mut **x);
kind!(Set, Set, Box::default(), |x| &**x, |x| &mut **x);
kind!(ZSet, ZSet, Box::default(), |x| &**x, |x| &mut **x);

/// A score with a total order, so it can key a `BTreeSet`. NaN is never stored (Redis
/// refuses it), and -0.0 is normalised to 0.0 on the way in so equal scores compare equal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A sorted set: member → score, plus the members ordered by (score, member) as Redis orders
/// them (ties broken by byte-wise member order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ZSet {
    scores: HashMap<Bytes, f64>,
    order: BTreeSet<(Score, Bytes)>,
}

impl ZSet {
    /// Number of members.
    pub fn len(&self) -> usize {
        self.scores.len()
    }
    /// True with no members.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }
    /// Sets `member`'s score (NaN must be refused by the caller); returns true if the member
    /// is new.
    pub fn insert(&mut self, member: Bytes, score: f64) -> bool {
        let score = if score == 0.0 { 0.0 } else { score };
        match self.scores.insert(member.clone(), score) {
            Some(old) => {
                if old != score {
                    self.order.remove(&(Score(old), member.clone()));
                    self.order.insert((Score(score), member));
                }
                false
            }
            None => {
                self.order.insert((Score(score), member));
                true
            }
        }
    }
    /// Removes `member`; returns its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (key, score) = self.scores.remove_entry(member)?;
        self.order.remove(&(Score(score), key));
        Some(score)
    }
    /// Members in ascending (score, member) order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> {
        self.order.iter().map(|(s, m)| (m, s.0))
    }
    /// The ordered index, for range queries (`range((Bound, Bound))` by score and member).
    pub fn ordered(&self) -> &BTreeSet<(Score, Bytes)> {
        &self.order
    }
    /// 0-based rank of `member` in ascending order (O(rank)).
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let key = (Score(score), Bytes::copy_from_slice(member));
        Some(self.order.range(..key).count())
    }
    /// Removes and returns the lowest (`max == false`) or highest member.
    pub fn pop(&mut self, max: bool) -> Option<(Bytes, f64)> {
        let (s, m) = if max {
            self.order.pop_last()?
        } else {
            self.order.pop_first()?
        };
        self.scores.remove(&m);
        Some((m, s.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_no_bigger_than_a_string_and_its_tag() {
        assert_eq!(std::mem::size_of::<Value>(), 40);
    }

    #[test]
    fn zset_orders_by_score_then_member() {
        let mut z = ZSet::default();
        assert!(z.insert(Bytes::from_static(b"b"), 1.0));
        assert!(z.insert(Bytes::from_static(b"a"), 1.0));
        assert!(z.insert(Bytes::from_static(b"c"), -0.0));
        assert!(!z.insert(Bytes::from_static(b"c"), 5.0));
        let members: Vec<_> = z.iter().map(|(m, _)| m.clone()).collect();
        assert_eq!(members, vec!["a", "b", "c"]);
        assert_eq!(z.rank(b"b"), Some(1));
        assert_eq!(z.remove(b"a"), Some(1.0));
        assert_eq!(z.pop(true), Some((Bytes::from_static(b"c"), 5.0)));
        assert_eq!(z.len(), 1);
        assert!(!z.is_empty());
    }

    #[test]
    fn kinds_match_their_variant() {
        let mut v = List::empty();
        assert_eq!(v.type_name(), "list");
        assert!(List::of(&v).is_some_and(Kind::is_empty));
        assert!(Hash::of(&v).is_none());
        assert!(List::of_mut(&mut v).is_some());
        assert!(Bytes::of(&Value::Str(Bytes::new())).is_some());
    }
}

//! Partitions: the unit Stockflow's data is split into, so that it can run on
//! a Redis Cluster as well as on one Redis, with one key layout for both.
//!
//! A deployment has a fixed number of partitions (`PARTITIONS`, recorded in
//! Redis on first start). A product lives in one partition, and so do its
//! orders, their idempotency records, index entries and every stream entry
//! about them: each Lua script touches one partition only, so it never spans
//! two hash slots of a cluster.
//!
//! Ids say their partition without a lookup: the low 16 bits of an id's ULID
//! value, modulo the partition count. New ids are made with their partition
//! in those bits (see [`crate::ids`]).

use std::fmt;
use std::str::FromStr;

use domain::Id;

/// The most partitions a deployment may have. Ids carry their partition in 16
/// bits; far fewer are useful (a cluster rarely has more than a few dozen masters).
pub const MAX_PARTITIONS: u16 = 1024;
/// Partitions of a deployment that does not say.
pub const DEFAULT_PARTITIONS: u16 = 16;

/// One partition of the deployment, `0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition(u16);

impl Partition {
    /// The partition's number.
    pub fn index(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Partition {
    /// `p07`: the hash tag of the partition's keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{:02}", self.0)
    }
}

/// How many partitions a deployment has, and which one an id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitions {
    count: u16,
}

/// A partition count or range that cannot be used, with a message saying why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PartitionError(pub String);

impl Partitions {
    /// `count` partitions (1 to [`MAX_PARTITIONS`]).
    pub fn new(count: u16) -> Result<Partitions, PartitionError> {
        if (1..=MAX_PARTITIONS).contains(&count) {
            Ok(Partitions { count })
        } else {
            Err(PartitionError(format!("PARTITIONS must be from 1 to {MAX_PARTITIONS}, got {count}")))
        }
    }

    /// Parses the `PARTITIONS` setting.
    pub fn parse(text: &str) -> Result<Partitions, PartitionError> {
        let count = text.trim().parse::<u16>().map_err(|_| {
            PartitionError(format!("PARTITIONS must be a whole number from 1 to {MAX_PARTITIONS}, got {text:?}"))
        })?;
        Partitions::new(count)
    }

    pub fn count(self) -> u16 {
        self.count
    }

    /// Every partition, in order.
    pub fn all(self) -> impl Iterator<Item = Partition> {
        (0..self.count).map(Partition)
    }

    /// The partition of `n` (taken modulo the count).
    pub fn nth(self, n: u64) -> Partition {
        Partition((n % u64::from(self.count)) as u16)
    }

    /// The partition an id lives in (see [`crate::ids`]).
    pub fn of_id(self, id: &Id) -> Partition {
        self.nth(u64::from(id.partition_bits()))
    }

    /// The partition of an arbitrary text (an idempotency key), spread evenly.
    pub fn of_text(self, text: &str) -> Partition {
        // FNV-1a: stable across processes and versions, unlike std's hasher.
        let hash =
            text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        self.nth(hash)
    }

    /// Parses a subset like `0-7`, `3` or `0-3,8-11` (what `workers --partitions` takes).
    pub fn subset(self, spec: &str) -> Result<Vec<Partition>, PartitionError> {
        let bad = |why: String| PartitionError(format!("--partitions {spec:?}: {why}"));
        let mut chosen = Vec::new();
        for part in spec.split(',').map(str::trim) {
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let number = |text: &str| -> Result<u16, PartitionError> {
                text.parse::<u16>().map_err(|_| bad(format!("{text:?} is not a partition number")))
            };
            let (first, last) = (number(first)?, number(last)?);
            if first > last {
                return Err(bad(format!("range {first}-{last} runs backwards")));
            }
            if last >= self.count {
                return Err(bad(format!(
                    "partition {last} does not exist (there are {}: 0-{})",
                    self.count,
                    self.count - 1
                )));
            }
            chosen.extend((first..=last).map(Partition));
        }
        chosen.sort();
        chosen.dedup();
        Ok(chosen)
    }
}

impl Default for Partitions {
    fn default() -> Partitions {
        Partitions { count: DEFAULT_PARTITIONS }
    }
}

impl FromStr for Partitions {
    type Err = PartitionError;
    fn from_str(s: &str) -> Result<Partitions, PartitionError> {
        Partitions::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ulid::Ulid;

    #[test]
    fn a_partition_count_is_a_number_in_range() {
        assert_eq!(Partitions::parse("16").unwrap().count(), 16);
        assert_eq!(Partitions::parse(" 1 ").unwrap().count(), 1);
        for bad in ["0", "abc", "", "-3", "1025", "99999999"] {
            let error = Partitions::parse(bad).unwrap_err();
            assert!(error.0.starts_with("PARTITIONS must be"), "{bad}: {error}");
        }
    }

    #[test]
    fn partitions_print_as_their_hash_tag() {
        assert_eq!(Partition(7).to_string(), "p07");
        assert_eq!(Partition(123).to_string(), "p123");
    }

    #[test]
    fn an_id_names_its_partition_in_its_low_bits() {
        let partitions = Partitions::new(16).unwrap();
        let id = |ulid: Ulid| Id::parse(&ulid.to_string()).unwrap();
        assert_eq!(partitions.of_id(&id(Ulid::from_parts(1_700_000_000_000, (0xABCD_u128 << 16) | 5))), Partition(5));
        assert_eq!(partitions.of_id(&id(Ulid::from_parts(1_700_000_000_000, 0x1_0013))), Partition(0x13 % 16));
        let every_bit = Ulid::from_parts(1_700_000_000_000, (1 << 80) - 1);
        assert_eq!(id(every_bit).partition_bits(), 0xFFFF, "the same bits the ulid crate reads");
    }

    #[test]
    fn texts_spread_over_every_partition() {
        let partitions = Partitions::new(16).unwrap();
        let mut seen = [0u32; 16];
        for i in 0..1600 {
            seen[partitions.of_text(&format!("key-{i}")).index() as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        assert_eq!(partitions.of_text("same"), partitions.of_text("same"));
    }

    #[test]
    fn subsets_are_ranges_and_lists() {
        let partitions = Partitions::new(16).unwrap();
        let indexes = |spec: &str| partitions.subset(spec).map(|v| v.iter().map(|p| p.index()).collect::<Vec<_>>());
        assert_eq!(indexes("0-3").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(indexes("5").unwrap(), vec![5]);
        assert_eq!(indexes("8-9, 1,1").unwrap(), vec![1, 8, 9]);
        for bad in ["", "3-1", "0-16", "x", "1-", "-"] {
            assert!(partitions.subset(bad).is_err(), "{bad}");
        }
    }
}

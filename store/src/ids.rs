//! Ids of products and orders: ULIDs, which sort by creation time, carrying
//! the partition they live in.
//!
//! A ULID is 48 bits of milliseconds and 80 random bits. Ours put the
//! partition into the lowest 16 of those, so anyone holding an id finds its
//! partition without a lookup (see [`crate::partition`]); the 64 bits above
//! start random each millisecond and count up within it.
//!
//! The lists page through their indexes by id (`GET /products` oldest first,
//! `GET /orders` newest first), so ids made by one process must increase even
//! within one millisecond, whatever their partition. Ids made in the same
//! millisecond by different processes have no order between them, and need none.

use std::sync::Mutex;

use domain::Id;
use ulid::Ulid;

use crate::error::{StoreError, StoreResult};
use crate::partition::Partition;

/// The id a request names, where it comes in (a URL, a form, a body): text
/// that is not an id names nothing, so it is [`StoreError::NotFound`] like an
/// unknown id of the `kind`.
pub fn parse_id(kind: &'static str, text: &str) -> StoreResult<Id> {
    Id::parse(text.trim()).map_err(|error| StoreError::NotFound { kind, id: error.text })
}

/// The process-wide generator, so every id it hands out is larger than the last.
static GENERATOR: Mutex<Generator> = Mutex::new(Generator { last_ms: 0, counter: 0 });

struct Generator {
    last_ms: u64,
    /// The upper 64 of the 80 random bits; counts up within a millisecond.
    counter: u64,
}

impl Generator {
    fn next(&mut self, now_ms: u64, partition: Partition) -> Ulid {
        if now_ms > self.last_ms {
            self.last_ms = now_ms;
            // The top bit stays clear, so counting up never overflows in practice.
            self.counter = random_u64() >> 1;
        } else if let Some(next) = self.counter.checked_add(1) {
            // Same millisecond, or the clock stepped back: keep counting.
            self.counter = next;
        } else {
            self.last_ms += 1;
            self.counter = random_u64() >> 1;
        }
        Ulid::from_parts(self.last_ms, (u128::from(self.counter) << 16) | u128::from(partition.index()))
    }
}

fn random_u64() -> u64 {
    // Randomness only spreads ids of different processes; a failing source
    // (never seen on Linux) falls back to the clock's nanoseconds.
    getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos().into()).unwrap_or(0)
    })
}

/// A new id in `partition`, larger than every id this process made before.
pub fn new_id(partition: Partition) -> Id {
    let mut generator = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let ulid = generator.next(crate::now_ms(), partition);
    Id::parse(&ulid.to_string()).expect("a ULID is an id")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Partitions;

    #[test]
    fn ids_made_in_a_burst_sort_in_the_order_they_were_made_whatever_their_partition() {
        let partitions = Partitions::new(16).unwrap();
        let ids: Vec<Id> = (0..10_000).map(|i| new_id(partitions.nth(i * 7))).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "strictly increasing");
    }

    #[test]
    fn an_id_carries_its_partition() {
        for count in [1, 3, 16, 1024] {
            let partitions = Partitions::new(count).unwrap();
            for partition in partitions.all() {
                assert_eq!(partitions.of_id(&new_id(partition)), partition);
            }
        }
    }

    #[test]
    fn a_request_naming_no_id_names_nothing() {
        assert_eq!(parse_id("order", " 01jd3v6q8zk0m9x4w2t7y5b1ca ").unwrap(), "01JD3V6Q8ZK0M9X4W2T7Y5B1CA");
        let error = parse_id("order", "../etc").unwrap_err();
        assert!(matches!(&error, StoreError::NotFound { kind: "order", id } if id == "../etc"), "{error}");
    }

    #[test]
    fn within_one_millisecond_ids_count_up_and_a_clock_step_back_changes_nothing() {
        let partition = Partitions::new(4).unwrap().nth(2);
        let mut generator = Generator { last_ms: 0, counter: 0 };
        let a = generator.next(1_000, partition);
        let b = generator.next(1_000, Partitions::new(4).unwrap().nth(0));
        let c = generator.next(999, partition);
        assert!(a < b && b < c);
        assert_eq!(c.timestamp_ms(), 1_000);
        generator.counter = u64::MAX;
        let d = generator.next(1_000, partition);
        assert!(c < d && d.timestamp_ms() == 1_001);
    }
}

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

use ulid::Ulid;

use crate::partition::Partition;

/// An id as it is stored: ULIDs are case-insensitive (their spec), ours are
/// kept in upper case, so `01arz3...` names the same order as `01ARZ3...`.
pub fn canonical_id(id: &str) -> String {
    id.to_ascii_uppercase()
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
pub fn new_id(partition: Partition) -> String {
    let mut generator = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    generator.next(crate::now_ms(), partition).to_string()
}

/// Whether `id` looks like one of our ids; anything else cannot exist.
pub use domain::id::is_id;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Partitions;

    #[test]
    fn ids_made_in_a_burst_sort_in_the_order_they_were_made_whatever_their_partition() {
        let partitions = Partitions::new(16).unwrap();
        let ids: Vec<String> = (0..10_000).map(|i| new_id(partitions.nth(i * 7))).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "strictly increasing");
        assert!(ids.iter().all(|id| is_id(id)));
    }

    #[test]
    fn an_id_carries_its_partition() {
        for count in [1, 3, 16, 1024] {
            let partitions = Partitions::new(count).unwrap();
            for partition in partitions.all() {
                assert_eq!(partitions.of_id(&new_id(partition)), Some(partition));
            }
        }
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

    #[test]
    fn only_ulids_are_ids() {
        assert!(is_id("01JD3V6Q8ZK0M9X4W2T7Y5B1CA"));
        assert!(!is_id("nope"));
        assert!(!is_id(""));
        assert!(!is_id("../../etc"));
    }
}

//! Ids of products and orders: ULIDs, which sort by creation time.
//!
//! The lists page through their indexes by id (`GET /products` oldest first,
//! `GET /orders` newest first), so ids made by one process must increase even
//! within one millisecond: `Ulid::new()` would order such a pair at random.
//! Ids made in the same millisecond by different processes have no order
//! between them, and need none.

use std::sync::Mutex;

use ulid::{Generator, Ulid};

/// The process-wide generator, so every id it hands out is larger than the last.
static GENERATOR: Mutex<Generator> = Mutex::new(Generator::new());

/// A new id, larger than every id this process made before.
pub fn new_id() -> String {
    let mut generator = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Fails only after 2^80 ids within one millisecond.
    generator.generate().unwrap_or_else(|_| Ulid::new()).to_string()
}

/// Whether `id` looks like one of our ids; anything else cannot exist.
pub fn is_id(id: &str) -> bool {
    Ulid::from_string(id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_made_in_a_burst_sort_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..10_000).map(|_| new_id()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "strictly increasing");
        assert!(ids.iter().all(|id| is_id(id)));
    }

    #[test]
    fn only_ulids_are_ids() {
        assert!(is_id("01JD3V6Q8ZK0M9X4W2T7Y5B1CA"));
        assert!(!is_id("nope"));
        assert!(!is_id(""));
        assert!(!is_id("../../etc"));
    }
}

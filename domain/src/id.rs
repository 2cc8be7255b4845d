//! The shape of product and order ids: ULIDs, 26 characters of Crockford
//! base32 (no I, L, O or U), the first at most `7` (128 bits). The one check
//! of that shape: for URLs, cursors and stream entries alike.

/// The characters of an id.
const LENGTH: usize = 26;
/// The shortest start of an id the order search looks up: 8 characters
/// narrow it to about a second of orders (the first 10 are the time).
pub const MIN_PREFIX: usize = 8;

/// Whether `text` has the shape of one of our ids (either letter case).
pub fn is_id(text: &str) -> bool {
    text.len() == LENGTH && is_crockford_start(text)
}

/// Whether `text` is the start of an id, [`MIN_PREFIX`] characters or more
/// (a whole id too), either letter case: what an order search by id takes.
pub fn is_id_prefix(text: &str) -> bool {
    (MIN_PREFIX..=LENGTH).contains(&text.len()) && is_crockford_start(text)
}

/// Crockford base32 (no I, L, O or U) whose first character is at most `7`.
fn is_crockford_start(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b.is_ascii_alphabetic() && !b"iloIlLoOuU".contains(&b)))
        && text.as_bytes().first().is_some_and(|first| *first <= b'7')
}

#[cfg(test)]
mod tests {
    use super::{is_id, is_id_prefix};

    #[test]
    fn ids_are_26_crockford_characters() {
        assert!(is_id("01JD3V6Q8ZK0M9X4W2T7Y5B1CA"));
        assert!(is_id("01jd3v6q8zk0m9x4w2t7y5b1ca"));
        assert!(is_id("7ZZZZZZZZZZZZZZZZZZZZZZZZZ"));
        for bad in [
            "",
            "nope",
            "../../etc",
            "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "01JD3V6Q8ZK0M9X4W2T7Y5B1C",
            "01JD3V6Q8ZK0M9X4W2T7Y5B1CAX",
            "01JD3V6Q8ZK0M9X4W2T7Y5B1CU",
            "01JD3V6Q8ZK0M9X4W2T7Y5B1C-",
        ] {
            assert!(!is_id(bad), "{bad}");
        }
    }

    #[test]
    fn an_id_prefix_is_the_start_of_an_id_of_eight_characters_or_more() {
        assert!(is_id_prefix("01JD3V6Q"));
        assert!(is_id_prefix("01jd3v6q8zk"));
        assert!(is_id_prefix("01JD3V6Q8ZK0M9X4W2T7Y5B1CA"), "a whole id");
        for bad in ["01JD3V6", "", "Keyboard", "81JD3V6Q", "01JD3V6Q-", "01JD3V6QU", "01JD3V6Q8ZK0M9X4W2T7Y5B1CAX"] {
            assert!(!is_id_prefix(bad), "{bad}");
        }
    }
}

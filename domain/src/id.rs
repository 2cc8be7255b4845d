//! The shape of product and order ids: ULIDs, 26 characters of Crockford
//! base32 (no I, L, O or U), the first at most `7` (128 bits). The one check
//! of that shape: for URLs, cursors and stream entries alike.

/// Whether `text` has the shape of one of our ids (either letter case).
pub fn is_id(text: &str) -> bool {
    text.len() == 26
        && text.bytes().all(|b| b.is_ascii_digit() || (b.is_ascii_alphabetic() && !b"iloIlLoOuU".contains(&b)))
        && text.as_bytes()[0] <= b'7'
}

#[cfg(test)]
mod tests {
    use super::is_id;

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
}

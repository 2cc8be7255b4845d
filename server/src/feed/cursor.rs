//! The live feed's event ids: where a browser stands in every live stream of
//! every partition.
//!
//! Each partition has three live streams (`order-placed`, `order-completed`,
//! `order-status`: see [`store::Stream::LIVE`]), so "what has this browser
//! seen" is one stream entry id per stream and partition: a slot. The SSE
//! event id carries all of them, so a browser that reconnects (sending the
//! last id it saw as `Last-Event-ID`) is replayed exactly what it missed in
//! every partition, once, in each order's own order.
//!
//! Format: `<base>:<s0>,<s1>,…` with one field per slot (partition 0's three
//! streams, then partition 1's, …), numbers in base 36. `base` is the
//! smallest millisecond time among the positions; each field is that slot's
//! entry id `<ms>-<seq>` written as `ms - base`, followed by `.<seq>` when
//! `seq` is not 0, or empty when the browser has seen nothing of it yet (the
//! entry id `0-0`). For example `lq8ftwq0:0,1k.2,,37` is four slots at `T-0`,
//! `T+56-2`, `0-0` and `T+115-0` where `T` is `lq8ftwq0` in base 36. An id that
//! does not parse, or has another number of slots, is ignored: the browser
//! then follows live from now, and its page reloads its lists.

pub use store::streams::EntryId;

/// The last entry seen in each slot (live stream of a partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub Vec<EntryId>);

impl Cursor {
    /// The event id that stands for this cursor.
    pub fn encode(&self) -> String {
        let base = self.0.iter().filter(|id| **id != EntryId::START).map(|id| id.ms).min().unwrap_or(0);
        // One allocation per event id: it is made once per event and browser.
        let mut text = String::with_capacity(16 + self.0.len() * 6);
        push_base36(&mut text, base);
        text.push(':');
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            if *id == EntryId::START {
                continue;
            }
            push_base36(&mut text, id.ms - base);
            if id.seq != 0 {
                text.push('.');
                push_base36(&mut text, id.seq);
            }
        }
        text
    }

    /// The cursor an event id stands for, if it is one for `slots` slots.
    pub fn decode(text: &str, slots: usize) -> Option<Cursor> {
        let (base, fields) = text.trim().split_once(':')?;
        let base = from_base36(base)?;
        let ids = fields
            .split(',')
            .map(|field| {
                if field.is_empty() {
                    return Some(EntryId::START);
                }
                let (delta, seq) = match field.split_once('.') {
                    Some((delta, seq)) => (from_base36(delta)?, from_base36(seq)?),
                    None => (from_base36(field)?, 0),
                };
                Some(EntryId { ms: base.checked_add(delta)?, seq })
            })
            .collect::<Option<Vec<_>>>()?;
        (ids.len() == slots).then_some(Cursor(ids))
    }
}

/// Appends `n` in base 36 (lowercase digits).
fn push_base36(text: &mut String, mut n: u64) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    // u64::MAX has 13 base-36 digits.
    let mut digits = [0u8; 13];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    text.extend(digits[start..].iter().map(|&d| char::from(d)));
}

fn from_base36(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 13 {
        return None;
    }
    u64::from_str_radix(text, 36).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> EntryId {
        EntryId { ms, seq }
    }

    #[test]
    fn a_cursor_survives_its_event_id() {
        let cursor =
            Cursor(vec![id(1_700_000_000_000, 0), id(1_700_000_000_056, 2), EntryId::START, id(1_700_000_000_115, 0)]);
        let text = cursor.encode();
        let mut base = String::new();
        push_base36(&mut base, 1_700_000_000_000);
        assert_eq!(text, format!("{base}:0,1k.2,,37"));
        assert_eq!(Cursor::decode(&text, 4), Some(cursor));
    }

    #[test]
    fn a_cursor_that_has_seen_nothing_is_short() {
        let cursor = Cursor(vec![EntryId::START; 3]);
        assert_eq!(cursor.encode(), "0:,,");
        assert_eq!(Cursor::decode("0:,,", 3), Some(cursor));
    }

    #[test]
    fn base_36_reads_back() {
        for n in [0, 1, 35, 36, 1_700_000_000_000, u64::MAX] {
            let mut text = String::new();
            push_base36(&mut text, n);
            assert_eq!(from_base36(&text), Some(n), "{text}");
        }
    }

    #[test]
    fn foreign_or_broken_ids_are_refused() {
        let good = Cursor(vec![id(5, 1), id(7, 0)]).encode();
        assert!(Cursor::decode(&good, 2).is_some());
        assert_eq!(Cursor::decode(&good, 3), None, "another partition count");
        for bad in ["", "1700000000000-0", "x:1", "0:1,-1", "0:zzzzzzzzzzzzzz", ":1,2", "0:1.,2"] {
            assert_eq!(Cursor::decode(bad, 2), None, "{bad}");
        }
    }
}

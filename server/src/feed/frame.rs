//! The live feed's server-sent events, as the bytes sent to browsers.

use bytes::Bytes;

/// What a change is about, and so the SSE event type it is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// An order's status: an untyped event (`message`), as the original's
    /// clients and every client before product events know it.
    Order,
    /// A product created, restocked or deleted: a `product` event, which a
    /// client that follows only orders passes over.
    Product,
}

/// One SSE event: its type unless it is an order's change, its id, its data
/// (JSON, which has no line breaks, as an event id has none), then the blank
/// line that ends it.
pub fn frame(subject: Subject, event_id: &str, json: &str) -> Bytes {
    let event = match subject {
        Subject::Order => "",
        Subject::Product => "event: product\n",
    };
    let parts = [event, "id: ", event_id, "\ndata: ", json, "\n\n"];
    let mut frame = String::with_capacity(parts.iter().map(|part| part.len()).sum());
    for part in parts {
        frame.push_str(part);
    }
    frame.into()
}

/// The event that tells a browser to fetch its lists again (it missed more
/// than a replay brings), and the event id it goes on from.
pub fn reload(event_id: &str) -> Bytes {
    format!("event: reload\nid: {event_id}\ndata: {{}}\n\n").into()
}

/// The event a browser gets once it is subscribed and caught up, with the
/// event id it stands at: a page that loses its connection before any change
/// came resumes from there (its `Last-Event-ID`) instead of starting afresh.
pub fn subscribed(event_id: &str) -> Bytes {
    format!("event: subscribed\nid: {event_id}\ndata: {{}}\n\n").into()
}

/// The comment every browser gets every [`super::KEEP_ALIVE`].
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_the_id_and_data_lines_then_a_blank_line() {
        assert_eq!(
            &frame(Subject::Order, "k1:0,,3", r#"{"a":"b\nc"}"#)[..],
            b"id: k1:0,,3\ndata: {\"a\":\"b\\nc\"}\n\n"
        );
        assert_eq!(&frame(Subject::Product, "k1:2,,", "{}")[..], b"event: product\nid: k1:2,,\ndata: {}\n\n");
    }

    #[test]
    fn a_reload_is_an_event_of_its_own_type_with_the_id_to_go_on_from() {
        assert_eq!(&reload("k1:0,,3")[..], b"event: reload\nid: k1:0,,3\ndata: {}\n\n");
    }

    #[test]
    fn subscribed_is_an_event_of_its_own_type_with_the_id_it_stands_at() {
        assert_eq!(&subscribed("k1:0,,3")[..], b"event: subscribed\nid: k1:0,,3\ndata: {}\n\n");
    }
}

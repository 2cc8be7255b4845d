//! The live feed's server-sent events, as the bytes sent to browsers.

use bytes::Bytes;

/// One SSE event: its id, its data (JSON, which has no line breaks, as an
/// event id has none), then the blank line that ends it.
pub fn frame(event_id: &str, json: &str) -> Bytes {
    let parts = ["id: ", event_id, "\ndata: ", json, "\n\n"];
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

/// The comment a browser gets once it is subscribed and caught up.
pub const SUBSCRIBED: &[u8] = b": subscribed\n\n";
/// The comment every browser gets every [`super::KEEP_ALIVE`].
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_the_id_and_data_lines_then_a_blank_line() {
        assert_eq!(&frame("k1:0,,3", r#"{"a":"b\nc"}"#)[..], b"id: k1:0,,3\ndata: {\"a\":\"b\\nc\"}\n\n");
    }

    #[test]
    fn a_reload_is_an_event_of_its_own_type_with_the_id_to_go_on_from() {
        assert_eq!(&reload("k1:0,,3")[..], b"event: reload\nid: k1:0,,3\ndata: {}\n\n");
    }
}

//! Reading the live streams: each partition's changes in the order they
//! happened, the newest entry of each stream, and what each stream still
//! holds (so a resuming browser can be told it missed more than a replay
//! brings).

use std::sync::Arc;
use std::time::Duration;

use redis::streams::StreamRangeReply;
use redis::Value;
use store::streams::StreamReads;
use store::telemetry;
use store::{Partition, PartitionKeys, Redis, Stream as Log};

use super::cursor::EntryId;
use super::frame::Subject;
use super::{slot, FeedEvent, LIVE, REPLAY_PAGE};

/// The newest entry of each of a partition's live streams (`0-0` when empty).
pub async fn newest(conn: &mut Redis, keys: &PartitionKeys) -> redis::RedisResult<[EntryId; LIVE]> {
    let mut pipe = redis::pipe();
    for stream in Log::LIVE {
        pipe.cmd("XREVRANGE").arg(keys.stream(stream)).arg("+").arg("-").arg("COUNT").arg(1);
    }
    let newest: Vec<StreamRangeReply> = pipe.query_async(conn).await?;
    let mut ids = [EntryId::START; LIVE];
    for (k, reply) in newest.iter().enumerate().take(LIVE) {
        ids[k] = reply.ids.first().and_then(|e| EntryId::parse(&e.id)).unwrap_or(EntryId::START);
    }
    Ok(ids)
}

/// What a live stream holds, as `XINFO STREAM` tells: enough to know
/// whether a browser that saw up to some entry can be replayed everything
/// after it, or missed entries that were trimmed (or deleted) since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retained {
    /// Entries it holds now.
    pub length: u64,
    /// Entries ever added (Redis 7: `entries-added`); `None` from an older Redis.
    pub added: Option<u64>,
    /// Its first entry now (`recorded-first-entry-id`, or `first-entry`).
    pub first: EntryId,
    /// The newest entry it ever had.
    pub last: EntryId,
    /// The newest entry deleted from its middle (`XDEL`; trimming does not
    /// move it).
    pub max_deleted: EntryId,
}

impl Retained {
    /// Whether a browser that has seen up to `seen` can be replayed what
    /// followed: nothing after it was deleted or trimmed away, and it is not
    /// ahead of the stream (an id from another deployment, or from before a
    /// Redis lost data).
    pub fn can_resume_from(&self, seen: EntryId) -> bool {
        if seen > self.last || seen < self.max_deleted {
            return false;
        }
        if self.added == Some(self.length) {
            // Nothing was ever trimmed.
            return true;
        }
        // Trimming takes the oldest entries: the browser missed none of them
        // only if it has seen the first one kept (or, when none is kept, the last).
        if self.length == 0 {
            seen >= self.last
        } else {
            seen >= self.first
        }
    }
}

/// What each of a partition's live streams holds (`XINFO STREAM`); a stream
/// that does not exist yet holds nothing.
pub async fn retained(conn: &mut Redis, keys: &PartitionKeys) -> redis::RedisResult<[Retained; LIVE]> {
    let mut pipe = redis::pipe();
    for stream in Log::LIVE {
        pipe.cmd("XINFO").arg("STREAM").arg(keys.stream(stream));
    }
    let replies: Vec<redis::RedisResult<Value>> = pipe.ignore_errors().query_async(conn).await?;
    let mut retained = [Retained::default(); LIVE];
    for (k, reply) in replies.into_iter().enumerate().take(LIVE) {
        match reply {
            Ok(info) => retained[k] = parse_info(&info),
            // "ERR no such key": nothing written yet.
            Err(error) if error.code() == Some("ERR") => {}
            Err(error) => return Err(error),
        }
    }
    Ok(retained)
}

/// What an `XINFO STREAM` reply says (a map in RESP3, a flat list of names
/// and values in RESP2).
fn parse_info(info: &Value) -> Retained {
    let pairs: Vec<(&Value, &Value)> = match info {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(items) => items.chunks(2).filter_map(|pair| Some((pair.first()?, pair.get(1)?))).collect(),
        _ => Vec::new(),
    };
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok().map(str::to_string),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    };
    let field = |name: &str| pairs.iter().find(|(key, _)| text(key).as_deref() == Some(name)).map(|(_, value)| *value);
    let id = |name: &str| field(name).and_then(text).and_then(|id| EntryId::parse(&id));
    let number = |name: &str| match field(name) {
        Some(Value::Int(n)) => u64::try_from(*n).ok(),
        _ => None,
    };
    // `first-entry` is `[id, fields]`, or nil when the stream is empty.
    let first_entry = match field("first-entry") {
        Some(Value::Array(entry)) => entry.first().and_then(text).and_then(|id| EntryId::parse(&id)),
        _ => None,
    };
    Retained {
        length: number("length").unwrap_or(0),
        added: number("entries-added"),
        first: id("recorded-first-entry-id")
            .filter(|id| *id != EntryId::START)
            .or(first_entry)
            .unwrap_or(EntryId::START),
        last: id("last-generated-id").unwrap_or(EntryId::START),
        max_deleted: id("max-deleted-entry-id").unwrap_or(EntryId::START),
    }
}

/// How a read of the live streams goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// A reader's, waiting up to this long for a change when there is none.
    Wait(Duration),
    /// A reader's, answered at once: while changes flow, polling costs
    /// Redis less than a blocking read per change.
    Poll,
    /// A browser's catching up: answered at once.
    Replay,
}

/// Reads the changes of the partitions of `keys`, each after its own
/// `after` (one position per live stream), in one XREAD. Each partition's
/// changes come in the order they happened (see [`in_order`]); the second
/// value says whether some partition has more to read. Only a reader's read
/// (not a replay) records the relay as a span of the order's trace: once per
/// change, not again for each browser a replay serves. (The workers record
/// the processing time: a reader reads nothing while no browser watches.)
pub async fn read_changes(
    conn: &mut Redis,
    keys: &[PartitionKeys],
    after: &[[EntryId; LIVE]],
    how: Read,
) -> redis::RedisResult<(Vec<FeedEvent>, bool)> {
    let names: Vec<String> = keys.iter().flat_map(|keys| Log::LIVE.map(|stream| keys.stream(stream))).collect();
    let mut read = redis::cmd("XREAD");
    read.arg("COUNT").arg(REPLAY_PAGE);
    if let Read::Wait(block) = how {
        read.arg("BLOCK").arg(block.as_millis() as u64);
    }
    read.arg("STREAMS").arg(&names[..]);
    for id in after.iter().flatten() {
        read.arg(id.to_string());
    }
    let reply: StreamReads = read.query_async(conn).await?;
    let mut pages: Vec<[Vec<redis::streams::StreamId>; LIVE]> = keys.iter().map(|_| Default::default()).collect();
    for stream in reply.keys {
        if let Some(n) = names.iter().position(|name| *name == stream.key) {
            pages[n / LIVE][n % LIVE] = stream.ids;
        }
    }
    let mut changes = Vec::new();
    let mut more = false;
    for (keys, pages) in keys.iter().zip(pages) {
        let (partition, partial) = in_order(keys, pages, how != Read::Replay);
        changes.extend(partition);
        more |= partial;
    }
    Ok((changes, more))
}

/// One partition's entries read from its live streams (a page of each), as
/// changes in the order they happened: by time, then by step (the streams'
/// order in [`Log::LIVE`]), then by sequence. So each order's changes come in
/// order, whichever streams they are in. When a stream returned a full page,
/// the changes after its last one are not all known yet: they wait for the
/// next read, and the second value says there is more to read.
fn in_order(
    keys: &PartitionKeys,
    pages: [Vec<redis::streams::StreamId>; LIVE],
    record: bool,
) -> (Vec<FeedEvent>, bool) {
    let order = |k: usize, id: EntryId| (id.ms, k, id.seq);
    let limit = (0..LIVE)
        .filter(|&k| pages[k].len() >= REPLAY_PAGE)
        .filter_map(|k| pages[k].last().and_then(|e| EntryId::parse(&e.id)).map(|id| order(k, id)))
        .min();
    let mut changes: Vec<((u64, usize, u64), FeedEvent)> = Vec::new();
    for (k, page) in pages.iter().enumerate() {
        for entry in page {
            let Some(id) = EntryId::parse(&entry.id) else { continue };
            if limit.is_some_and(|limit| order(k, id) > limit) {
                break;
            }
            changes.push((order(k, id), event(keys, k, id, entry, record)));
        }
    }
    changes.sort_by_key(|(order, _)| *order);
    (changes.into_iter().map(|(_, event)| event).collect(), limit.is_some())
}

/// The change that entry `id` of the partition's `k`-th live stream
/// records. Not a change (malformed, or a retry): empty, so it is not sent,
/// but the cursor still moves past it. `record`: a reader's (see
/// [`read_changes`]).
pub fn event(keys: &PartitionKeys, k: usize, id: EntryId, entry: &redis::streams::StreamId, record: bool) -> FeedEvent {
    let (subject, json) = match store::streams::is_product_change(entry) {
        true => (Subject::Product, product_json(entry)),
        false => (Subject::Order, to_json(Log::LIVE[k], entry, record.then(|| keys.partition()))),
    };
    let json = json.unwrap_or_else(|| Arc::from(""));
    FeedEvent { slot: slot(keys, k), id, subject, json, position: None }
}

/// A product's change as the browser receives it (a `ProductChange` in
/// JSON), or `None` for a malformed entry.
fn product_json(entry: &redis::streams::StreamId) -> Option<Arc<str>> {
    serialized(store::streams::product_change(entry), Log::OrderStatus.name()).map(|(_, json)| json)
}

/// A change read from an entry of `stream`, with its JSON; `None`, with a
/// warning, for an entry that could not be read or written.
fn serialized<T: serde::Serialize>(
    parsed: Result<T, store::streams::MalformedEntry>,
    stream: &str,
) -> Option<(T, Arc<str>)> {
    let parsed = parsed
        .map_err(|e| e.to_string())
        .and_then(|change| serde_json::to_string(&change).map(|json| (change, json)).map_err(|e| e.to_string()));
    match parsed {
        Ok((change, json)) => Some((change, json.into())),
        Err(error) => {
            tracing::warn!(%error, stream, "skipping a malformed entry of the live feed");
            None
        }
    }
}

/// An order's change as the browser receives it (a `StatusChange` in JSON), or
/// `None` for an entry that is not one. A live read (`live`: its partition)
/// records the relay as a span of the order's trace (when traces are exported).
fn to_json(stream: Log, entry: &redis::streams::StreamId, live: Option<Partition>) -> Option<Arc<str>> {
    if store::streams::is_retry(entry) {
        return None;
    }
    let (change, json) = serialized(store::streams::status_change(stream, entry), stream.name())?;
    if let Some(partition) = live {
        if let Some(traceparent) = telemetry::enabled().then(|| store::streams::traceparent_of(entry)).flatten() {
            telemetry::order_span("relay to browsers", Some(&traceparent), &change.order_id, partition);
        }
    }
    Some(json)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use redis::streams::StreamId;
    use store::{Layout, Partitions};

    use super::*;

    /// The product of every entry.
    const PRODUCT: &str = "01JD3V6Q8ZK0M9X4W2T7Y5B1CP";

    /// An order's id that ends in `name` (one letter), which [`changes`] shows.
    fn order(name: &str) -> String {
        format!("01JD3V6Q8ZK0M9X4W2T7Y5B1C{name}")
    }

    fn entry(id: &str, name: &str, status: Option<&str>) -> StreamId {
        let mut map = HashMap::from([
            ("order_id".to_string(), Value::BulkString(order(name).into_bytes())),
            ("product_id".to_string(), Value::BulkString(PRODUCT.as_bytes().to_vec())),
            ("at".to_string(), Value::BulkString(id.split('-').next().unwrap().as_bytes().to_vec())),
        ]);
        if let Some(status) = status {
            map.insert("status".to_string(), Value::BulkString(status.as_bytes().to_vec()));
        }
        StreamId { id: id.to_string(), map, ..Default::default() }
    }

    fn changes(events: &[FeedEvent]) -> Vec<(usize, String, String)> {
        events
            .iter()
            .map(|event| {
                let change: domain::StatusChange = serde_json::from_str(&event.json).unwrap();
                (event.slot, event.id.to_string(), format!("{}:{}", &change.order_id[25..], change.status.as_str()))
            })
            .collect()
    }

    #[test]
    fn a_partitions_changes_come_by_time_then_step_whatever_their_stream() {
        let layout = Layout::new("test", Partitions::default()).unwrap();
        let keys = layout.keys(layout.partitions().nth(2));
        let pages = [
            vec![entry("10-0", "A", None), entry("12-0", "B", None)],
            vec![entry("10-0", "A", None)],
            vec![entry("11-0", "A", Some("fulfilled"))],
        ];
        let (events, more) = in_order(keys, pages, false);
        assert!(!more);
        assert_eq!(
            changes(&events),
            [
                (6, "10-0".to_string(), "A:pending".to_string()),
                (7, "10-0".to_string(), "A:completed".to_string()),
                (8, "11-0".to_string(), "A:fulfilled".to_string()),
                (6, "12-0".to_string(), "B:pending".to_string()),
            ]
        );
    }

    #[test]
    fn after_a_full_page_only_the_changes_known_to_come_first_are_given() {
        let layout = Layout::new("test", Partitions::default()).unwrap();
        let keys = layout.keys(layout.partitions().nth(0));
        let placed: Vec<StreamId> = (1..=REPLAY_PAGE).map(|ms| entry(&format!("{ms}-0"), "A", None)).collect();
        // The completion at 600 may have later placements before it, still unread.
        let pages = [placed, vec![entry("3-0", "A", None), entry("600-0", "B", None)], Vec::new()];
        let (events, more) = in_order(keys, pages, false);
        assert!(more);
        assert_eq!(events.len(), REPLAY_PAGE + 1);
        assert_eq!(events.last().map(|e| e.id.to_string()), Some(format!("{REPLAY_PAGE}-0")));
        assert!(events.iter().all(|e| e.id.to_string() != "600-0"));
    }

    #[test]
    fn a_products_change_goes_in_its_place_as_a_product_event() {
        let layout = Layout::new("test", Partitions::default()).unwrap();
        let keys = layout.keys(layout.partitions().nth(0));
        let mut restocked = entry("11-0", "", None);
        restocked.map.remove("order_id");
        restocked.map.insert("product".to_string(), Value::BulkString(b"restocked".to_vec()));
        restocked.map.insert("stock".to_string(), Value::BulkString(b"9".to_vec()));
        let pages =
            [vec![entry("10-0", "A", None)], Vec::new(), vec![restocked, entry("12-0", "A", Some("fulfilled"))]];
        let (events, _) = in_order(keys, pages, false);
        let subjects: Vec<(String, Subject)> = events.iter().map(|e| (e.id.to_string(), e.subject)).collect();
        assert_eq!(
            subjects,
            [("10-0".into(), Subject::Order), ("11-0".into(), Subject::Product), ("12-0".into(), Subject::Order)]
        );
        let change: domain::ProductChange = serde_json::from_str(&events[1].json).unwrap();
        assert_eq!(
            (change.product_id.as_str(), change.event, change.stock),
            (PRODUCT, domain::ProductEvent::Restocked, Some(9))
        );
    }

    #[test]
    fn an_entry_that_is_not_a_change_moves_the_cursor_but_is_not_sent() {
        let layout = Layout::new("test", Partitions::default()).unwrap();
        let keys = layout.keys(layout.partitions().nth(0));
        let mut retried = entry("5-0", "A", None);
        retried.map.insert("retried".to_string(), Value::BulkString(b"1".to_vec()));
        let (events, _) = in_order(keys, [vec![retried], Vec::new(), Vec::new()], false);
        assert_eq!(events.len(), 1);
        assert!(events[0].json.is_empty());
    }

    #[test]
    fn a_stream_says_from_where_it_can_replay() {
        let id = |ms| EntryId { ms, seq: 0 };
        let bulk = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        let info = Value::Array(vec![
            bulk("length"),
            Value::Int(3),
            bulk("last-generated-id"),
            bulk("90-0"),
            bulk("max-deleted-entry-id"),
            bulk("0-0"),
            bulk("entries-added"),
            Value::Int(7),
            bulk("recorded-first-entry-id"),
            bulk("70-0"),
            bulk("first-entry"),
            Value::Array(vec![bulk("70-0"), Value::Array(vec![])]),
        ]);
        let trimmed = parse_info(&info);
        assert_eq!(trimmed, Retained { length: 3, added: Some(7), first: id(70), last: id(90), max_deleted: id(0) });
        assert!(trimmed.can_resume_from(id(70)) && trimmed.can_resume_from(id(90)));
        assert!(!trimmed.can_resume_from(id(69)), "entries before the first kept were trimmed");
        assert!(!trimmed.can_resume_from(EntryId::START), "seen nothing, and some of it is gone");
        assert!(!trimmed.can_resume_from(id(91)), "ahead of the stream");

        let whole = Retained { length: 7, added: Some(7), first: id(10), last: id(90), max_deleted: id(0) };
        assert!(whole.can_resume_from(EntryId::START), "never trimmed: everything is there");
        let hole = Retained { max_deleted: id(50), ..whole };
        assert!(!hole.can_resume_from(id(40)) && hole.can_resume_from(id(50)), "an entry deleted after it");
        let emptied = Retained { length: 0, added: Some(7), first: EntryId::START, last: id(90), max_deleted: id(0) };
        assert!(emptied.can_resume_from(id(90)) && !emptied.can_resume_from(id(80)));
        assert!(Retained::default().can_resume_from(EntryId::START), "a stream never written");
    }
}

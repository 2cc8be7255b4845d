//! Stream entries as typed events, and the consumer-group plumbing shared by
//! every consumer.

use std::collections::HashMap;

use domain::{Id, OrderStatus, ProductChange, ProductEvent, StatusChange};
use redis::streams::{StreamId, StreamKey};
use redis::{FromRedisValue, ParsingError, Value};

use crate::error::{StoreError, StoreResult};
use crate::keys::Stream;

/// Read only entries never delivered to this group before.
pub const NEW_ENTRIES: &str = ">";
/// The id before every entry: a new group reads the stream from its start,
/// so nothing written before the group existed is lost.
pub const FROM_START: &str = "0";

/// A stream entry id, `<ms>-<seq>`, ordered as Redis orders them. The one
/// parser of entry ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    /// Before every entry.
    pub const START: EntryId = EntryId { ms: 0, seq: 0 };

    /// Parses `<ms>-<seq>` as Redis writes it.
    pub fn parse(id: &str) -> Option<EntryId> {
        let (ms, seq) = id.split_once('-')?;
        Some(EntryId { ms: ms.parse().ok()?, seq: seq.parse().ok()? })
    }

    /// The entry right after this one (for ranges that must include it).
    pub fn next(self) -> EntryId {
        EntryId { ms: self.ms, seq: self.seq + 1 }
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Why an entry cannot be understood. Such an entry is poison: retrying it
/// cannot help, so it goes straight to the dead letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {entry_id}: {problem}")]
pub struct MalformedEntry {
    pub entry_id: String,
    pub problem: String,
}

fn field(entry: &StreamId, name: &str) -> Result<String, MalformedEntry> {
    entry
        .get::<String>(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| MalformedEntry { entry_id: entry.id.clone(), problem: format!("missing field {name:?}") })
}

fn id_field(entry: &StreamId, name: &str) -> Result<Id, MalformedEntry> {
    let value = field(entry, name)?;
    // Anything but an id cannot name an order or product of ours, and must not reach a key name.
    Id::parse(&value)
        .map_err(|_| MalformedEntry { entry_id: entry.id.clone(), problem: format!("{name} {value:?} is not an id") })
}

/// The order id of any entry, if it has a well-formed one: used to refund the
/// order of an entry that is dead-lettered.
pub fn order_id_of(entry: &StreamId) -> Option<Id> {
    id_field(entry, "order_id").ok()
}

/// The W3C trace context an entry carries (its order's, when traces were
/// exported as it was placed: see [`crate::telemetry`]).
pub fn traceparent_of(entry: &StreamId) -> Option<String> {
    entry.get("traceparent")
}

/// `order-placed`: an order waiting for payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPlaced {
    pub order_id: Id,
}

impl OrderPlaced {
    pub fn parse(entry: &StreamId) -> Result<OrderPlaced, MalformedEntry> {
        Ok(OrderPlaced { order_id: id_field(entry, "order_id")? })
    }
}

/// `order-completed`: a paid order for the warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderCompleted {
    pub order_id: Id,
    pub product_id: Id,
}

impl OrderCompleted {
    pub fn parse(entry: &StreamId) -> Result<OrderCompleted, MalformedEntry> {
        Ok(OrderCompleted { order_id: id_field(entry, "order_id")?, product_id: id_field(entry, "product_id")? })
    }
}

/// `refund-initiated`: an order the warehouse could not fulfil.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundInitiated {
    pub order_id: Id,
    pub reason: String,
}

impl RefundInitiated {
    pub fn parse(entry: &StreamId) -> Result<RefundInitiated, MalformedEntry> {
        Ok(RefundInitiated { order_id: id_field(entry, "order_id")?, reason: field(entry, "reason")? })
    }
}

/// One consumer group of a stream, as `XINFO GROUPS` tells: the one reading
/// of that reply (readiness, metrics, trimming, migration, tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: String,
    /// Entries delivered to a consumer and not acknowledged.
    pub pending: u64,
    /// Entries not delivered yet; `None` when Redis cannot tell (after
    /// entries were deleted from the middle of the stream).
    pub lag: Option<u64>,
    /// The last entry delivered to the group.
    pub last_delivered: Option<EntryId>,
}

impl GroupInfo {
    /// Whether the group has read its whole stream and acknowledged
    /// everything (an unknown lag counts as not).
    pub fn is_idle(&self) -> bool {
        self.pending == 0 && self.lag == Some(0)
    }
}

impl FromRedisValue for GroupInfo {
    /// A map in RESP3, a flat list of names and values in RESP2.
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let fields: HashMap<String, Value> = HashMap::from_redis_value(value)?;
        let text = |name: &str| fields.get(name).and_then(|v| redis::from_redis_value_ref::<String>(v).ok());
        let number = |name: &str| fields.get(name).and_then(|v| redis::from_redis_value_ref::<u64>(v).ok());
        Ok(GroupInfo {
            name: text("name").unwrap_or_default(),
            pending: number("pending").unwrap_or(0),
            lag: number("lag"),
            last_delivered: text("last-delivered-id").as_deref().and_then(EntryId::parse),
        })
    }
}

/// The consumer groups of `stream` (`XINFO GROUPS`); an error when the
/// stream does not exist.
pub async fn groups(conn: &mut crate::Redis, stream: &str) -> redis::RedisResult<Vec<GroupInfo>> {
    redis::cmd("XINFO").arg("GROUPS").arg(stream).query_async(conn).await
}

/// Whether an entry is a dead letter put back on its stream (see
/// `retry_dead_letter.lua`): it asks for a change again but records none, so
/// the live feed passes over it.
pub fn is_retry(entry: &StreamId) -> bool {
    entry.map.contains_key("retried")
}

/// Whether an entry of `order-status` records a product's change rather
/// than an order's (see [`product_change`]).
pub fn is_product_change(entry: &StreamId) -> bool {
    entry.map.contains_key("product")
}

/// An `order-status` entry that records a product's change (created,
/// restocked, deleted: see `create_product.lua`), as the change.
pub fn product_change(entry: &StreamId) -> Result<ProductChange, MalformedEntry> {
    let malformed = |problem: String| MalformedEntry { entry_id: entry.id.clone(), problem };
    let event: String = field(entry, "product")?;
    let event = ProductEvent::parse(&event).ok_or_else(|| malformed(format!("no product event {event:?}")))?;
    Ok(ProductChange {
        product_id: id_field(entry, "product_id")?,
        event,
        stock: number(entry, "stock")?.map(|s| s.min(u64::from(u32::MAX)) as u32),
        at: number(entry, "at")?.unwrap_or(0),
    })
}

/// The number in field `name` of `entry`, if it has one.
fn number(entry: &StreamId, name: &str) -> Result<Option<u64>, MalformedEntry> {
    match entry.get::<String>(name) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| MalformedEntry {
            entry_id: entry.id.clone(),
            problem: format!("{name} {text:?} is not a number"),
        }),
    }
}

/// An entry of a stream the live feed relays ([`Stream::LIVE`]) as the
/// status change it records: `order-placed` and `order-completed` entries
/// stand for `pending` and `completed`, `order-status` entries name theirs
/// (those of products are not orders' changes: see [`product_change`]).
pub fn status_change(stream: Stream, entry: &StreamId) -> Result<StatusChange, MalformedEntry> {
    let malformed = |problem: String| MalformedEntry { entry_id: entry.id.clone(), problem };
    if is_product_change(entry) {
        return Err(malformed("a product's change, not an order's".into()));
    }
    let status = match stream {
        Stream::OrderPlaced => OrderStatus::Pending,
        Stream::OrderCompleted => OrderStatus::Completed,
        Stream::OrderStatus => {
            field(entry, "status")?.parse().map_err(|e: domain::order::UnknownStatus| malformed(e.to_string()))?
        }
        Stream::RefundInitiated => return Err(malformed("refund-initiated is not relayed".into())),
    };
    let number = |name: &str| number(entry, name);
    Ok(StatusChange {
        order_id: id_field(entry, "order_id")?,
        product_id: id_field(entry, "product_id")?,
        status,
        stock: number("stock")?.map(|s| s.min(u64::from(u32::MAX)) as u32),
        reason: entry.get::<String>("reason"),
        at: number("at")?.unwrap_or(0),
    })
}

/// An entry a script pushed as it added it to a live stream
/// (`live_prelude.lua`), on the shard channel named like the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    /// The stream's newest entry before it (`0-0`: none).
    pub before: EntryId,
    /// The entry's id, parsed.
    pub id: EntryId,
    /// The entry, as a read of the stream would bring it.
    pub entry: StreamId,
}

/// A push's payload, a JSON list of texts: the entry before, the entry's id,
/// then its fields' names and values. `None` when it is not one.
pub fn pushed(payload: &[u8]) -> Option<Pushed> {
    let texts: Vec<String> = serde_json::from_slice(payload).ok()?;
    let mut texts = texts.into_iter();
    let before = EntryId::parse(&texts.next()?)?;
    let text = texts.next()?;
    let id = EntryId::parse(&text)?;
    let mut map = HashMap::new();
    while let (Some(name), Some(value)) = (texts.next(), texts.next()) {
        map.insert(name, Value::BulkString(value.into_bytes()));
    }
    Some(Pushed { before, id, entry: StreamId { id: text, map, ..Default::default() } })
}

/// The reply of `XREAD` or `XREADGROUP`: the entries read, per stream; none
/// when a blocking read timed out.
///
/// Read straight into redis-rs's stream types, moving each value: redis-rs's
/// own `StreamReadReply` first copies the whole reply, then builds three
/// levels of maps (perf, throughput scenario: 6% of the server's CPU and 10%
/// of the workers').
#[derive(Debug, Default)]
pub struct StreamReads {
    pub keys: Vec<StreamKey>,
}

impl FromRedisValue for StreamReads {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let streams = match value {
            Value::Nil => return Ok(StreamReads::default()),
            Value::Array(rows) => rows.into_iter().map(pair).collect::<Result<Vec<_>, _>>()?,
            // RESP3 answers a map of stream name to entries.
            Value::Map(pairs) => pairs,
            other => return Err(not_a_read(&other)),
        };
        let keys = streams
            .into_iter()
            .map(|(key, entries)| {
                let ids = match entries {
                    Value::Array(entries) => entries.into_iter().map(entry).collect::<Result<_, _>>()?,
                    Value::Nil => Vec::new(),
                    other => return Err(not_a_read(&other)),
                };
                Ok(StreamKey { key: String::from_redis_value(key)?, ids })
            })
            .collect::<Result<_, ParsingError>>()?;
        Ok(StreamReads { keys })
    }
}

fn not_a_read(value: &Value) -> ParsingError {
    ParsingError::from(format!("not a stream read reply: {value:?}"))
}

/// `[a, b]` as `(a, b)`.
fn pair(value: Value) -> Result<(Value, Value), ParsingError> {
    match value {
        Value::Array(items) if items.len() == 2 => {
            let mut items = items.into_iter();
            Ok((items.next().unwrap_or(Value::Nil), items.next().unwrap_or(Value::Nil)))
        }
        other => Err(not_a_read(&other)),
    }
}

/// `[id, [field, value, ...]]`; the fields are nil for an entry deleted
/// while it was pending.
fn entry(value: Value) -> Result<StreamId, ParsingError> {
    let (id, fields) = pair(value)?;
    let mut map = HashMap::new();
    match fields {
        Value::Array(fields) => {
            map.reserve(fields.len() / 2);
            let mut fields = fields.into_iter();
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                map.insert(String::from_redis_value(name)?, value);
            }
        }
        Value::Map(fields) => {
            for (name, value) in fields {
                map.insert(String::from_redis_value(name)?, value);
            }
        }
        Value::Nil => {}
        other => return Err(not_a_read(&other)),
    }
    Ok(StreamId { id: String::from_redis_value(id)?, map, ..Default::default() })
}

/// Creates `group` on `stream` (and the stream itself) unless it exists.
pub async fn ensure_group<C: redis::aio::ConnectionLike>(conn: &mut C, stream: &str, group: &str) -> StoreResult<()> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg(FROM_START)
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
        other => other.map_err(StoreError::from),
    }
}

#[cfg(test)]
mod tests {
    use redis::{FromRedisValue, Value};

    use super::{EntryId, StreamReads};

    fn text(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![text(id), Value::Array(fields.iter().map(|f| text(f)).collect())])
    }

    /// Per stream, its entries: id and fields, sorted by name.
    type Read = Vec<(String, Vec<(String, Vec<(String, String)>)>)>;

    fn read(reply: Value) -> Read {
        StreamReads::from_redis_value(reply)
            .unwrap()
            .keys
            .into_iter()
            .map(|key| {
                let ids = key
                    .ids
                    .into_iter()
                    .map(|id| {
                        let mut fields: Vec<(String, String)> =
                            id.map.keys().map(|name| (name.clone(), id.get::<String>(name).unwrap())).collect();
                        fields.sort();
                        (id.id, fields)
                    })
                    .collect();
                (key.key, ids)
            })
            .collect()
    }

    #[test]
    fn a_stream_read_reply_is_read_per_stream_and_entry_in_resp2_and_resp3() {
        let a = || entry("1-0", &["order_id", "A", "at", "5"]);
        let b = || Value::Array(vec![text("2-1"), Value::Nil]);
        let expected = vec![
            (
                "s1".to_string(),
                vec![("1-0".to_string(), vec![("at".into(), "5".into()), ("order_id".into(), "A".into())])],
            ),
            ("s2".to_string(), vec![("2-1".to_string(), vec![])]),
        ];
        let resp2 = Value::Array(vec![
            Value::Array(vec![text("s1"), Value::Array(vec![a()])]),
            Value::Array(vec![text("s2"), Value::Array(vec![b()])]),
        ]);
        assert_eq!(read(resp2), expected);
        let resp3 = Value::Map(vec![(text("s1"), Value::Array(vec![a()])), (text("s2"), Value::Array(vec![b()]))]);
        assert_eq!(read(resp3), expected);
        assert!(read(Value::Nil).is_empty(), "a blocking read that timed out");
        assert!(StreamReads::from_redis_value(text("OK")).is_err());
        assert!(StreamReads::from_redis_value(Value::Array(vec![Value::Array(vec![text("s1")])])).is_err());
    }

    #[test]
    fn entry_ids_order_as_redis_orders_them() {
        assert!(EntryId::parse("10-2").unwrap() < EntryId::parse("10-10").unwrap());
        assert!(EntryId::parse("9-99").unwrap() < EntryId::parse("10-0").unwrap());
        assert_eq!(EntryId::parse("1700000000123-4"), Some(EntryId { ms: 1_700_000_000_123, seq: 4 }));
        for bad in ["nope", "1-", "-1", "1-2-3", ""] {
            assert_eq!(EntryId::parse(bad), None, "{bad}");
        }
        assert_eq!(EntryId { ms: 3, seq: 4 }.to_string(), "3-4");
        assert_eq!(EntryId { ms: 3, seq: 4 }.next().to_string(), "3-5");
    }
}

#[cfg(test)]
mod product_changes {
    use std::collections::HashMap;

    use domain::{OrderStatus, ProductChange, ProductEvent};
    use redis::streams::StreamId;
    use redis::Value;

    use super::*;

    fn entry(fields: &[(&str, &str)]) -> StreamId {
        let map: HashMap<String, Value> =
            fields.iter().map(|(k, v)| (k.to_string(), Value::BulkString(v.as_bytes().to_vec()))).collect();
        StreamId { id: "7-0".into(), map, ..Default::default() }
    }

    const P: &str = "01JD3V6Q8ZK0M9X4W2T7Y5B1CE";
    const O: &str = "01jd3v6q8zk0m9x4w2t7y5b1ca";

    #[test]
    fn an_order_status_entry_is_an_orders_change_or_a_products_never_both() {
        let restocked = entry(&[("product", "restocked"), ("product_id", P), ("stock", "12"), ("at", "7")]);
        assert!(is_product_change(&restocked));
        assert_eq!(
            product_change(&restocked).unwrap(),
            ProductChange { product_id: P.parse().unwrap(), event: ProductEvent::Restocked, stock: Some(12), at: 7 }
        );
        assert!(status_change(Stream::OrderStatus, &restocked).is_err());

        let fulfilled = entry(&[("order_id", O), ("product_id", P), ("status", "fulfilled"), ("at", "7")]);
        assert!(!is_product_change(&fulfilled));
        let change = status_change(Stream::OrderStatus, &fulfilled).unwrap();
        assert_eq!(change.status, OrderStatus::Fulfilled);
        assert_eq!(change.order_id, O.to_uppercase().as_str(), "ids in upper case from here on");
        assert!(product_change(&entry(&[("product", "renamed"), ("product_id", P)])).is_err());
    }

    #[test]
    fn an_entry_naming_something_other_than_an_id_is_malformed() {
        let sneaky = entry(&[("order_id", "../x"), ("product_id", P), ("status", "fulfilled")]);
        let error = status_change(Stream::OrderStatus, &sneaky).unwrap_err();
        assert!(error.problem.contains("is not an id"), "{}", error.problem);
        assert!(product_change(&entry(&[("product", "created"), ("product_id", "P")])).is_err());
        assert_eq!(order_id_of(&sneaky), None);
    }
}

#[cfg(test)]
mod group_info {
    use redis::{FromRedisValue, Value};

    use super::{EntryId, GroupInfo};

    #[test]
    fn a_group_reads_the_same_from_resp2_and_resp3() {
        let text = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let pairs = vec![
            (text("name"), text("warehouse")),
            (text("pending"), Value::Int(2)),
            (text("lag"), Value::Nil),
            (text("last-delivered-id"), text("7-1")),
        ];
        let flat = Value::Array(pairs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect());
        let expected = GroupInfo {
            name: "warehouse".into(),
            pending: 2,
            lag: None,
            last_delivered: Some(EntryId { ms: 7, seq: 1 }),
        };
        assert_eq!(GroupInfo::from_redis_value(flat).unwrap(), expected);
        assert_eq!(GroupInfo::from_redis_value(Value::Map(pairs)).unwrap(), expected);
        assert!(!expected.is_idle());
        assert!(GroupInfo { lag: Some(0), pending: 0, ..expected }.is_idle());
    }
}

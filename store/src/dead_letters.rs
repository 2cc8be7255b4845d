//! Dead letters, for the people who look after them: every `<stream>-dead`
//! entry of every partition, newest first, with its error, delivery count
//! and order; retried (put back on its stream, once) or discarded.

use std::fmt;

use domain::page::MAX_LIMIT;
use domain::Page;
use redis::streams::{StreamId, StreamRangeReply};
use redis::AsyncCommands;

use crate::connection::Redis;
use crate::error::{StoreError, StoreResult};
use crate::keys::{Layout, Stream};
use crate::partition::Partition;
use crate::scripts::{self, Retry};
use crate::streams::EntryId;

/// The streams whose entries can be dead-lettered: those a group works through.
pub const STREAMS: [Stream; 3] = [Stream::OrderPlaced, Stream::OrderCompleted, Stream::RefundInitiated];

/// Where a dead letter is: partition, stream and entry, written
/// `<partition>.<stream>.<entry id>` (`7.order-completed.1700000000000-0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterId {
    pub partition: Partition,
    pub stream: Stream,
    pub entry: EntryId,
}

impl fmt::Display for DeadLetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.partition.index(), self.stream.name(), self.entry)
    }
}

/// A dead letter id that does not parse, or names nothing that can exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a dead letter id")]
pub struct BadDeadLetterId(pub String);

impl DeadLetterId {
    /// Parses the text form, checking the partition exists in `layout`.
    pub fn parse(text: &str, layout: &Layout) -> Result<DeadLetterId, BadDeadLetterId> {
        let bad = || BadDeadLetterId(text.to_string());
        let mut parts = text.splitn(3, '.');
        let (Some(partition), Some(stream), Some(entry)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let partition: u16 = partition.parse().map_err(|_| bad())?;
        if partition >= layout.partitions().count() {
            return Err(bad());
        }
        let stream = STREAMS.into_iter().find(|s| s.name() == stream).ok_or_else(bad)?;
        let entry = EntryId::parse(entry).ok_or_else(bad)?;
        Ok(DeadLetterId { partition: layout.partitions().nth(partition.into()), stream, entry })
    }
}

/// One dead letter as a person sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    /// [`DeadLetterId`] in its text form.
    pub id: String,
    pub stream: &'static str,
    /// When it was given up on, in milliseconds since the Unix epoch.
    pub at: u64,
    pub error: String,
    /// How often the entry was delivered before it was given up on (0 when not recorded).
    pub deliveries: u64,
    /// The order the entry named, if it named one.
    pub order_id: Option<String>,
    /// The entry's own fields, as they were.
    pub fields: Vec<(String, String)>,
}

fn letter(id: DeadLetterId, entry: &StreamId) -> DeadLetter {
    let text = |name: &str| entry.get::<String>(name);
    let mut fields: Vec<(String, String)> =
        entry.map.keys().filter_map(|name| Some((name.strip_prefix("field:")?.to_string(), text(name)?))).collect();
    fields.sort();
    DeadLetter {
        id: id.to_string(),
        stream: id.stream.name(),
        at: id.entry.ms,
        error: text("error").unwrap_or_default(),
        deliveries: text("deliveries").and_then(|n| n.parse().ok()).unwrap_or(0),
        order_id: text("field:order_id"),
        fields,
    }
}

/// One page of dead letters, newest first, across every partition and
/// stream; `after` is the id of the last letter of the previous page.
pub async fn page(
    conn: &Redis,
    layout: &Layout,
    limit: usize,
    after: Option<DeadLetterId>,
) -> StoreResult<Page<DeadLetter>> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let reads = layout.all().flat_map(|keys| {
        STREAMS.into_iter().map(move |stream| {
            let mut conn = conn.clone();
            let key = keys.dead_letters(stream);
            // Strictly older than the cursor, in the cursor's own ordering (time, then place).
            let end = match after {
                Some(after) => after.entry.to_string(),
                None => "+".to_string(),
            };
            async move {
                let reply: StreamRangeReply = redis::cmd("XREVRANGE")
                    .arg(&key)
                    .arg(end)
                    .arg("-")
                    .arg("COUNT")
                    .arg(limit + 2)
                    .query_async(&mut conn)
                    .await?;
                Ok::<_, redis::RedisError>((keys.partition(), stream, reply.ids))
            }
        })
    });
    let mut letters: Vec<(DeadLetterId, StreamId)> = Vec::new();
    for (partition, stream, entries) in futures::future::try_join_all(reads).await? {
        for entry in entries {
            let Some(entry_id) = EntryId::parse(&entry.id) else { continue };
            let id = DeadLetterId { partition, stream, entry: entry_id };
            if after.is_none_or(|after| order_key(&id) < order_key(&after)) {
                letters.push((id, entry));
            }
        }
    }
    letters.sort_by_key(|(id, _)| std::cmp::Reverse(order_key(id)));
    let items: Vec<DeadLetter> = letters.iter().take(limit + 1).map(|(id, entry)| letter(*id, entry)).collect();
    Ok(Page::from_fetched(items, limit, |letter: &DeadLetter| &letter.id))
}

/// Dead letters sort by time, then by where they are, so a page boundary is exact.
fn order_key(id: &DeadLetterId) -> (EntryId, u16, &'static str) {
    (id.entry, id.partition.index(), id.stream.name())
}

/// How many dead letters there are, across every partition and stream.
pub async fn count(conn: &Redis, layout: &Layout) -> StoreResult<u64> {
    let lengths = layout.all().map(|keys| {
        let mut conn = conn.clone();
        let mut pipe = redis::pipe();
        for stream in STREAMS {
            pipe.xlen(keys.dead_letters(stream));
        }
        async move { pipe.query_async::<Vec<u64>>(&mut conn).await }
    });
    Ok(futures::future::try_join_all(lengths).await?.into_iter().flatten().sum())
}

/// Puts a dead letter back on its stream; a consumer processes it once more
/// (a change that was already applied changes nothing). `NotFound` when it
/// was retried or discarded already.
pub async fn retry(conn: &Redis, layout: &Layout, id: DeadLetterId) -> StoreResult<String> {
    let keys = layout.keys(id.partition);
    match scripts::retry_dead_letter(keys, id.stream, &id.entry.to_string()).run(&mut conn.clone()).await? {
        Retry::Retried { entry_id } => {
            tracing::info!(dead_letter = %id, entry_id, "dead letter retried");
            Ok(entry_id)
        }
        Retry::Gone => Err(StoreError::NotFound { kind: "dead letter", id: id.to_string() }),
    }
}

/// Removes a dead letter for good. `NotFound` when it is gone already.
pub async fn discard(conn: &Redis, layout: &Layout, id: DeadLetterId) -> StoreResult<()> {
    let keys = layout.keys(id.partition);
    let removed: u32 = conn.clone().xdel(keys.dead_letters(id.stream), &[id.entry.to_string()]).await?;
    if removed == 0 {
        return Err(StoreError::NotFound { kind: "dead letter", id: id.to_string() });
    }
    tracing::info!(dead_letter = %id, "dead letter discarded");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Partitions;

    #[test]
    fn dead_letter_ids_read_back_and_name_only_what_can_exist() {
        let layout = Layout::new("stockflow", Partitions::new(16).unwrap()).unwrap();
        let id = DeadLetterId {
            partition: layout.partitions().nth(7),
            stream: Stream::OrderCompleted,
            entry: EntryId { ms: 1_700_000_000_000, seq: 2 },
        };
        assert_eq!(id.to_string(), "7.order-completed.1700000000000-2");
        assert_eq!(DeadLetterId::parse(&id.to_string(), &layout), Ok(id));
        for bad in ["", "7", "16.order-placed.1-0", "7.order-status.1-0", "7.order-placed.x", "x.order-placed.1-0"] {
            assert!(DeadLetterId::parse(bad, &layout).is_err(), "{bad}");
        }
    }
}

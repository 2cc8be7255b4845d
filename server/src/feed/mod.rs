//! The live order feed: every partition's `order-status` stream relayed to
//! browsers over server-sent events.
//!
//! One task per partition and server process reads that partition's stream
//! (XREAD BLOCK, on a connection of its own) and fans each change out through
//! one broadcast channel, serialized to JSON once. Each browser gets its own
//! task, which first replays from Redis whatever followed its `Last-Event-ID`
//! in every partition, then follows the broadcast. The event id is a
//! [`cursor::Cursor`]: the last entry the browser has seen in each partition.
//! A client too slow for the broadcast buffer catches up from Redis, so it
//! loses nothing and never slows the others. Once a browser is subscribed and
//! has caught up, it gets the comment `: subscribed`, so a client (or a test)
//! knows from when on no change escapes it, without guessing with a delay.

pub mod cursor;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use redis::streams::{StreamRangeReply, StreamReadReply};
use store::connection::{self, Backoff};
use store::{Layout, PartitionKeys, Redis, RedisTarget};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use self::cursor::{Cursor, EntryId};
use crate::AppState;

/// Changes buffered for subscribers before a slow one must catch up from Redis.
const BROADCAST_CAPACITY: usize = 1024;
/// Entries fetched per XRANGE page when replaying.
const REPLAY_PAGE: usize = 500;

/// One change, with where it sits in its partition's stream.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    /// The partition's index.
    pub partition: usize,
    pub id: EntryId,
    /// The change as the browser receives it (a `StatusChange` in JSON).
    pub json: Arc<str>,
}

/// The process-wide relay of every partition's `order-status`.
#[derive(Clone)]
pub struct StatusFeed {
    sender: broadcast::Sender<FeedEvent>,
    conn: Redis,
    layout: Layout,
    /// The newest entry each reader has relayed (`None` before its first
    /// read): where a new browser starts.
    heads: Arc<Vec<Mutex<Option<EntryId>>>>,
    /// Ends every client's stream on shutdown, so graceful shutdown completes.
    shutdown: CancellationToken,
}

impl StatusFeed {
    /// Starts one reader task per partition; they stop when `shutdown` is cancelled.
    pub fn start(
        target: &RedisTarget,
        layout: &Layout,
        block: Duration,
        shutdown: CancellationToken,
    ) -> redis::RedisResult<StatusFeed> {
        let (sender, _) = broadcast::channel(BROADCAST_CAPACITY);
        let heads: Arc<Vec<Mutex<Option<EntryId>>>> = Arc::new(layout.all().map(|_| Mutex::new(None)).collect());
        for keys in layout.all() {
            let reader = Reader {
                conn: connection::connect_blocking(target, block)?,
                keys: keys.clone(),
                sender: sender.clone(),
                heads: heads.clone(),
                block,
            };
            tokio::spawn(reader.run(shutdown.clone()));
        }
        Ok(StatusFeed { sender, conn: connection::connect(target)?, layout: layout.clone(), heads, shutdown })
    }

    /// Entries of one partition after `after` (exclusive), oldest first, at most one page.
    async fn replay(&self, partition: usize, after: EntryId) -> redis::RedisResult<Vec<FeedEvent>> {
        let keys = self.layout.all().nth(partition).expect("partition of this layout");
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(keys.stream(store::Stream::OrderStatus))
            .arg(format!("({after}"))
            .arg("+")
            .arg("COUNT")
            .arg(REPLAY_PAGE)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(reply.ids.iter().filter_map(|entry| to_event(partition, entry)).collect())
    }

    /// Where a browser without `Last-Event-ID` starts: the newest entry of
    /// each partition (asking Redis for those no reader has seen yet).
    async fn current_heads(&self) -> Cursor {
        let mut ids = Vec::new();
        for (partition, keys) in self.layout.all().enumerate() {
            let known = *self.heads[partition].lock().unwrap_or_else(|p| p.into_inner());
            let id = match known {
                Some(id) => id,
                None => newest(&mut self.conn.clone(), keys).await.unwrap_or(EntryId::START),
            };
            ids.push(id);
        }
        Cursor(ids)
    }
}

/// The newest entry of a partition's status stream (`0-0` when it is empty).
async fn newest(conn: &mut Redis, keys: &PartitionKeys) -> redis::RedisResult<EntryId> {
    let newest: StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(keys.stream(store::Stream::OrderStatus))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(newest.ids.first().and_then(|e| EntryId::parse(&e.id)).unwrap_or(EntryId::START))
}

fn to_event(partition: usize, entry: &redis::streams::StreamId) -> Option<FeedEvent> {
    let parsed = store::streams::status_change(entry)
        .map_err(|e| e.to_string())
        .and_then(|change| serde_json::to_string(&change).map(|json| (change, json)).map_err(|e| e.to_string()));
    match (parsed, EntryId::parse(&entry.id)) {
        (Ok((change, json)), Some(id)) => {
            if change.status.is_terminal() {
                crate::metrics::record_processing(&change.order_id, change.status.as_str(), change.at);
            }
            Some(FeedEvent { partition, id, json: json.into() })
        }
        (Err(error), _) => {
            tracing::warn!(%error, "skipping a malformed order-status entry");
            None
        }
        (_, None) => None,
    }
}

/// Follows one partition's status stream from its current end.
struct Reader {
    conn: Redis,
    keys: PartitionKeys,
    sender: broadcast::Sender<FeedEvent>,
    heads: Arc<Vec<Mutex<Option<EntryId>>>>,
    block: Duration,
}

impl Reader {
    /// Relays until `shutdown`, surviving Redis outages.
    async fn run(mut self, shutdown: CancellationToken) {
        let partition = self.keys.partition().index() as usize;
        let stream = self.keys.stream(store::Stream::OrderStatus);
        let mut last: Option<EntryId> = None;
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            let read = async {
                // Start at the newest entry once; afterwards always continue from the
                // last one seen, so nothing written during an outage is skipped.
                let after = match last {
                    Some(id) => id,
                    None => newest(&mut self.conn, &self.keys).await?,
                };
                last = Some(after);
                self.set_head(partition, after);
                let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(REPLAY_PAGE)
                    .arg("BLOCK")
                    .arg(self.block.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(&stream)
                    .arg(after.to_string())
                    .query_async(&mut self.conn.clone())
                    .await?;
                Ok::<_, redis::RedisError>(
                    reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect::<Vec<_>>(),
                )
            };
            tokio::select! {
                result = read => match result {
                    Ok(entries) => {
                        backoff.reset();
                        for entry in &entries {
                            if let Some(id) = EntryId::parse(&entry.id) {
                                last = Some(id);
                                // The head moves before the send: a browser that
                                // subscribes after the send starts past it, one that
                                // subscribed before gets it (see `follow`).
                                self.set_head(partition, id);
                            }
                            if let Some(event) = to_event(partition, entry) {
                                // No subscribers is fine: nobody is watching.
                                let _ = self.sender.send(event);
                            }
                        }
                    }
                    Err(error) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(%error, partition, retry_in_ms = delay.as_millis() as u64, "reading order-status failed");
                        tokio::time::sleep(delay).await;
                    }
                },
                () = shutdown.cancelled() => break,
            }
        }
    }

    fn set_head(&self, partition: usize, id: EntryId) {
        *self.heads[partition].lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
    }
}

/// `GET /api/events`: the live feed for one browser.
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let partitions = state.feed.layout.partitions().count() as usize;
    let resume =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|text| Cursor::decode(text, partitions));
    let (tx, rx) = mpsc::channel::<Message>(256);
    tokio::spawn(follow(state.feed.clone(), resume, tx));
    let stream = ReceiverStream::new(rx).map(|message| {
        Ok(match message {
            Message::Change { id, json } => Event::default().id(id).data(&*json),
            Message::Subscribed => Event::default().comment(SUBSCRIBED),
        })
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The comment a browser gets once it is subscribed and caught up.
pub const SUBSCRIBED: &str = "subscribed";

/// What one browser is sent.
enum Message {
    /// A change, with the event id that stands for the browser's cursor after it.
    Change { id: String, json: Arc<str> },
    /// Subscribed and caught up: every later change reaches this browser.
    Subscribed,
}

/// Feeds one client: replay after its cursor in every partition, then the
/// broadcast, catching up from Redis whenever it fell behind. Ends when the
/// client goes away.
async fn follow(feed: StatusFeed, resume: Option<Cursor>, tx: mpsc::Sender<Message>) {
    // Subscribe before replaying so nothing falls between the two.
    let mut live = feed.sender.subscribe();
    // A browser without `Last-Event-ID` starts at the heads, read after
    // subscribing: every change sent before that is behind a head, every one
    // sent after reaches the subscription, so there is nothing to replay.
    let (mut cursor, mut behind) = match resume {
        Some(cursor) => (cursor, true),
        None => (feed.current_heads().await, false),
    };
    let mut announced = false;
    loop {
        // Catch up from Redis, partition by partition, until the replay runs dry.
        let partitions = if std::mem::replace(&mut behind, true) { cursor.0.len() } else { 0 };
        for partition in 0..partitions {
            loop {
                match feed.replay(partition, cursor.0[partition]).await {
                    Ok(events) => {
                        let full_page = events.len() == REPLAY_PAGE;
                        for event in events {
                            cursor.0[partition] = event.id;
                            if tx.send(Message::Change { id: cursor.encode(), json: event.json }).await.is_err() {
                                return;
                            }
                        }
                        if !full_page {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, partition, "replaying order-status failed; following live only");
                        break;
                    }
                }
            }
        }
        if !announced {
            announced = true;
            if tx.send(Message::Subscribed).await.is_err() {
                return;
            }
        }
        loop {
            let received = tokio::select! {
                received = live.recv() => received,
                () = feed.shutdown.cancelled() => return,
            };
            match received {
                Ok(event) => {
                    let Some(seen) = cursor.0.get_mut(event.partition) else { continue };
                    if event.id <= *seen {
                        continue; // already replayed
                    }
                    *seen = event.id;
                    if tx.send(Message::Change { id: cursor.encode(), json: event.json }).await.is_err() {
                        return;
                    }
                }
                // Too slow for the buffer: go back to Redis from the cursor.
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

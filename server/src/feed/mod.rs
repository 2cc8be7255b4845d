//! The live order feed: every status change of every partition relayed to
//! browsers over server-sent events.
//!
//! A status change is an entry of one of a partition's live streams
//! ([`Stream::LIVE`]): `order-placed` (pending), `order-completed`
//! (completed) and `order-status` (fulfilled, refunded); no change is written
//! twice. A reader task per server process reads every partition's three
//! (one XREAD BLOCK, on a connection of its own; on a cluster, one reader
//! per partition, as one command cannot span slots), puts their entries in the order
//! of the changes, and fans each out through one broadcast channel as an
//! SSE frame built once: the change serialized to JSON, with the event id
//! that every browser in step shares. Each browser's stream (polled by its connection's
//! own task, so no task or channel of its own) first replays from Redis
//! whatever followed its `Last-Event-ID` in every partition, then follows
//! the broadcast. The event id is a
//! [`cursor::Cursor`]: the last entry the browser has seen in each live
//! stream of each partition.
//! A client too slow for the broadcast buffer catches up from Redis, so it
//! loses nothing and never slows the others. Once a browser is subscribed and
//! has caught up, it gets the comment `: subscribed`, so a client (or a test)
//! knows from when on no change escapes it, without guessing with a delay.

pub mod cursor;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use redis::streams::StreamRangeReply;
use store::connection::{self, Backoff};
use store::streams::StreamReads;
use store::{Layout, PartitionKeys, Redis, RedisTarget, Stream as Log};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use self::cursor::{Cursor, EntryId};
use crate::AppState;

/// Changes buffered for subscribers before a slow one must catch up from Redis.
const BROADCAST_CAPACITY: usize = 1024;
/// Entries fetched per XRANGE page when replaying.
const REPLAY_PAGE: usize = 500;
/// How often every browser gets a comment, so that proxies and browsers
/// keep a quiet stream open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The live streams of one partition.
const LIVE: usize = Log::LIVE.len();

/// One change, with where it sits in its stream.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    /// The stream's place in the cursor: `partition * 3 + ` its place in [`Log::LIVE`].
    pub slot: usize,
    pub id: EntryId,
    /// The change as the browser receives it (a `StatusChange` in JSON).
    pub json: Arc<str>,
    /// Where every slot stands once this change is relayed, when every
    /// partition's reader has started: the event id of every browser that
    /// has seen exactly what this process relayed, made once per change
    /// rather than once per browser.
    pub position: Option<Arc<Position>>,
}

/// The relayed heads of every slot, and the change's SSE frame with the
/// event id that stands for them.
#[derive(Debug)]
pub struct Position {
    pub cursor: Cursor,
    pub frame: Bytes,
}

/// What the broadcast carries to every browser.
#[derive(Debug, Clone)]
enum Broadcast {
    Change(FeedEvent),
    /// Time for a keep-alive comment ([`KEEP_ALIVE`]).
    KeepAlive,
    /// The server is shutting down: every stream ends, so graceful shutdown
    /// completes.
    Closing,
}

/// The newest entry relayed of each slot (`None` before its reader's first
/// read); each slot's reader is the only one to move it, and goes on from
/// it. One lock for all: a change is sent while it is held, so the order
/// of the sends is the order of the positions.
type Heads = Arc<Mutex<Vec<Option<EntryId>>>>;

fn lock(heads: &Heads) -> std::sync::MutexGuard<'_, Vec<Option<EntryId>>> {
    heads.lock().unwrap_or_else(|p| p.into_inner())
}

/// The heads as a cursor, once every slot has one.
fn heads_cursor(heads: &[Option<EntryId>]) -> Option<Cursor> {
    heads.iter().copied().collect::<Option<Vec<_>>>().map(Cursor)
}

/// The process-wide relay of every partition's status changes.
#[derive(Clone)]
pub struct StatusFeed {
    sender: broadcast::Sender<Broadcast>,
    conn: Redis,
    layout: Layout,
    /// Where a new browser starts.
    heads: Heads,
    /// Cancelled on shutdown (then [`Broadcast::Closing`] is sent).
    shutdown: CancellationToken,
}

impl StatusFeed {
    /// Starts the reader tasks (one for every partition on a single Redis,
    /// one per partition on a cluster: see [`RedisTarget::read_sets`]); they
    /// stop when `shutdown` is cancelled.
    pub fn start(
        target: &RedisTarget,
        layout: &Layout,
        block: Duration,
        linger: Duration,
        shutdown: CancellationToken,
    ) -> redis::RedisResult<StatusFeed> {
        let (sender, _) = broadcast::channel(BROADCAST_CAPACITY);
        let heads: Heads = Arc::new(Mutex::new(vec![None; usize::from(layout.partitions().count()) * LIVE]));
        for keys in target.read_sets(layout.all().cloned().collect()) {
            let reader = Reader {
                conn: connection::connect_blocking(target, block)?,
                keys,
                sender: sender.clone(),
                heads: heads.clone(),
                block,
                linger,
            };
            tokio::spawn(reader.run(shutdown.clone()));
        }
        tokio::spawn(keep_alive(sender.clone(), shutdown.clone()));
        Ok(StatusFeed { sender, conn: connection::connect(target)?, layout: layout.clone(), heads, shutdown })
    }

    /// Changes of one partition after `after` (one position per live
    /// stream), in order, at most about a page; and whether there may be more.
    async fn replay(&self, partition: usize, after: [EntryId; LIVE]) -> redis::RedisResult<(Vec<FeedEvent>, bool)> {
        let keys = self.layout.all().nth(partition).expect("partition of this layout");
        read_changes(&mut self.conn.clone(), std::slice::from_ref(keys), &[after], None).await
    }

    /// Where a browser without `Last-Event-ID` starts: the newest entry of
    /// each live stream (asking Redis for those no reader has seen yet).
    async fn current_heads(&self) -> Cursor {
        let mut ids = Vec::new();
        for keys in self.layout.all() {
            let mut newest_of = None;
            for k in 0..LIVE {
                let slot = slot(keys, k);
                let known = lock(&self.heads)[slot];
                let id = match known {
                    Some(id) => id,
                    None => {
                        if newest_of.is_none() {
                            newest_of = newest(&mut self.conn.clone(), keys).await.ok();
                        }
                        newest_of.map_or(EntryId::START, |newest| newest[k])
                    }
                };
                ids.push(id);
            }
        }
        Cursor(ids)
    }
}

/// The cursor slot of a partition's `k`-th live stream.
fn slot(keys: &PartitionKeys, k: usize) -> usize {
    usize::from(keys.partition().index()) * LIVE + k
}

/// The newest entry of each of a partition's live streams (`0-0` when empty).
async fn newest(conn: &mut Redis, keys: &PartitionKeys) -> redis::RedisResult<[EntryId; LIVE]> {
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

/// Reads the changes of the partitions of `keys`, each after its own
/// `after` (one position per live stream; blocking up to `block` when there
/// are none), in one XREAD. Each partition's changes come in the order they
/// happened (see [`in_order`]); the second value says whether some partition
/// has more to read. Only a live read (with `block`, a reader's) records the
/// processing time of the orders that reached their final status: once per
/// change, not again for each browser a replay serves.
async fn read_changes(
    conn: &mut Redis,
    keys: &[PartitionKeys],
    after: &[[EntryId; LIVE]],
    block: Option<Duration>,
) -> redis::RedisResult<(Vec<FeedEvent>, bool)> {
    let names: Vec<String> = keys.iter().flat_map(|keys| Log::LIVE.map(|stream| keys.stream(stream))).collect();
    let mut read = redis::cmd("XREAD");
    read.arg("COUNT").arg(REPLAY_PAGE);
    if let Some(block) = block {
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
        let (partition, partial) = in_order(keys, pages, block.is_some());
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
            // Not a change (malformed, or a retry): empty, so it is not sent, but
            // the cursor still moves past it.
            let json = to_json(Log::LIVE[k], entry, record).unwrap_or_else(|| Arc::from(""));
            changes.push((order(k, id), FeedEvent { slot: slot(keys, k), id, json, position: None }));
        }
    }
    changes.sort_by_key(|(order, _)| *order);
    (changes.into_iter().map(|(_, event)| event).collect(), limit.is_some())
}

/// A change as the browser receives it (a `StatusChange` in JSON), or
/// `None` for an entry that is not one; `record`s the processing time of an
/// order that reached its final status.
fn to_json(stream: Log, entry: &redis::streams::StreamId, record: bool) -> Option<Arc<str>> {
    if store::streams::is_retry(entry) {
        return None;
    }
    let parsed = store::streams::status_change(stream, entry)
        .map_err(|e| e.to_string())
        .and_then(|change| serde_json::to_string(&change).map(|json| (change, json)).map_err(|e| e.to_string()));
    match parsed {
        Ok((change, json)) => {
            if record && change.status.is_terminal() {
                crate::metrics::record_processing(&change.order_id, change.status.as_str(), change.at);
            }
            Some(json.into())
        }
        Err(error) => {
            tracing::warn!(%error, stream = stream.name(), "skipping a malformed entry of the live feed");
            None
        }
    }
}

/// Follows the live streams of a set of partitions from their current ends.
struct Reader {
    conn: Redis,
    keys: Vec<PartitionKeys>,
    sender: broadcast::Sender<Broadcast>,
    heads: Heads,
    block: Duration,
    /// The pause after a read that brought several changes (`READ_LINGER_MS`):
    /// under load, fewer and larger reads.
    linger: Duration,
}

impl Reader {
    /// Relays until `shutdown`, surviving Redis outages.
    async fn run(mut self, shutdown: CancellationToken) {
        let partitions = self.keys.len();
        let mut started = false;
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            let read = async {
                // Start at the newest entries once; afterwards always continue from the
                // heads, the last entries relayed (only this reader moves its partitions'
                // heads), so nothing written during an outage is skipped.
                if !started {
                    let mut newest_ids = Vec::with_capacity(partitions);
                    for keys in &self.keys {
                        newest_ids.push(newest(&mut self.conn, keys).await?);
                    }
                    let mut heads = lock(&self.heads);
                    for (keys, ids) in self.keys.iter().zip(&newest_ids) {
                        for (k, id) in ids.iter().enumerate() {
                            heads[slot(keys, k)] = Some(*id);
                        }
                    }
                    started = true;
                }
                let after: Vec<[EntryId; LIVE]> = {
                    let heads = lock(&self.heads);
                    self.keys
                        .iter()
                        .map(|keys| std::array::from_fn(|k| heads[slot(keys, k)].unwrap_or(EntryId::START)))
                        .collect()
                };
                read_changes(&mut self.conn.clone(), &self.keys, &after, Some(self.block)).await
            };
            tokio::select! {
                result = read => match result {
                    Ok((events, more)) => {
                        backoff.reset();
                        let linger = events.len() >= 2 && !more && !self.linger.is_zero();
                        for mut event in events {
                            // The head moves before the send, under the same lock: a
                            // browser that subscribes after the send starts past it,
                            // one that subscribed before gets it (see `follow`).
                            let mut heads = lock(&self.heads);
                            heads[event.slot] = Some(event.id);
                            if !event.json.is_empty() {
                                event.position = heads_cursor(&heads).map(|cursor| {
                                    let frame = frame(&cursor.encode(), &event.json);
                                    Arc::new(Position { cursor, frame })
                                });
                                // No subscribers is fine: nobody is watching.
                                let _ = self.sender.send(Broadcast::Change(event));
                            }
                        }
                        if linger {
                            tokio::select! {
                                () = tokio::time::sleep(self.linger) => {}
                                () = shutdown.cancelled() => break,
                            }
                        }
                    }
                    Err(error) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(%error, partitions, retry_in_ms = delay.as_millis() as u64, "reading the live streams failed");
                        tokio::time::sleep(delay).await;
                    }
                },
                () = shutdown.cancelled() => break,
            }
        }
    }
}

/// Sends [`Broadcast::KeepAlive`] every [`KEEP_ALIVE`], one timer for all
/// browsers rather than one each, and [`Broadcast::Closing`] on shutdown.
async fn keep_alive(sender: broadcast::Sender<Broadcast>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let _ = sender.send(Broadcast::KeepAlive);
            }
            () = shutdown.cancelled() => {
                let _ = sender.send(Broadcast::Closing);
                return;
            }
        }
    }
}

/// One SSE event: its id, its data (JSON, which has no line breaks, as an
/// event id has none), then the blank line that ends it.
fn frame(event_id: &str, json: &str) -> Bytes {
    let parts = ["id: ", event_id, "\ndata: ", json, "\n\n"];
    let mut frame = String::with_capacity(parts.iter().map(|part| part.len()).sum());
    for part in parts {
        frame.push_str(part);
    }
    frame.into()
}

/// The comment a browser gets once it is subscribed and caught up.
const SUBSCRIBED_FRAME: &[u8] = b": subscribed\n\n";
/// The comment every browser gets every [`KEEP_ALIVE`].
const KEEP_ALIVE_FRAME: &[u8] = b": keep-alive\n\n";

/// `GET /api/events`: the live feed for one browser.
pub async fn events(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let slots = usize::from(state.feed.layout.partitions().count()) * LIVE;
    let resume =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|text| Cursor::decode(text, slots));
    // Subscribe now, before any replay, so nothing falls between the two.
    let follower = Follower {
        live: state.feed.sender.subscribe(),
        feed: state.feed.clone(),
        cursor: resume.clone().unwrap_or(Cursor(Vec::new())),
        phase: Phase::Start { resumed: resume.is_some() },
        queued: VecDeque::new(),
        announced: false,
    };
    // The connection's own task polls the stream when it can write: no task
    // or channel per browser between the broadcast and the socket.
    let frames = futures::stream::unfold(follower, |mut follower| async move {
        let frame = follower.next().await?;
        Some((Ok::<_, Infallible>(frame), follower))
    });
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], Body::from_stream(frames))
        .into_response()
}

/// Where a browser's feed stands.
enum Phase {
    /// Just subscribed; with `Last-Event-ID` when `resumed`.
    Start { resumed: bool },
    /// Catching up from Redis, this partition next.
    Replay { partition: usize },
    /// Following the broadcast.
    Live,
}

/// Feeds one browser: replay after its cursor in every partition, then the
/// broadcast, catching up from Redis whenever it fell behind. Ends on
/// shutdown; dropped when the browser goes away.
struct Follower {
    feed: StatusFeed,
    live: broadcast::Receiver<Broadcast>,
    cursor: Cursor,
    phase: Phase,
    /// Replayed frames not sent yet.
    queued: VecDeque<Bytes>,
    /// Whether `: subscribed` was sent.
    announced: bool,
}

impl Follower {
    /// The next frame for the browser; `None` ends its stream.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.queued.pop_front() {
                return Some(frame);
            }
            match self.phase {
                // A browser without `Last-Event-ID` starts at the heads, read after
                // subscribing: every change sent before that is behind a head, every
                // one sent after reaches the subscription, so there is nothing to
                // replay.
                Phase::Start { resumed: false } => {
                    self.cursor = self.feed.current_heads().await;
                    self.phase = Phase::Live;
                }
                Phase::Start { resumed: true } => self.phase = Phase::Replay { partition: 0 },
                Phase::Replay { partition } if partition * LIVE >= self.cursor.0.len() => self.phase = Phase::Live,
                Phase::Replay { partition } => self.replay(partition).await,
                Phase::Live if !self.announced => {
                    // Subscribed after the shutdown began, it would wait for a
                    // `Closing` sent before it: check once here instead.
                    if self.feed.shutdown.is_cancelled() {
                        return None;
                    }
                    self.announced = true;
                    return Some(Bytes::from_static(SUBSCRIBED_FRAME));
                }
                Phase::Live => match self.live.recv().await {
                    Ok(Broadcast::Change(event)) => {
                        if let Some(frame) = self.relay(event) {
                            return Some(frame);
                        }
                    }
                    Ok(Broadcast::KeepAlive) => return Some(Bytes::from_static(KEEP_ALIVE_FRAME)),
                    Ok(Broadcast::Closing) | Err(broadcast::error::RecvError::Closed) => return None,
                    // Too slow for the buffer (perhaps past a `Closing`): go back to Redis
                    // from the cursor, unless the server is shutting down.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if self.feed.shutdown.is_cancelled() {
                            return None;
                        }
                        self.phase = Phase::Replay { partition: 0 };
                    }
                },
            }
        }
    }

    /// Queues one page of a partition's missed changes, moving on to the
    /// next partition when it has run dry (or cannot be read).
    async fn replay(&mut self, partition: usize) {
        let after: [EntryId; LIVE] = std::array::from_fn(|k| self.cursor.0[partition * LIVE + k]);
        match self.feed.replay(partition, after).await {
            Ok((events, more)) => {
                for event in events {
                    self.cursor.0[event.slot] = event.id;
                    if !event.json.is_empty() {
                        self.queued.push_back(frame(&self.cursor.encode(), &event.json));
                    }
                }
                if !more {
                    self.phase = Phase::Replay { partition: partition + 1 };
                }
            }
            Err(error) => {
                tracing::warn!(%error, partition, "replaying the live streams failed; following live only");
                self.phase = Phase::Replay { partition: partition + 1 };
            }
        }
    }

    /// A change from the broadcast as a frame, unless it was replayed
    /// already: the frame every browser in step shares, or one with this
    /// browser's own event id.
    fn relay(&mut self, event: FeedEvent) -> Option<Bytes> {
        let seen = self.cursor.0.get_mut(event.slot)?;
        if event.id <= *seen {
            return None;
        }
        *seen = event.id;
        Some(match event.position {
            Some(position) if position.cursor == self.cursor => position.frame.clone(),
            _ => frame(&self.cursor.encode(), &event.json),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use redis::streams::StreamId;
    use redis::Value;
    use store::Partitions;

    use super::*;

    fn entry(id: &str, order_id: &str, status: Option<&str>) -> StreamId {
        let mut map = HashMap::from([
            ("order_id".to_string(), Value::BulkString(order_id.as_bytes().to_vec())),
            ("product_id".to_string(), Value::BulkString(b"P".to_vec())),
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
                (event.slot, event.id.to_string(), format!("{}:{}", change.order_id, change.status.as_str()))
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
    fn an_entry_that_is_not_a_change_moves_the_cursor_but_is_not_sent() {
        let layout = Layout::new("test", Partitions::default()).unwrap();
        let keys = layout.keys(layout.partitions().nth(0));
        let mut retried = entry("5-0", "A", None);
        retried.map.insert("retried".to_string(), Value::BulkString(b"1".to_vec()));
        let (events, _) = in_order(keys, [vec![retried], Vec::new(), Vec::new()], false);
        assert_eq!(events.len(), 1);
        assert!(events[0].json.is_empty());
    }

    /// A feed of one partition whose Redis is never reached (the connection
    /// is made on first use), and a follower of it that is live and announced.
    fn live_follower() -> (broadcast::Sender<Broadcast>, CancellationToken, Follower) {
        let layout = Layout::new("test", Partitions::new(1).unwrap()).unwrap();
        let (sender, live) = broadcast::channel(BROADCAST_CAPACITY);
        let shutdown = CancellationToken::new();
        let target = RedisTarget::Single("redis://127.0.0.1:1".into());
        let feed = StatusFeed {
            sender: sender.clone(),
            conn: connection::connect(&target).unwrap(),
            layout,
            heads: Arc::new(Mutex::new(vec![None; LIVE])),
            shutdown: shutdown.clone(),
        };
        let cursor = Cursor(vec![EntryId { ms: 5, seq: 0 }; LIVE]);
        let follower = Follower { feed, live, cursor, phase: Phase::Live, queued: VecDeque::new(), announced: true };
        (sender, shutdown, follower)
    }

    fn change(slot: usize, ms: u64, position: Option<Cursor>) -> Broadcast {
        let json: Arc<str> = Arc::from(format!(r#"{{"n":{ms}}}"#));
        let position = position.map(|cursor| {
            let frame = frame(&format!("shared-{ms}"), &json);
            Arc::new(Position { cursor, frame })
        });
        Broadcast::Change(FeedEvent { slot, id: EntryId { ms, seq: 0 }, json, position })
    }

    #[test]
    fn a_frame_is_the_id_and_data_lines_then_a_blank_line() {
        assert_eq!(&frame("k1:0,,3", r#"{"a":"b\nc"}"#)[..], b"id: k1:0,,3\ndata: {\"a\":\"b\\nc\"}\n\n");
    }

    #[tokio::test]
    async fn a_follower_in_step_gets_the_shared_frame_and_one_behind_gets_its_own() {
        let (sender, _shutdown, mut follower) = live_follower();
        let mut in_step = follower.cursor.clone();
        in_step.0[1] = EntryId { ms: 6, seq: 0 };
        sender.send(change(1, 6, Some(in_step.clone()))).unwrap();
        assert_eq!(&follower.next().await.unwrap()[..], b"id: shared-6\ndata: {\"n\":6}\n\n");
        // Already seen: skipped. Then a change whose shared position this
        // follower is not at (it missed slot 0's entry 7): its own event id.
        sender.send(change(1, 6, Some(in_step.clone()))).unwrap();
        let mut ahead = in_step.clone();
        ahead.0[0] = EntryId { ms: 7, seq: 0 };
        ahead.0[2] = EntryId { ms: 8, seq: 0 };
        sender.send(change(2, 8, Some(ahead))).unwrap();
        let mut own = in_step;
        own.0[2] = EntryId { ms: 8, seq: 0 };
        let expected = frame(&own.encode(), r#"{"n":8}"#);
        assert_eq!(follower.next().await.unwrap(), expected);
        assert_eq!(follower.cursor, own);
    }

    #[tokio::test]
    async fn a_follower_relays_keep_alives_and_ends_on_closing() {
        let (sender, _shutdown, mut follower) = live_follower();
        sender.send(Broadcast::KeepAlive).unwrap();
        assert_eq!(&follower.next().await.unwrap()[..], KEEP_ALIVE_FRAME);
        sender.send(Broadcast::Closing).unwrap();
        assert_eq!(follower.next().await, None);
    }

    #[tokio::test]
    async fn a_follower_that_lags_during_shutdown_ends_instead_of_replaying() {
        let (sender, shutdown, mut follower) = live_follower();
        for ms in 0..=BROADCAST_CAPACITY as u64 {
            sender.send(change(0, 10 + ms, None)).unwrap();
        }
        shutdown.cancel();
        assert_eq!(follower.next().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn every_browser_gets_a_keep_alive_from_one_timer_and_closing_on_shutdown() {
        let (sender, mut received) = broadcast::channel(BROADCAST_CAPACITY);
        let shutdown = CancellationToken::new();
        let ticker = tokio::spawn(keep_alive(sender, shutdown.clone()));
        tokio::time::sleep(KEEP_ALIVE * 2 + Duration::from_millis(1)).await;
        for _ in 0..2 {
            assert!(matches!(received.try_recv(), Ok(Broadcast::KeepAlive)));
        }
        assert!(received.try_recv().is_err(), "one keep-alive per interval");
        shutdown.cancel();
        ticker.await.unwrap();
        assert!(matches!(received.try_recv(), Ok(Broadcast::Closing)));
    }
}

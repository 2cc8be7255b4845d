//! The live order feed: every status change of every partition relayed to
//! browsers over server-sent events.
//!
//! A status change is an entry of one of a partition's live streams
//! ([`Log::LIVE`]): `order-placed` (pending), `order-completed`
//! (completed) and `order-status` (fulfilled, refunded); no change is written
//! twice. A reader task per server process reads every partition's three
//! (one XREAD BLOCK, on a connection of its own; on a cluster, one reader
//! per partition, as one command cannot span slots), puts their entries in the order
//! of the changes, and fans each out through one broadcast channel as an
//! SSE frame built once: the change serialized to JSON, with the event id
//! that every browser in step shares. Each browser's stream (polled by its connection's
//! own task, so no task or channel of its own) first replays from Redis
//! whatever followed its `Last-Event-ID` in every partition, then follows
//! the broadcast. A reader does not read the streams per change: the
//! scripts push each change as they write it (see [`relay`]).
//! The event id is a
//! [`cursor::Cursor`]: the last entry the browser has seen in each live
//! stream of each partition.
//! The readers read only while some browser follows the feed ([`relay`]).
//! A client too slow for the broadcast buffer catches up from Redis, so it
//! loses nothing and never slows the others. Once a browser is subscribed and
//! has caught up, it gets a `subscribed` event with the id it stands at, so a
//! client (or a test) knows from when on no change escapes it, without
//! guessing with a delay, and a page that loses its connection before any
//! change came still resumes (a server restart under an open page misses
//! nothing). A page that had to open a new `EventSource` (the browser gives
//! up on a refusal, or on a proxy's 502 while the server restarts) sends its
//! last id as `?last_event_id=`, as `EventSource` cannot set the header.
//!
//! Every connection's cost is bounded: a replay brings at most
//! `FEED_REPLAY_MAX` changes (a browser further behind, or one whose missed
//! changes were trimmed away, is told to `reload` its lists instead), the
//! connections are capped in all and per client address ([`admission`]), and
//! each lasts at most about `FEED_MAX_AGE_SECS`.
//!
//! With `REDIS_MIN_REPLICAS` ≥ 1 on a cluster, the feed reads from replicas:
//! a browser sees a change only once a replica holds it. Read from a
//! master, it would also see changes that master made just before it was
//! cut off or paused, which die with it when a replica takes over; the
//! workers then make them again under new entry ids, and the browser sees
//! them twice (found by the fault lab, `scripts/faults`).
//!
//! # Layout
//! - [`source`]: reading the live streams from Redis.
//! - [`relay`]: the reader tasks and the broadcast, and the keep-alive timer.
//! - [`follower`]: one browser's replay, then live.
//! - [`frame`]: the SSE frames.
//! - [`admission`]: the caps on connections.
//! - [`cursor`]: the event ids.

pub mod admission;
pub mod cursor;
pub mod follower;
pub mod frame;
pub mod relay;
pub mod source;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use store::connection::{self, ReadFrom};
use store::limits::ClientAddr;
use store::{Layout, PartitionKeys, Redis, RedisTarget, Stream as Log};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use self::admission::{FeedClients, Refused};
use self::cursor::{Cursor, EntryId};
use self::follower::{Follower, Resume};
use self::frame::Subject;
use self::source::Retained;
use crate::config::FeedLimits;
use crate::error::ErrorBody;
use crate::AppState;

/// Changes buffered for subscribers before a slow one must catch up from Redis.
const BROADCAST_CAPACITY: usize = 1024;
/// Entries fetched per XRANGE page when replaying.
const REPLAY_PAGE: usize = 500;
/// How often every browser gets a comment, so that proxies and browsers
/// keep a quiet stream open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a browser waits for the readers to start before it takes the
/// heads as they are (Redis is down, say).
const START_WAIT: Duration = Duration::from_secs(3);
/// How long a browser refused for the caps is asked to wait.
const RETRY_AFTER_SECS: u64 = 10;

/// The live streams of one partition.
const LIVE: usize = Log::LIVE.len();

/// One change, with where it sits in its stream.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    /// The stream's place in the cursor: `partition * 3 + ` its place in [`Log::LIVE`].
    pub slot: usize,
    pub id: EntryId,
    /// An order's change or a product's.
    pub subject: Subject,
    /// The change as the browser receives it (a `StatusChange` or a
    /// `ProductChange` in JSON); empty for an entry that is not sent.
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
pub enum Broadcast {
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
    /// `FEED_*`: the caps of every connection.
    limits: FeedLimits,
    /// The connections open, in all and per client.
    clients: Arc<FeedClients>,
    /// Wakes parked readers when a browser comes, and browsers when the
    /// readers have started.
    signals: Arc<relay::Signals>,
}

impl StatusFeed {
    /// Starts the reader tasks (one for every partition on a single Redis,
    /// one per partition on a cluster: see [`RedisTarget::read_sets`]); they
    /// stop when `shutdown` is cancelled. Every read, live or replayed, goes
    /// to `read_from`.
    pub fn start(
        target: &RedisTarget,
        layout: &Layout,
        read_from: ReadFrom,
        block: Duration,
        linger: Duration,
        limits: FeedLimits,
        shutdown: CancellationToken,
    ) -> redis::RedisResult<StatusFeed> {
        let (sender, _) = broadcast::channel(BROADCAST_CAPACITY);
        let heads: Heads = Arc::new(Mutex::new(vec![None; usize::from(layout.partitions().count()) * LIVE]));
        let signals = Arc::new(relay::Signals::default());
        for keys in target.read_sets(layout.all().cloned().collect()) {
            let reader = relay::Reader {
                conn: connection::connect_blocking(target, block, read_from)?,
                keys,
                sender: sender.clone(),
                heads: heads.clone(),
                block,
                linger,
                poll: limits.poll,
                push: match target {
                    RedisTarget::Single(_) if limits.push => Some(target.clone()),
                    // A push leaves the master as the script runs, before any
                    // replica holds the change: a feed that shows only what a
                    // replica holds reads the replicas instead.
                    RedisTarget::Cluster(_) if limits.push && read_from == ReadFrom::Master => Some(target.clone()),
                    _ => None,
                },
                signals: signals.clone(),
            };
            tokio::spawn(reader.run(shutdown.clone()));
        }
        tokio::spawn(relay::keep_alive(sender.clone(), shutdown.clone()));
        Ok(StatusFeed {
            sender,
            conn: connection::connect_reading(target, read_from)?,
            layout: layout.clone(),
            heads,
            shutdown,
            limits,
            clients: FeedClients::new(limits.max_clients, limits.max_per_client),
            signals,
        })
    }

    /// A new browser's subscription to the broadcast; wakes the readers
    /// if they were parked for want of one.
    fn subscribe(&self) -> broadcast::Receiver<Broadcast> {
        let live = self.sender.subscribe();
        self.signals.watched.notify_waiters();
        live
    }

    /// The heads once every reader has started (at most [`START_WAIT`];
    /// after that, as [`StatusFeed::current_heads`] finds them). Taken
    /// by a browser that has subscribed: every change after them reaches
    /// its subscription.
    async fn started_heads(&self) -> Cursor {
        let deadline = tokio::time::Instant::now() + START_WAIT;
        loop {
            let started = self.signals.started.notified();
            tokio::pin!(started);
            started.as_mut().enable();
            if let Some(cursor) = heads_cursor(&lock(&self.heads)) {
                return cursor;
            }
            if tokio::time::timeout_at(deadline, started).await.is_err() {
                return self.current_heads().await;
            }
        }
    }

    fn keys(&self, partition: usize) -> &PartitionKeys {
        self.layout.all().nth(partition).expect("partition of this layout")
    }

    /// Changes of one partition after `after` (one position per live
    /// stream), in order, at most about a page; and whether there may be more.
    async fn replay(&self, partition: usize, after: [EntryId; LIVE]) -> redis::RedisResult<(Vec<FeedEvent>, bool)> {
        let keys = self.keys(partition);
        source::read_changes(&mut self.conn.clone(), std::slice::from_ref(keys), &[after], source::Read::Replay).await
    }

    /// What each live stream of one partition still holds.
    async fn retained(&self, partition: usize) -> redis::RedisResult<[Retained; LIVE]> {
        source::retained(&mut self.conn.clone(), self.keys(partition)).await
    }

    /// What every live stream of the first `partitions` holds, in slot order.
    async fn retained_streams(&self, partitions: usize) -> redis::RedisResult<Vec<Retained>> {
        let retained = futures::future::try_join_all((0..partitions).map(|partition| self.retained(partition))).await?;
        Ok(retained.into_iter().flatten().collect())
    }

    /// The cursor of a page that has seen every change before `ms`: in each
    /// stream `ms-0`, or its newest entry when that is older (nothing came
    /// between the two); `None` when some stream no longer holds what
    /// followed (trimmed), so the page must reload.
    async fn cursor_since(&self, ms: u64) -> redis::RedisResult<Option<Cursor>> {
        let retained = self.retained_streams(usize::from(self.layout.partitions().count())).await?;
        let since = EntryId { ms, seq: 0 };
        let cursor = Cursor(retained.iter().map(|stream| since.min(stream.last)).collect());
        let resumable = retained.iter().zip(&cursor.0).all(|(stream, seen)| stream.can_resume_from(*seen));
        Ok(resumable.then_some(cursor))
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
                            newest_of = source::newest(&mut self.conn.clone(), keys).await.ok();
                        }
                        newest_of.map_or(EntryId::START, |newest| newest[k])
                    }
                };
                ids.push(id);
            }
        }
        Cursor(ids)
    }

    /// Live-feed connections open now.
    pub fn clients(&self) -> usize {
        self.clients.open()
    }

    /// Live-feed connections allowed at most (`FEED_MAX_CLIENTS`).
    pub fn max_clients(&self) -> usize {
        self.limits.max_clients
    }
}

/// The cursor slot of a partition's `k`-th live stream.
fn slot(keys: &PartitionKeys, k: usize) -> usize {
    usize::from(keys.partition().index()) * LIVE + k
}

/// `GET /api/events`: the live feed for one browser; 429 past
/// `FEED_MAX_PER_CLIENT` connections from its address, 503 past
/// `FEED_MAX_CLIENTS` in all, both with `Retry-After`.
pub async fn events(
    State(state): State<AppState>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let admission = match state.feed.clients.admit(client) {
        Ok(admission) => admission,
        Err(refused) => {
            let (status, reason, error) = match refused {
                Refused::PerClient => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "per_client",
                    "too many live-feed connections from this address; close some pages or retry later",
                ),
                Refused::Full => (StatusCode::SERVICE_UNAVAILABLE, "full", "the live feed is full; retry later"),
            };
            metrics::counter!("stockflow_feed_refused_total", "reason" => reason).increment(1);
            let retry_after = [(header::RETRY_AFTER, RETRY_AFTER_SECS.to_string())];
            return (status, retry_after, Json(ErrorBody { error: error.to_string() })).into_response();
        }
    };
    let slots = usize::from(state.feed.layout.partitions().count()) * LIVE;
    let resume = resume_from(&headers, &uri, slots);
    // Subscribe now, before any replay, so nothing falls between the two.
    let follower = Follower::new(state.feed.clone(), state.feed.subscribe(), resume, Some(admission));
    // The connection's own task polls the stream when it can write: no task
    // or channel per browser between the broadcast and the socket.
    let frames = futures::stream::unfold(follower, |mut follower| async move {
        let frame = follower.next().await?;
        Some((Ok::<_, Infallible>(frame), follower))
    });
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
        // nginx passes the stream on as it comes instead of buffering it.
        (header::HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    (headers, Body::from_stream(frames)).into_response()
}

/// `?last_event_id=`: the id a page that opened a new `EventSource` goes on
/// from; `?since=`: when the page's lists were read, for its first one.
#[derive(serde::Deserialize)]
struct ResumeQuery {
    last_event_id: Option<String>,
    since: Option<u64>,
}

/// How much earlier than a page's `since` its first connection starts: what
/// the server's and Redis's clocks may disagree by (a change stamped by a
/// Redis clock behind the server's is still replayed). Changes the page's
/// lists already hold are replayed harmlessly: the page keeps each order's
/// furthest status and counts each move once.
const SINCE_MARGIN_MS: u64 = 250;

/// Where a browser asks to start: after its `Last-Event-ID` header, else
/// after `?last_event_id=`, else after `?since=` (a page's first
/// connection: everything changed since its lists were read is replayed, so
/// it need not fetch them again), else at the heads. An id it sent that this
/// server cannot read makes it reload rather than miss what it did not see.
fn resume_from(headers: &HeaderMap, uri: &Uri, slots: usize) -> Resume {
    let header = headers.get("last-event-id").map(|value| value.to_str().unwrap_or_default().to_string());
    let query = Query::<ResumeQuery>::try_from_uri(uri).ok().map(|Query(query)| query);
    let (last_event_id, since) = match query {
        Some(query) => (header.or(query.last_event_id), query.since),
        None => (header, None),
    };
    match (last_event_id, since) {
        (Some(text), _) => Cursor::decode(&text, slots).map_or(Resume::Unreadable, Resume::After),
        (None, Some(ms)) => Resume::Since(ms.saturating_sub(SINCE_MARGIN_MS)),
        (None, None) => Resume::Fresh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resume(header: Option<&str>, uri: &str) -> Resume {
        let mut headers = HeaderMap::new();
        if let Some(value) = header {
            headers.insert("last-event-id", value.parse().unwrap());
        }
        resume_from(&headers, &uri.parse().unwrap(), LIVE)
    }

    #[test]
    fn a_browser_resumes_after_its_header_else_its_query_else_starts_fresh() {
        let after = |text| Cursor::decode(text, LIVE).unwrap();
        assert!(matches!(resume(None, "/api/events"), Resume::Fresh));
        assert!(
            matches!(resume(Some("k1:0,,3"), "/api/events?last_event_id=k1:5,,"), Resume::After(c) if c == after("k1:0,,3"))
        );
        assert!(
            matches!(resume(None, "/api/events?last_event_id=k1%3A5%2C%2C"), Resume::After(c) if c == after("k1:5,,"))
        );
        // An id of another layout (two slots, not three) cannot be replayed to.
        assert!(matches!(resume(Some("k1:0,"), "/api/events"), Resume::Unreadable));
        assert!(matches!(resume(None, "/api/events?last_event_id=nonsense"), Resume::Unreadable));
        assert!(matches!(resume(None, "/api/events?other=1"), Resume::Fresh));
        // A page's first connection starts from when its lists were read, less the margin.
        assert!(matches!(resume(None, "/api/events?since=10000"), Resume::Since(9750)));
        assert!(matches!(resume(Some("k1:0,,3"), "/api/events?since=10000"), Resume::After(_)));
        assert!(matches!(resume(None, "/api/events?since=soon"), Resume::Fresh));
    }
}

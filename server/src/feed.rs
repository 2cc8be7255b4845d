//! The live order feed: `order-status` relayed to browsers over server-sent events.
//!
//! One task per server process reads the stream (XREAD BLOCK) and fans each
//! change out through a broadcast channel. Each browser gets its own task,
//! which first replays from Redis whatever followed its `Last-Event-ID`, then
//! follows the broadcast; the SSE event id is the stream entry id. A client too
//! slow for the broadcast buffer catches up from Redis, so it loses nothing and
//! never slows the others.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use domain::StatusChange;
use futures::Stream;
use redis::aio::ConnectionManager;
use redis::streams::{StreamRangeReply, StreamReadReply};
use store::connection::{self, Backoff};
use store::keys::stream::ORDER_STATUS;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// Changes buffered for subscribers before a slow one must catch up from Redis.
const BROADCAST_CAPACITY: usize = 1024;
/// Entries fetched per XRANGE page when replaying.
const REPLAY_PAGE: usize = 500;

/// One change with its stream entry id.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub id: String,
    pub change: StatusChange,
}

/// The process-wide relay of `order-status`.
#[derive(Clone)]
pub struct StatusFeed {
    sender: broadcast::Sender<FeedEvent>,
    conn: ConnectionManager,
    /// Ends every client's stream on shutdown, so graceful shutdown completes.
    shutdown: CancellationToken,
}

impl StatusFeed {
    /// Starts the reader task; it stops when `shutdown` is cancelled.
    pub fn start(redis_url: &str, block: Duration, shutdown: CancellationToken) -> redis::RedisResult<StatusFeed> {
        let (sender, _) = broadcast::channel(BROADCAST_CAPACITY);
        let reader = connection::connect_blocking(redis_url, block)?;
        tokio::spawn(read_loop(reader, sender.clone(), block, shutdown.clone()));
        Ok(StatusFeed { sender, conn: connection::connect(redis_url)?, shutdown })
    }

    /// Entries after `after` (exclusive), oldest first, at most one page.
    async fn replay(&self, after: &str) -> redis::RedisResult<Vec<FeedEvent>> {
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(ORDER_STATUS)
            .arg(format!("({after}"))
            .arg("+")
            .arg("COUNT")
            .arg(REPLAY_PAGE)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(reply.ids.iter().filter_map(to_event).collect())
    }
}

fn to_event(entry: &redis::streams::StreamId) -> Option<FeedEvent> {
    match store::streams::status_change(entry) {
        Ok(change) => Some(FeedEvent { id: entry.id.clone(), change }),
        Err(error) => {
            tracing::warn!(%error, "skipping a malformed order-status entry");
            None
        }
    }
}

/// Follows the stream from its current end, surviving Redis outages.
async fn read_loop(
    mut conn: ConnectionManager,
    sender: broadcast::Sender<FeedEvent>,
    block: Duration,
    shutdown: CancellationToken,
) {
    let mut last_id: Option<String> = None;
    let mut backoff = Backoff::default();
    while !shutdown.is_cancelled() {
        let read = async {
            // Start at the newest entry once; afterwards always continue from the
            // last one seen, so nothing written during an outage is skipped.
            let after = match &last_id {
                Some(id) => id.clone(),
                None => {
                    let newest: StreamRangeReply = redis::cmd("XREVRANGE")
                        .arg(ORDER_STATUS)
                        .arg("+")
                        .arg("-")
                        .arg("COUNT")
                        .arg(1)
                        .query_async(&mut conn)
                        .await?;
                    newest.ids.first().map(|e| e.id.clone()).unwrap_or_else(|| "0-0".to_string())
                }
            };
            last_id = Some(after.clone());
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(REPLAY_PAGE)
                .arg("BLOCK")
                .arg(block.as_millis() as u64)
                .arg("STREAMS")
                .arg(ORDER_STATUS)
                .arg(&after)
                .query_async(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>(reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect::<Vec<_>>())
        };
        tokio::select! {
            result = read => match result {
                Ok(entries) => {
                    backoff.reset();
                    for entry in &entries {
                        last_id = Some(entry.id.clone());
                        if let Some(event) = to_event(entry) {
                            if event.change.status.is_terminal() {
                                crate::metrics::record_processing(&event.change.order_id, event.change.status.as_str(), event.change.at);
                            }
                            // No subscribers is fine: nobody is watching.
                            let _ = sender.send(event);
                        }
                    }
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "reading order-status failed");
                    tokio::time::sleep(delay).await;
                }
            },
            () = shutdown.cancelled() => break,
        }
    }
}

/// Orders stream entry ids numerically (`<ms>-<seq>`).
fn id_key(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// `GET /api/events`: the live feed for one browser.
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let resume_after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| id.split_once('-').is_some_and(|(a, b)| a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok()))
        .map(str::to_string);
    let (tx, rx) = mpsc::channel::<FeedEvent>(256);
    tokio::spawn(follow(state.feed.clone(), resume_after, tx));
    let stream = ReceiverStream::new(rx).map(|event| {
        let data = serde_json::to_string(&event.change).unwrap_or_default();
        Ok(Event::default().id(event.id).data(data))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Feeds one client: replay after its last id, then the broadcast, catching
/// up from Redis whenever it fell behind. Ends when the client goes away.
async fn follow(feed: StatusFeed, resume_after: Option<String>, tx: mpsc::Sender<FeedEvent>) {
    // Subscribe before replaying so nothing falls between the two.
    let mut live = feed.sender.subscribe();
    let mut last_sent = resume_after;
    loop {
        // Catch up from Redis after `last_sent` until the replay runs dry.
        if let Some(after) = last_sent.clone() {
            match feed.replay(&after).await {
                Ok(events) => {
                    let full_page = events.len() == REPLAY_PAGE;
                    for event in events {
                        last_sent = Some(event.id.clone());
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                    if full_page {
                        continue;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "replaying order-status failed; following live only")
                }
            }
        }
        loop {
            let received = tokio::select! {
                received = live.recv() => received,
                () = feed.shutdown.cancelled() => return,
            };
            match received {
                Ok(event) => {
                    if last_sent.as_deref().is_some_and(|last| id_key(&event.id) <= id_key(last)) {
                        continue; // already replayed
                    }
                    last_sent = Some(event.id.clone());
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                // Too slow for the buffer: go back to Redis from the last sent entry.
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

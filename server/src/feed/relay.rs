//! The relay: one task per set of partitions follows their live streams
//! and fans each change out to every browser through one broadcast, as an
//! SSE frame built once; one timer sends every browser its keep-alive.
//!
//! On Redis 7 or later a reader does not read the streams per change: the
//! scripts push each entry as they add it (`live_prelude.lua`), and the
//! reader subscribes to those pushes (`FEED_PUSH`): on the Redis, or on a
//! cluster on the master that serves its partition (whose slot all three
//! streams share), following the slot when it moves. Redis then hands each
//! change to every server as it happens, which costs it a few microseconds
//! per server rather than a read over every partition's streams: the
//! feed's cost hardly grows with the servers watched (see the bench's
//! `servers` scenario). A push names the entry before it in its stream, so a
//! push missed (the connection was lost) or an entry added without one is
//! seen as a gap, and the reader reads the streams from its heads to fill it;
//! it also reads them once every `READ_BLOCK_MS`, for entries added without a
//! push that no later push reveals (a script of an older version, say).
//!
//! Elsewhere (`FEED_PUSH=false`, an older Redis, TLS, a cluster read from
//! its replicas, which must show only what a replica holds) a reader reads
//! the streams. While changes flow, it polls: it pauses `FEED_POLL_MS` after
//! a read that brought changes and reads again without blocking, going back
//! to a blocking read once a poll finds nothing. A blocking read over every
//! partition's live streams costs Redis several times what a poll does, and
//! at ordinary load each change would otherwise wake one of its own.
//!
//! A reader follows only while some browser follows the feed: with none, it
//! forgets its heads and parks until [`Signals::watched`] wakes it, so an
//! unwatched server costs Redis no reads at all (a blocking read over every
//! partition's live streams costs more than the change it brings). Woken,
//! it starts again at the newest entries and says so on
//! [`Signals::started`]; a browser takes its cursor only after that (see
//! [`super::StatusFeed::started_heads`]), so no change falls between.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use store::connection::Backoff;
use store::subscription::{self, Heard, Subscription};
use store::{PartitionKeys, Redis, RedisTarget, Stream as Log};
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

use super::cursor::EntryId;
use super::source::{self, newest, read_changes, Read};
use super::{frame, heads_cursor, lock, slot, Broadcast, FeedEvent, Heads, Position, KEEP_ALIVE, LIVE};

/// How the readers and the browsers wake each other.
#[derive(Default)]
pub struct Signals {
    /// A browser subscribed: parked readers start again.
    pub watched: Notify,
    /// A reader (re)started: its heads are the newest entries again.
    pub started: Notify,
}

/// Follows the live streams of a set of partitions from their current ends,
/// while some browser follows the feed.
pub struct Reader {
    pub conn: Redis,
    pub keys: Vec<PartitionKeys>,
    pub sender: broadcast::Sender<Broadcast>,
    pub heads: Heads,
    pub block: Duration,
    /// The pause after a read that brought several changes (`READ_LINGER_MS`):
    /// under load, fewer and larger reads.
    pub linger: Duration,
    /// While changes flow, the pause before the next read, which then polls
    /// rather than blocks (`FEED_POLL_MS`; 0: always block).
    pub poll: Duration,
    /// The Redis whose pushes it follows (`FEED_PUSH`; on a cluster, the
    /// master of its partition's slot); `None`: it reads the streams.
    pub push: Option<RedisTarget>,
    pub signals: Arc<Signals>,
}

/// Why a reader stopped following the pushes.
enum Ended {
    /// No browser follows the feed any more: it parks.
    Unwatched,
    Shutdown,
}

impl Reader {
    /// Relays until `shutdown`, surviving Redis outages: from the scripts'
    /// pushes when it can subscribe to them, else by reading the streams.
    pub async fn run(mut self, shutdown: CancellationToken) {
        if let Some(target) = self.push.take() {
            if !self.follow_pushes(&target, &shutdown).await {
                return;
            }
        }
        self.read_streams(shutdown).await;
    }

    /// Relays what the scripts push as they write the live streams (see
    /// `store::subscription`). After each subscription it reads the streams
    /// from its heads once, for what came before; then each push that
    /// follows its stream's head is relayed as it comes, and one that does
    /// not (a push it missed, an entry added without one) makes it read the
    /// streams from the heads again. `false` on shutdown; `true` when this
    /// Redis cannot push (older than 7): then it reads the streams instead.
    async fn follow_pushes(&mut self, target: &RedisTarget, shutdown: &CancellationToken) -> bool {
        let channels: Vec<String> =
            self.keys.iter().flat_map(|keys| Log::LIVE.map(|stream| keys.stream(stream))).collect();
        let streams: HashMap<&str, (usize, usize)> =
            channels.iter().enumerate().map(|(n, name)| (name.as_str(), (n / LIVE, n % LIVE))).collect();
        let mut backoff = Backoff::default();
        loop {
            if !self.park_while_unwatched(shutdown).await {
                return false;
            }
            let opened = tokio::select! {
                opened = Subscription::open_on(target, &channels) => opened,
                () = shutdown.cancelled() => return false,
            };
            let ended = match opened {
                Ok(subscription) => self.relay_pushes(subscription, &streams, shutdown).await,
                Err(error) if subscription::is_unsupported(&error) => {
                    tracing::warn!(%error, "this Redis cannot push the live streams' entries; reading them instead");
                    return true;
                }
                Err(error) => Err(error),
            };
            match ended {
                Ok(Ended::Shutdown) => return false,
                Ok(Ended::Unwatched) => backoff.reset(),
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "following the live streams' pushes failed");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => return false,
                    }
                }
            }
        }
    }

    /// Relays from a subscription until no browser watches, shutdown, or
    /// the connection fails (a ping unanswered for [`Reader::block`] counts).
    async fn relay_pushes(
        &self,
        mut subscription: Subscription,
        streams: &HashMap<&str, (usize, usize)>,
        shutdown: &CancellationToken,
    ) -> redis::RedisResult<Ended> {
        // Subscribed: whatever is added from now on is pushed; what came before is read.
        self.start().await?;
        self.catch_up().await?;
        let mut swept = tokio::time::Instant::now();
        loop {
            let heard = tokio::select! {
                heard = subscription.next_within(self.block) => heard?,
                () = shutdown.cancelled() => return Ok(Ended::Shutdown),
            };
            if self.sender.receiver_count() == 0 {
                return Ok(Ended::Unwatched);
            }
            // Once a `block`, busy or quiet, what was added without a push
            // (by a script of an older version, during an upgrade) is read.
            if swept.elapsed() >= self.block {
                self.catch_up().await?;
                swept = tokio::time::Instant::now();
            }
            let Heard::Message { channel, payload } = heard else { continue };
            let Some(&(set, k)) = streams.get(channel.as_str()) else { continue };
            let keys = &self.keys[set];
            let head = lock(&self.heads)[slot(keys, k)].unwrap_or(EntryId::START);
            match store::streams::pushed(&payload) {
                // Read already, while catching up.
                Some(push) if push.id <= head => {}
                Some(push) if push.before == head => self.relay(source::event(keys, k, push.id, &push.entry, true)),
                // A gap, or not a push: the streams say what came.
                _ => self.catch_up().await?,
            }
        }
    }

    /// Reads the streams from the heads until it has relayed all they hold.
    async fn catch_up(&self) -> redis::RedisResult<()> {
        loop {
            let (events, more) = read_changes(&mut self.conn.clone(), &self.keys, &self.after(), Read::Poll).await?;
            for event in events {
                self.relay(event);
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// Relays until `shutdown` by reading the streams, surviving Redis outages.
    async fn read_streams(self, shutdown: CancellationToken) {
        let partitions = self.keys.len();
        let mut backoff = Backoff::default();
        // Whether the last read brought changes: then the next one polls.
        let mut flowing = false;
        while !shutdown.is_cancelled() {
            if !self.park_while_unwatched(&shutdown).await {
                break;
            }
            let read = async {
                self.start().await?;
                let how = if flowing { Read::Poll } else { Read::Wait(self.block) };
                read_changes(&mut self.conn.clone(), &self.keys, &self.after(), how).await
            };
            tokio::select! {
                result = read => match result {
                    Ok((events, more)) => {
                        backoff.reset();
                        let pace = Pace::after(events.len(), more, self.linger, self.poll);
                        flowing = pace.poll;
                        for event in events {
                            self.relay(event);
                        }
                        if !pace.pause.is_zero() {
                            tokio::select! {
                                () = tokio::time::sleep(pace.pause) => {}
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

    /// Whether it has heads: it started, and has not parked since.
    fn started(&self) -> bool {
        let heads = lock(&self.heads);
        self.keys.iter().all(|keys| (0..LIVE).all(|k| heads[slot(keys, k)].is_some()))
    }

    /// Starts at the newest entries, once after each park (says so on
    /// [`Signals::started`]); afterwards it always goes on from the heads,
    /// the last entries relayed (only this reader moves its partitions'
    /// heads), so nothing written during an outage is skipped.
    async fn start(&self) -> redis::RedisResult<()> {
        if self.started() {
            return Ok(());
        }
        let mut newest_ids = Vec::with_capacity(self.keys.len());
        for keys in &self.keys {
            newest_ids.push(newest(&mut self.conn.clone(), keys).await?);
        }
        let mut heads = lock(&self.heads);
        for (keys, ids) in self.keys.iter().zip(&newest_ids) {
            for (k, id) in ids.iter().enumerate() {
                heads[slot(keys, k)] = Some(*id);
            }
        }
        drop(heads);
        self.signals.started.notify_waiters();
        Ok(())
    }

    /// Where each partition's streams are to be read from: after the heads.
    fn after(&self) -> Vec<[EntryId; LIVE]> {
        let heads = lock(&self.heads);
        self.keys.iter().map(|keys| std::array::from_fn(|k| heads[slot(keys, k)].unwrap_or(EntryId::START))).collect()
    }

    /// Moves the head of the change's slot to it and sends it to every
    /// browser. The head moves before the send, under the same lock: a
    /// browser that subscribes after the send starts past it, one that
    /// subscribed before gets it (see `follow`).
    fn relay(&self, mut event: FeedEvent) {
        let mut heads = lock(&self.heads);
        heads[event.slot] = Some(event.id);
        if !event.json.is_empty() {
            event.position = heads_cursor(&heads).map(|cursor| {
                let frame = frame::frame(event.subject, &cursor.encode(), &event.json);
                Arc::new(Position { cursor, frame })
            });
            // No subscribers is fine: nobody is watching.
            let _ = self.sender.send(Broadcast::Change(event));
        }
    }
}

/// When and how a reader reads next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pace {
    /// How long it waits first.
    pause: Duration,
    /// Whether it polls (changes flow) rather than blocks.
    poll: bool,
}

impl Pace {
    /// After a read that brought `changes` (and left `more` to read): with
    /// several, it lingers (`READ_LINGER_MS`) so batches grow; with any, it
    /// polls after `poll` (`FEED_POLL_MS`), or at once when more is waiting;
    /// with none, it blocks until a change comes.
    fn after(changes: usize, more: bool, linger: Duration, poll: Duration) -> Pace {
        let polling = changes > 0 && !poll.is_zero();
        let pause = if changes >= 2 && !more && !linger.is_zero() {
            linger
        } else if polling && !more {
            poll
        } else {
            Duration::ZERO
        };
        Pace { pause, poll: polling }
    }
}

impl Reader {
    /// Waits, while no browser follows the feed, until one does; its heads
    /// forgotten meanwhile (they would go stale), so that it starts again
    /// at the newest entries. `false` on shutdown.
    async fn park_while_unwatched(&self, shutdown: &CancellationToken) -> bool {
        // Registered before the count is read: a browser that subscribes
        // after the check also wakes this wait.
        let watched = self.signals.watched.notified();
        tokio::pin!(watched);
        watched.as_mut().enable();
        {
            let mut heads = lock(&self.heads);
            if self.sender.receiver_count() > 0 {
                return true;
            }
            for keys in &self.keys {
                for k in 0..LIVE {
                    heads[slot(keys, k)] = None;
                }
            }
        }
        tokio::select! {
            () = watched => true,
            () = shutdown.cancelled() => false,
        }
    }
}

/// Sends [`Broadcast::KeepAlive`] every [`KEEP_ALIVE`], one timer for all
/// browsers rather than one each, and [`Broadcast::Closing`] on shutdown.
pub async fn keep_alive(sender: broadcast::Sender<Broadcast>, shutdown: CancellationToken) {
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

#[cfg(test)]
mod tests {
    use super::super::BROADCAST_CAPACITY;
    use super::*;

    #[test]
    fn while_changes_flow_a_reader_polls_after_a_pause_and_blocks_once_none_come() {
        let (ms, zero) = (Duration::from_millis, Duration::ZERO);
        assert_eq!(Pace::after(1, false, zero, ms(2)), Pace { pause: ms(2), poll: true });
        assert_eq!(Pace::after(1, true, zero, ms(2)), Pace { pause: zero, poll: true }, "more waits: at once");
        assert_eq!(Pace::after(0, false, zero, ms(2)), Pace { pause: zero, poll: false }, "quiet: block");
        assert_eq!(Pace::after(3, false, ms(5), ms(2)), Pace { pause: ms(5), poll: true }, "lingers for a batch");
        assert_eq!(
            Pace::after(3, false, zero, zero),
            Pace { pause: zero, poll: false },
            "FEED_POLL_MS=0: always block"
        );
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

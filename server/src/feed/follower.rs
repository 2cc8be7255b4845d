//! One browser's feed: a replay of what it missed, bounded, then the
//! broadcast, catching up from Redis whenever it falls behind.
//!
//! A browser that resumes (`Last-Event-ID`) is first checked against what
//! the streams still hold: when changes it has not seen were trimmed away,
//! when its id is ahead of the streams, or when it is more than
//! `FEED_REPLAY_MAX` changes behind, it gets a `reload` event instead (its
//! page fetches its lists again) and follows live from now. Every
//! connection ends after about `FEED_MAX_AGE_SECS`; the browser reconnects
//! and resumes where it was.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::admission::Admission;
use super::cursor::{Cursor, EntryId};
use super::{frame, Broadcast, FeedEvent, StatusFeed, LIVE};

/// Where a browser asked to start.
pub enum Resume {
    /// Nowhere (a new page): at the heads.
    Fresh,
    /// After its `Last-Event-ID`.
    After(Cursor),
    /// After an id this server cannot read (another partition count, say):
    /// the browser reloads its lists, as it cannot be replayed to.
    Unreadable,
    /// After every change before this time (milliseconds since the epoch):
    /// a page's first connection, from when its lists were read.
    Since(u64),
}

/// Where a browser's feed stands.
pub enum Phase {
    /// Just subscribed; with `Last-Event-ID` when `resumed`.
    Start { resumed: bool },
    /// Just subscribed with an id it cannot resume from.
    Unreadable,
    /// Just subscribed, having seen every change before this time.
    Since(u64),
    /// Catching up from Redis, this partition next.
    Replay { partition: usize },
    /// Following the broadcast.
    Live,
}

/// Feeds one browser: replay after its cursor in every partition, then the
/// broadcast, catching up from Redis whenever it fell behind. Ends on
/// shutdown, and at its age limit; dropped when the browser goes away.
pub struct Follower {
    feed: StatusFeed,
    live: broadcast::Receiver<Broadcast>,
    cursor: Cursor,
    phase: Phase,
    /// Replayed frames not sent yet.
    queued: VecDeque<Bytes>,
    /// Whether the `subscribed` event was sent.
    announced: bool,
    /// Changes replayed since the browser last followed live.
    replayed: usize,
    /// When the connection ends (the browser then reconnects).
    ends_at: Instant,
    /// Its place among the feed's connections, freed when it is dropped.
    _admission: Option<Admission>,
}

impl Follower {
    /// A follower that subscribed to `live` just now, starting where
    /// `resume` says.
    pub fn new(
        feed: StatusFeed,
        live: broadcast::Receiver<Broadcast>,
        resume: Resume,
        admission: Option<Admission>,
    ) -> Follower {
        let ends_at = Instant::now() + jittered(feed.limits.max_age);
        let (phase, cursor) = match resume {
            Resume::Fresh => (Phase::Start { resumed: false }, Cursor(Vec::new())),
            Resume::After(cursor) => (Phase::Start { resumed: true }, cursor),
            Resume::Unreadable => (Phase::Unreadable, Cursor(Vec::new())),
            Resume::Since(ms) => (Phase::Since(ms), Cursor(Vec::new())),
        };
        Follower {
            phase,
            cursor,
            feed,
            live,
            queued: VecDeque::new(),
            announced: false,
            replayed: 0,
            ends_at,
            _admission: admission,
        }
    }

    /// The next frame for the browser; `None` ends its stream.
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.queued.pop_front() {
                return Some(frame);
            }
            match self.phase {
                // A browser without `Last-Event-ID` starts at the heads, read after
                // subscribing and once the readers have started: every change sent
                // before that is behind a head, every one sent after reaches the
                // subscription, so there is nothing to replay.
                Phase::Start { resumed: false } => {
                    self.cursor = self.feed.started_heads().await;
                    self.phase = Phase::Live;
                }
                Phase::Unreadable => {
                    self.feed.started_heads().await;
                    self.reload().await;
                }
                Phase::Since(ms) => {
                    // The readers start first, as for a resumed browser below; the
                    // streams' state that places the cursor also says it can be
                    // replayed to, so it is read once.
                    self.feed.started_heads().await;
                    match self.feed.cursor_since(ms).await {
                        Ok(Some(cursor)) => {
                            self.cursor = cursor;
                            self.phase = Phase::Replay { partition: 0 };
                        }
                        Ok(None) => self.reload().await,
                        Err(error) => {
                            tracing::warn!(%error, "finding where a page's first connection starts failed; it reloads instead");
                            self.reload().await;
                        }
                    }
                }
                Phase::Start { resumed: true } => {
                    // The readers (perhaps woken by this browser) start first: a
                    // change between the replay's end and their start would
                    // otherwise be neither replayed nor relayed.
                    self.feed.started_heads().await;
                    if self.can_resume().await {
                        self.phase = Phase::Replay { partition: 0 };
                    } else {
                        self.reload().await;
                    }
                }
                Phase::Replay { partition } if partition * LIVE >= self.cursor.0.len() => {
                    self.replayed = 0;
                    self.phase = Phase::Live;
                }
                Phase::Replay { partition } => self.replay(partition).await,
                Phase::Live if !self.announced => {
                    // Subscribed after the shutdown began, it would wait for a
                    // `Closing` sent before it: check once here instead.
                    if self.feed.shutdown.is_cancelled() {
                        return None;
                    }
                    self.announced = true;
                    return Some(frame::subscribed(&self.cursor.encode()));
                }
                Phase::Live => {
                    let received = tokio::select! {
                        received = self.live.recv() => received,
                        () = tokio::time::sleep_until(self.ends_at) => return None,
                    };
                    match received {
                        Ok(Broadcast::Change(event)) => {
                            if let Some(frame) = self.relay(event) {
                                return Some(frame);
                            }
                        }
                        Ok(Broadcast::KeepAlive) => return Some(Bytes::from_static(frame::KEEP_ALIVE)),
                        Ok(Broadcast::Closing) | Err(broadcast::error::RecvError::Closed) => return None,
                        // Too slow for the buffer (perhaps past a `Closing`): go back to Redis
                        // from the cursor, unless the server is shutting down.
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            if self.feed.shutdown.is_cancelled() {
                                return None;
                            }
                            self.phase = Phase::Replay { partition: 0 };
                        }
                    }
                }
            }
        }
    }

    /// Whether every stream still holds what followed the browser's
    /// position in it (and the position is not ahead of it).
    async fn can_resume(&self) -> bool {
        match self.feed.retained_streams(self.cursor.0.len() / LIVE).await {
            Ok(retained) => retained.iter().zip(&self.cursor.0).all(|(stream, seen)| stream.can_resume_from(*seen)),
            Err(error) => {
                tracing::warn!(%error, "checking a browser's Last-Event-ID failed; it reloads instead");
                false
            }
        }
    }

    /// Tells the browser to fetch its lists again, and goes on live from now.
    async fn reload(&mut self) {
        metrics::counter!("stockflow_feed_reloads_total").increment(1);
        self.cursor = self.feed.current_heads().await;
        self.queued.clear();
        self.queued.push_back(frame::reload(&self.cursor.encode()));
        self.replayed = 0;
        self.phase = Phase::Live;
    }

    /// Queues one page of a partition's missed changes, moving on to the
    /// next partition when it has run dry (or cannot be read); past
    /// `FEED_REPLAY_MAX` changes, reloads instead.
    async fn replay(&mut self, partition: usize) {
        let after: [EntryId; LIVE] = std::array::from_fn(|k| self.cursor.0[partition * LIVE + k]);
        match self.feed.replay(partition, after).await {
            Ok((events, more)) => {
                self.replayed += events.len();
                if self.replayed > self.feed.limits.replay_max {
                    self.reload().await;
                    return;
                }
                for event in events {
                    self.cursor.0[event.slot] = event.id;
                    if !event.json.is_empty() {
                        self.queued.push_back(frame::frame(event.subject, &self.cursor.encode(), &event.json));
                    }
                }
                if !more {
                    self.phase = Phase::Replay { partition: partition + 1 };
                }
            }
            Err(error) => {
                tracing::warn!(%error, partition, "replaying the live streams failed; the browser reloads instead");
                self.reload().await;
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
            _ => frame::frame(event.subject, &self.cursor.encode(), &event.json),
        })
    }
}

/// `age` give or take a tenth, so that browsers that connected together do
/// not all reconnect together.
fn jittered(age: std::time::Duration) -> std::time::Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    age.mul_f64(0.9 + 0.2 * f64::from(nanos) / 1e9)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use store::connection;
    use store::{Layout, Partitions, RedisTarget};
    use tokio_util::sync::CancellationToken;

    use super::super::admission::FeedClients;
    use super::super::{Position, BROADCAST_CAPACITY};
    use super::*;
    use crate::config::FeedLimits;

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
            limits: FeedLimits::default(),
            clients: FeedClients::new(10, 10),
            signals: Default::default(),
        };
        let mut follower =
            Follower::new(feed, live, Resume::After(Cursor(vec![EntryId { ms: 5, seq: 0 }; LIVE])), None);
        follower.phase = Phase::Live;
        follower.announced = true;
        (sender, shutdown, follower)
    }

    fn change(slot: usize, ms: u64, position: Option<Cursor>) -> Broadcast {
        let json: Arc<str> = Arc::from(format!(r#"{{"n":{ms}}}"#));
        let position = position.map(|cursor| {
            let frame = frame::frame(frame::Subject::Order, &format!("shared-{ms}"), &json);
            Arc::new(Position { cursor, frame })
        });
        Broadcast::Change(FeedEvent {
            slot,
            id: EntryId { ms, seq: 0 },
            subject: frame::Subject::Order,
            json,
            position,
        })
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
        let expected = frame::frame(frame::Subject::Order, &own.encode(), r#"{"n":8}"#);
        assert_eq!(follower.next().await.unwrap(), expected);
        assert_eq!(follower.cursor, own);
    }

    #[tokio::test]
    async fn a_follower_relays_keep_alives_and_ends_on_closing() {
        let (sender, _shutdown, mut follower) = live_follower();
        sender.send(Broadcast::KeepAlive).unwrap();
        assert_eq!(&follower.next().await.unwrap()[..], frame::KEEP_ALIVE);
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
    async fn a_follower_ends_at_its_age_limit_so_the_browser_reconnects() {
        let (_sender, _shutdown, mut follower) = live_follower();
        let age = follower.ends_at - Instant::now();
        let limit = FeedLimits::default().max_age;
        assert!(age >= limit.mul_f64(0.89) && age <= limit.mul_f64(1.11), "{age:?}");
        assert_eq!(follower.next().await, None);
    }
}

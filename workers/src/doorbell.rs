//! The doorbell: which partitions' streams a consumer has new entries in,
//! from what the scripts push as they add them (`live_prelude.lua`, see
//! `store::subscription`).
//!
//! A blocking `XREADGROUP` over every partition's stream costs Redis several
//! times what a read of the one stream that has an entry does, and at
//! ordinary load each entry wakes one: so the more partitions, the dearer
//! each order. With the doorbell a consumer reads, without blocking, only
//! the streams that rang. What never rings (an entry added without a push,
//! such as a dead letter put back, or a push lost with the connection) is
//! still read: every quarter of `READ_BLOCK_MS`, busy or quiet, every stream
//! counts as rung once, as after each subscription.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use store::connection::Backoff;
use store::subscription::{self, Heard, Subscription};
use store::RedisTarget;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The streams (lanes) of one consumer loop that have rung.
pub struct Doorbell {
    state: Mutex<State>,
    rang: Notify,
}

struct State {
    /// Per lane: rung since it was last read.
    rung: Vec<bool>,
    /// When every lane last counted as rung.
    swept: Instant,
    /// This Redis cannot push (older than 7): the consumer blocks instead.
    unsupported: bool,
}

impl State {
    fn new(lanes: usize) -> State {
        State { rung: vec![false; lanes], swept: Instant::now(), unsupported: false }
    }
}

impl Doorbell {
    /// A doorbell for the streams `channels` (one per lane, in lane order;
    /// on a cluster, of one hash slot) of `target`, listening until `shutdown`.
    pub fn start(
        target: RedisTarget,
        channels: Vec<String>,
        quiet: Duration,
        shutdown: CancellationToken,
    ) -> Arc<Doorbell> {
        // Every lane rung: what came before this process is read at once.
        let mut state = State::new(channels.len());
        state.rung.fill(true);
        let doorbell = Arc::new(Doorbell { state: Mutex::new(state), rang: Notify::new() });
        tokio::spawn(listen(doorbell.clone(), target, channels, quiet, shutdown));
        doorbell
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this Redis cannot push: then the consumer must block on its streams.
    pub fn unsupported(&self) -> bool {
        self.lock().unsupported
    }

    /// The lanes rung since the last call, once one has; every lane when
    /// `every` has passed since they last all counted as rung.
    pub async fn rung(&self, every: Duration) -> Vec<usize> {
        loop {
            let rang = self.rang.notified();
            tokio::pin!(rang);
            rang.as_mut().enable();
            let deadline = {
                let mut state = self.lock();
                let deadline = state.swept + every;
                if Instant::now() >= deadline {
                    state.swept = Instant::now();
                    state.rung.iter_mut().for_each(|rung| *rung = false);
                    return (0..state.rung.len()).collect();
                }
                let rung: Vec<usize> = (0..state.rung.len()).filter(|&lane| state.rung[lane]).collect();
                if !rung.is_empty() || state.unsupported {
                    state.rung.iter_mut().for_each(|rung| *rung = false);
                    return rung;
                }
                deadline
            };
            // Woken by a ring, or at the deadline (then the next turn returns every lane).
            let _ = tokio::time::timeout_at(deadline, rang).await;
        }
    }

    /// Rings `lane`: it has entries to read (a read of it filled a batch).
    pub fn ring(&self, lane: usize) {
        if let Some(rung) = self.lock().rung.get_mut(lane) {
            *rung = true;
        }
        self.rang.notify_one();
    }

    /// Rings every lane: entries may have come unheard.
    fn ring_all(&self) {
        self.lock().rung.iter_mut().for_each(|rung| *rung = true);
        self.rang.notify_one();
    }
}

/// Rings the lanes whose channels hear a push, (re)subscribing when the
/// connection fails; every lane on each subscription, for what came before.
async fn listen(
    doorbell: Arc<Doorbell>,
    target: RedisTarget,
    channels: Vec<String>,
    quiet: Duration,
    shutdown: CancellationToken,
) {
    let lanes: HashMap<&str, usize> = channels.iter().enumerate().map(|(lane, name)| (name.as_str(), lane)).collect();
    let mut backoff = Backoff::default();
    loop {
        let opened = tokio::select! {
            opened = Subscription::open_on(&target, &channels) => opened,
            () = shutdown.cancelled() => return,
        };
        match opened {
            Ok(mut subscription) => {
                backoff.reset();
                doorbell.ring_all();
                loop {
                    let heard = tokio::select! {
                        heard = subscription.next_within(quiet) => heard,
                        () = shutdown.cancelled() => return,
                    };
                    match heard {
                        Ok(Heard::Message { channel, .. }) => {
                            if let Some(&lane) = lanes.get(channel.as_str()) {
                                doorbell.ring(lane);
                            }
                        }
                        Ok(Heard::Quiet) => {}
                        Err(error) => {
                            tracing::warn!(%error, "the consumers' doorbell lost its subscription");
                            break;
                        }
                    }
                }
            }
            Err(error) if subscription::is_unsupported(&error) => {
                tracing::info!(%error, "this Redis cannot push stream entries; the consumers block on their streams");
                doorbell.lock().unsupported = true;
                doorbell.rang.notify_one();
                return;
            }
            Err(error) => tracing::debug!(%error, "the consumers' doorbell cannot subscribe yet"),
        }
        doorbell.ring_all();
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet_doorbell(lanes: usize) -> Doorbell {
        Doorbell { state: Mutex::new(State::new(lanes)), rang: Notify::new() }
    }

    #[tokio::test(start_paused = true)]
    async fn a_consumer_reads_the_lanes_that_rang_and_every_lane_once_a_period() {
        let second = Duration::from_secs(1);
        let doorbell = quiet_doorbell(4);
        doorbell.ring(2);
        doorbell.ring(0);
        assert_eq!(doorbell.rung(second).await, [0, 2]);
        let started = Instant::now();
        assert_eq!(doorbell.rung(second).await, [0, 1, 2, 3], "quiet: every lane");
        assert_eq!(started.elapsed(), second);

        // Busy: lane 1 rings all the time, yet every lane is read once a second.
        let started = Instant::now();
        let mut turns = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            doorbell.ring(1);
            turns += 1;
            if doorbell.rung(second).await.len() == 4 {
                break;
            }
        }
        assert_eq!((turns, started.elapsed()), (10, second), "every lane a second after the last time");

        let doorbell = Arc::new(quiet_doorbell(4));
        let ringer = doorbell.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            ringer.ring(3);
        });
        let started = Instant::now();
        assert_eq!(doorbell.rung(second).await, [3], "woken by the ring");
        assert_eq!(started.elapsed(), Duration::from_millis(10));
    }
}

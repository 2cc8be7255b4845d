//! The relay: one task per set of partitions follows their live streams
//! and fans each change out to every browser through one broadcast, as an
//! SSE frame built once; one timer sends every browser its keep-alive.

use std::sync::Arc;
use std::time::Duration;

use store::connection::Backoff;
use store::{PartitionKeys, Redis};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::cursor::EntryId;
use super::source::{newest, read_changes};
use super::{frame, heads_cursor, lock, slot, Broadcast, Heads, Position, KEEP_ALIVE, LIVE};

/// Follows the live streams of a set of partitions from their current ends.
pub struct Reader {
    pub conn: Redis,
    pub keys: Vec<PartitionKeys>,
    pub sender: broadcast::Sender<Broadcast>,
    pub heads: Heads,
    pub block: Duration,
    /// The pause after a read that brought several changes (`READ_LINGER_MS`):
    /// under load, fewer and larger reads.
    pub linger: Duration,
}

impl Reader {
    /// Relays until `shutdown`, surviving Redis outages.
    pub async fn run(mut self, shutdown: CancellationToken) {
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
                                    let frame = frame::frame(&cursor.encode(), &event.json);
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

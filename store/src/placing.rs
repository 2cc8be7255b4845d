//! Group commit of new orders: the orders placed at the same time in one
//! partition are saved by one script call.
//!
//! Each partition has a task that owns its placements: it takes every order
//! waiting in its queue (up to [`MAX_BATCH`]), saves them in one
//! `place_order.lua` call (then `WAIT`s, when replicas are required), and
//! answers each caller. With one call in flight per partition, the orders
//! that arrive meanwhile queue up and go together in the next one: no timer,
//! so nothing waits when the shop is quiet, and under load fewer round trips
//! and commands per order. The task is its own, so a caller that goes away
//! (a client hanging up) never strands the orders queued behind it.
//!
//! With `REDIS_MIN_REPLICAS` ≥ 1 each partition's task has a connection of
//! its own. `WAIT` blocks the connection it is sent on, and a cluster client
//! has one connection per node: on a shared one, a partition whose master has
//! lost its replica would hold up, a `WAIT` timeout at a time, every other
//! command for that node (measured in the fault lab: the refusals of the
//! five partitions of a failed-over master came one a second, and clients
//! timed out instead of hearing 503).

use std::sync::{Arc, Mutex};

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::connection::{self, Redis, RedisTarget};
use crate::durability::Durability;
use crate::error::{StoreError, StoreResult};
use crate::keys::{Layout, PartitionKeys};
use crate::partition::Partition;
use crate::scripts::{self, PlacedOrder, Placement};

/// The most orders one call saves.
pub const MAX_BATCH: usize = 256;

/// What the partition tasks need to save orders.
#[derive(Clone)]
struct Saving {
    /// The shared connection, for partitions that send no `WAIT`.
    conn: Redis,
    /// Where Redis is, for the partitions' own connections.
    target: RedisTarget,
    durability: Durability,
    /// How long an idempotency key is remembered, in seconds.
    idempotency_window_secs: u64,
}

type Request = (PlacedOrder, oneshot::Sender<StoreResult<Placement>>);

/// The queues of every partition's placing task; cheap to clone.
#[derive(Clone)]
pub struct Placements {
    saving: Saving,
    layout: Layout,
    /// One queue per partition, its task started on first use (and again if
    /// the runtime it ran on has gone).
    queues: Arc<Vec<Mutex<Option<mpsc::UnboundedSender<Request>>>>>,
}

impl Placements {
    pub fn new(
        conn: Redis,
        target: RedisTarget,
        layout: Layout,
        durability: Durability,
        idempotency_window_secs: u64,
    ) -> Placements {
        let queues = (0..layout.partitions().count()).map(|_| Mutex::new(None)).collect();
        let saving = Saving { conn, target, durability, idempotency_window_secs };
        Placements { saving, layout, queues: Arc::new(queues) }
    }

    /// The replicas an order must reach (`REDIS_MIN_REPLICAS`).
    pub fn min_replicas(&self) -> u32 {
        self.saving.durability.min_replicas
    }

    /// Saves `order` in `partition`, together with the orders placed there at
    /// the same time; what the script made of it.
    pub async fn place(&self, partition: Partition, order: PlacedOrder) -> StoreResult<Placement> {
        let (reply, answer) = oneshot::channel();
        self.queue(partition).send((order, reply)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    fn queue(&self, partition: Partition) -> mpsc::UnboundedSender<Request> {
        let mut queue = self.queues[usize::from(partition.index())].lock().unwrap_or_else(|p| p.into_inner());
        match queue.as_ref() {
            Some(sender) if !sender.is_closed() => sender.clone(),
            _ => {
                let (sender, receiver) = mpsc::unbounded_channel();
                let keys = self.layout.keys(partition).clone();
                tokio::spawn(save_batches(self.saving.clone(), keys, receiver));
                *queue = Some(sender.clone());
                sender
            }
        }
    }
}

/// A placing task stopped before answering (its runtime is shutting down).
fn gone() -> StoreError {
    StoreError::Stopped("saving the order")
}

/// How often a batch refused for too few replicas is tried again, within
/// `REDIS_REPLICA_TIMEOUT_MS`: a replica's link may be down for a moment.
const REPLICAS_AGAIN_AFTER: Duration = Duration::from_millis(50);

/// The `WAIT` sent with a batch while the partition's master is known to be
/// short of replicas. A refused batch wrote nothing, yet its `WAIT` still
/// blocks for its whole timeout (no replica can answer): with a full
/// timeout each, a failover's queue of orders would take seconds per batch
/// to be refused, and clients would time out instead of hearing 503.
const WAIT_WHILE_SHORT: Duration = Duration::from_millis(1);

/// Saves one batch; a batch refused because too few replicas are online
/// (nothing written) is tried again until `REDIS_REPLICA_TIMEOUT_MS` has
/// passed, then its callers are told so. `short` says whether the last batch
/// was refused: then this one is tried once, with a quick `WAIT`, so that a
/// partition without replicas answers at once instead of queueing. A batch
/// that writes under a quick `WAIT` its replicas have not confirmed yet is
/// answered [`StoreError::NotReplicated`] (a retry with the same key waits
/// for them in full).
async fn save(
    saving: &Saving,
    conn: &mut Redis,
    keys: &PartitionKeys,
    orders: &[PlacedOrder],
    short: &mut bool,
) -> StoreResult<Vec<Placement>> {
    let refused = |placements: &Vec<Placement>| {
        placements.iter().all(|placement| matches!(placement, Placement::NotReplicated { .. }))
    };
    let durability =
        if *short { Durability { timeout: WAIT_WHILE_SHORT, ..saving.durability } } else { saving.durability };
    let until = Instant::now() + durability.timeout;
    loop {
        let call = scripts::place_orders(keys, orders, saving.idempotency_window_secs, durability.min_replicas);
        let placements = durability.run_if_written(conn, call, |p| !refused(p)).await;
        *short = matches!(&placements, Ok(p) if refused(p));
        let placements = placements?;
        if !refused(&placements) || Instant::now() + REPLICAS_AGAIN_AFTER > until {
            return Ok(placements);
        }
        tokio::time::sleep(REPLICAS_AGAIN_AFTER).await;
    }
}

/// One partition's task: saves what its queue holds, a batch at a time.
async fn save_batches(saving: Saving, keys: PartitionKeys, mut queue: mpsc::UnboundedReceiver<Request>) {
    // Its own connection when it sends `WAIT` (see the module's documentation);
    // connecting is lazy, so this only fails for a target that could not
    // have made the shared connection either.
    let own = if saving.durability.waits() { connection::connect(&saving.target).ok() } else { None };
    let mut conn = own.unwrap_or_else(|| saving.conn.clone());
    let mut short = false;
    let mut batch: Vec<Request> = Vec::new();
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // A caller that has gone gets no order: it was never told of one.
        batch.retain(|(_, reply)| !reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let orders: Vec<PlacedOrder> = batch.iter().map(|(order, _)| order.clone()).collect();
        let started = Instant::now();
        let saved = save(&saving, &mut conn, &keys, &orders, &mut short).await;
        tracing::debug!(partition = %keys.partition(), orders = orders.len(), took_ms = started.elapsed().as_millis() as u64, ok = saved.is_ok(), short, "saved a batch");
        match saved {
            Ok(placements) if placements.len() == batch.len() => {
                for ((_, reply), placement) in batch.drain(..).zip(placements) {
                    let _ = reply.send(Ok(placement));
                }
            }
            Ok(placements) => {
                let error = StoreError::Corrupt {
                    key: keys.orders(),
                    detail: format!("{} replies for {} orders", placements.len(), batch.len()),
                };
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(error.clone()));
                }
            }
            Err(error) => {
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

//! The one consumer loop behind every worker: read a batch from a stream
//! through a consumer group, apply it, acknowledge it; reclaim what dead
//! consumers left behind; dead-letter what cannot be processed; stop cleanly.
//!
//! A [`Handler`] says what a batch means; this module owns the guarantees:
//! - entries are read with XREADGROUP BLOCK, never by polling with sleeps,
//!   one read for the streams of every partition the loop follows (each
//!   partition's entries then make a batch of their own); a consumer of
//!   a stream the scripts push (payment, warehouse) instead
//!   waits for the [`Doorbell`] and reads only the partitions' streams that
//!   rang, without blocking (`WAKE_ON_PUSH`); only under load
//!   (a read brought several entries, yet no full batch) the loop pauses
//!   `READ_LINGER_MS` before its next read, so batches grow and each costs
//!   one script call;
//! - an entry is acknowledged by the very script that commits its effect, so
//!   a crash at any moment leaves it pending, and it is delivered again;
//! - entries idle in another consumer's pending list longer than
//!   `CLAIM_IDLE_MS` are claimed (XAUTOCLAIM) and processed here;
//! - an entry that cannot be parsed, or was delivered more than
//!   `MAX_DELIVERIES` times, is copied to `<stream>-dead` with its error,
//!   acknowledged, and its unfinished order refunded, in one script, so one
//!   bad entry never blocks the loop and no order is left hanging;
//! - on shutdown the loop stops reading, lets every batch in flight finish
//!   and acknowledge, and returns.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply};
use redis::{FromRedisValue, RedisResult, Value};

use crate::doorbell::Doorbell;
use crate::error::{WorkerError, WorkerResult};
use store::connection::{self, Backoff};
use store::durability::Durability;
use store::scripts::{self, Call, DeadLettered};
use store::streams::{self, ensure_group, MalformedEntry, StreamReads, FROM_START, NEW_ENTRIES};
use store::telemetry;
use store::{Config, PartitionKeys, Redis, Stream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What became of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The effect is committed (or was already) and the entry acknowledged, in one script.
    Acked,
    /// The entry can never be processed: dead-letter it with this reason.
    Poison {
        reason: String,
        /// Whether to refund the unfinished order the entry names. Not for
        /// an entry that contradicts its order: that order is fine.
        refund_order: bool,
    },
    /// The node that answered holds neither the order nor the entry: a
    /// stale master that has not yet learnt of its failover. Neither acked
    /// nor dead-lettered: the batch is tried again (see [`process`]).
    Stray,
}

impl Outcome {
    /// Poison that leaves any order alone.
    pub fn poison(reason: impl Into<String>) -> Outcome {
        Outcome::Poison { reason: reason.into(), refund_order: false }
    }
}

impl From<MalformedEntry> for Outcome {
    fn from(error: MalformedEntry) -> Outcome {
        Outcome::Poison { reason: error.problem, refund_order: true }
    }
}

/// Where a batch is applied: the partition its stream belongs to, and the
/// replicas its effects must reach before the loop moves on.
#[derive(Debug, Clone)]
pub struct Scope {
    pub keys: PartitionKeys,
    pub durability: Durability,
}

/// What one consumer group does with the entries of its stream.
pub trait Handler: Send + Sync + 'static {
    /// The stream read (in every partition the process consumes).
    const STREAM: Stream;
    /// The consumer group, shared by every workers process.
    const GROUP: &'static str;

    /// How many reads' batches a consumer loop may process at once. 1 keeps
    /// stream order (the warehouse allocates stock first come, first served).
    fn max_in_flight(&self) -> usize {
        1
    }

    /// Applies a batch, returning one outcome per entry, in order. Each
    /// applied entry is acknowledged by the script that applies it (see
    /// [`store::scripts::Ack`]).
    ///
    /// An `Err` (Redis unreachable) means nothing is known to be committed;
    /// the loop retries the batch (harmless: every change is idempotent), and
    /// after that leaves it pending for reclaim.
    fn handle(
        &self,
        conn: &mut Redis,
        scope: &Scope,
        batch: &[StreamId],
    ) -> impl Future<Output = WorkerResult<Vec<Outcome>>> + Send;
}

/// Runs the consumer loop of `handler` on the streams of `partitions` until
/// `shutdown` is cancelled and every batch in flight is acknowledged. One
/// blocking read follows all of them, so they must be streams one command
/// may name together (see [`store::RedisTarget::read_sets`]). `writer` may
/// be shared; the loop opens its own connection for blocking reads.
pub async fn run<H: Handler>(
    handler: Arc<H>,
    partitions: Vec<PartitionKeys>,
    writer: Redis,
    config: Config,
    shutdown: CancellationToken,
) -> WorkerResult<()> {
    let durability = Durability::of(&config);
    let lanes: Vec<Lane> = partitions
        .into_iter()
        .map(|keys| Lane {
            stream_key: keys.stream(H::STREAM),
            scope: Scope { keys, durability },
            held: Held::default(),
        })
        .collect();
    let doorbell = (config.wake_on_push && Stream::LIVE.contains(&H::STREAM)).then(|| {
        let channels = lanes.iter().map(|lane| lane.stream_key.clone()).collect();
        Doorbell::start(config.redis.clone(), channels, config.read_block, shutdown.clone())
    });
    let consumer = Consumer {
        handler,
        lanes,
        doorbell,
        reader: connection::connect_blocking(&config.redis, config.read_block, connection::ReadFrom::Master)?,
        writer,
        config,
    };
    consumer.run(shutdown).await;
    Ok(())
}

struct Consumer<H> {
    handler: Arc<H>,
    /// The partitions' streams, as the loop follows them.
    lanes: Vec<Lane>,
    /// Which lanes have new entries, when the scripts push them (`WAKE_ON_PUSH`).
    doorbell: Option<Arc<Doorbell>>,
    /// Dedicated to XREADGROUP BLOCK, which would hold up other commands.
    reader: Redis,
    /// For effects, acks, claims and dead letters.
    writer: Redis,
    config: Config,
}

/// One partition's stream, as a consumer loop follows it.
struct Lane {
    /// The partition's stream key.
    stream_key: String,
    scope: Scope,
    /// Its entries handed to a batch and not finished yet.
    held: Held,
}

/// Where the walk of a lane's pending list stands.
struct Reclaim {
    /// When the next walk starts.
    next: Instant,
    /// Where the walk goes on (`0-0`: from the start).
    cursor: String,
}

/// A batch to process: entries of one lane, with those already judged
/// poison (over-delivered).
struct Batch {
    /// The lane (partition) its entries are from.
    lane: usize,
    entries: Vec<StreamId>,
    poison: HashMap<String, String>,
}

/// The entries this process holds: handed to a batch and not finished yet.
///
/// A held entry can sit unacknowledged for long (payment holds a batch for
/// `PAYMENT_DELAY_MS`), so the consumer keeps it fresh (XCLAIM to itself with
/// JUSTID every third of `CLAIM_IDLE_MS`, which resets its idle time without
/// counting a delivery): no consumer, this one included, ever claims an entry
/// that is still being worked on, nor counts it as a failed delivery.
#[derive(Clone, Default)]
struct Held(Arc<Mutex<HashMap<String, Instant>>>);

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Holds the batch's entries until the returned guard is dropped.
    fn hold(&self, entries: &[StreamId]) -> Release {
        let now = Instant::now();
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        let mut held = self.lock();
        for id in &ids {
            held.insert(id.clone(), now);
        }
        Release { held: self.clone(), ids }
    }

    fn contains(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// Held entries last refreshed longer than `age` ago, marked refreshed now.
    fn due_for_refresh(&self, age: Duration) -> Vec<String> {
        let now = Instant::now();
        let mut held = self.lock();
        held.iter_mut()
            .filter(|(_, since)| now.duration_since(**since) >= age)
            .map(|(id, since)| {
                *since = now;
                id.clone()
            })
            .collect()
    }
}

/// Where and how often [`keep_fresh`] refreshes held entries.
struct Freshness {
    conn: Redis,
    stream: String,
    group: &'static str,
    consumer: String,
    every: Duration,
}

/// Keeps the held entries fresh until `stop` (see [`Held`]).
async fn keep_fresh(mut at: Freshness, held: Held, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(at.every) => {}
            () = stop.cancelled() => return,
        }
        let ids = held.due_for_refresh(at.every);
        for chunk in ids.chunks(1000) {
            let refreshed: RedisResult<Value> = redis::cmd("XCLAIM")
                .arg(&at.stream)
                .arg(at.group)
                .arg(&at.consumer)
                .arg(0)
                .arg(chunk)
                .arg("JUSTID")
                .query_async(&mut at.conn)
                .await;
            if let Err(error) = refreshed {
                tracing::warn!(stream = %at.stream, %error, "keeping held entries fresh failed");
            }
        }
    }
}

/// Lets go of a batch's entries when the batch is done, however it ends.
struct Release {
    held: Held,
    ids: Vec<String>,
}

impl Drop for Release {
    fn drop(&mut self) {
        let mut held = self.held.lock();
        for id in &self.ids {
            held.remove(id);
        }
    }
}

impl<H: Handler> Consumer<H> {
    async fn run(self, shutdown: CancellationToken) {
        let stream = H::STREAM.name();
        let partitions = self.lanes.len();
        let in_flight = Arc::new(Semaphore::new(self.handler.max_in_flight()));
        let tasks = TaskTracker::new();
        let mut backoff = Backoff::default();
        let mut failing = false;
        let mut groups_ready = false;
        let mut reclaims: Vec<Reclaim> =
            self.lanes.iter().map(|_| Reclaim { next: Instant::now(), cursor: "0-0".to_string() }).collect();
        // Entries delivered to this consumer but never handled: those a read
        // that failed (timed out, say, during a failover) may have delivered
        // without the answer arriving, and those a process of the same
        // CONSUMER_NAME left. Read again from this consumer's own pending
        // list at start and after every failed read (one in flight when the
        // cluster's masters changed fails too), not left for a reclaim after
        // CLAIM_IDLE_MS. (`Some`: where each lane's walk goes on.)
        let mut own_pending: Option<Vec<String>> = Some(vec![FROM_START.to_string(); self.lanes.len()]);
        let refreshing = CancellationToken::new();
        for lane in &self.lanes {
            tokio::spawn(keep_fresh(
                Freshness {
                    conn: self.writer.clone(),
                    stream: lane.stream_key.clone(),
                    group: H::GROUP,
                    consumer: self.config.consumer_name.clone(),
                    every: self.config.claim_idle / 3,
                },
                lane.held.clone(),
                refreshing.clone(),
            ));
        }
        tracing::debug!(stream, partitions, group = H::GROUP, consumer = %self.config.consumer_name, "consumer started");

        while !shutdown.is_cancelled() {
            let permit = tokio::select! {
                permit = in_flight.clone().acquire_owned() => permit.expect("semaphore is never closed"),
                () = shutdown.cancelled() => break,
            };
            let read = async {
                if !groups_ready {
                    for lane in &self.lanes {
                        ensure_group(&mut self.writer.clone(), &lane.stream_key, H::GROUP).await?;
                    }
                    groups_ready = true;
                }
                if let Some(cursors) = own_pending.as_mut() {
                    let (batches, more) = self.read_own(cursors).await?;
                    if !more {
                        own_pending = None;
                    }
                    if !batches.is_empty() {
                        return Ok(batches);
                    }
                }
                if let Some(batch) = self.reclaim_due(&mut reclaims).await? {
                    return Ok(vec![batch]);
                }
                Ok::<_, WorkerError>(self.read_new().await?)
            };
            match read.await {
                Ok(batches) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!(stream, partitions, "redis reachable again; consuming");
                        backoff.reset();
                    }
                    if batches.is_empty() {
                        continue;
                    }
                    // Entries keep coming but no backlog: let the next batches grow.
                    let entries: usize = batches.iter().map(|batch| batch.entries.len()).sum();
                    let backlog = batches.iter().any(|batch| batch.entries.len() >= self.config.read_count);
                    let linger = entries >= 2 && !backlog;
                    // Every lane's batch goes at once (one round trip on the shared
                    // writer); the permit is released when the last one is done, so
                    // with one read in flight each partition's entries stay in order.
                    let permit = Arc::new(permit);
                    for batch in batches {
                        let lane = &self.lanes[batch.lane];
                        let release = lane.held.hold(&batch.entries);
                        tasks.spawn(process(
                            self.handler.clone(),
                            self.writer.clone(),
                            lane.scope.clone(),
                            self.config.clone(),
                            batch,
                            (permit.clone(), release),
                            shutdown.clone(),
                        ));
                    }
                    if linger && !self.config.read_linger.is_zero() {
                        tokio::select! {
                            () = tokio::time::sleep(self.config.read_linger) => {}
                            () = shutdown.cancelled() => break,
                        }
                    }
                }
                Err(error) => {
                    drop(permit);
                    failing = true;
                    own_pending = Some(vec![FROM_START.to_string(); self.lanes.len()]);
                    if error.code() == Some("NOGROUP") {
                        // Redis lost a group (restarted without persistence): recreate them.
                        groups_ready = false;
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(stream, partitions, %error, retry_in_ms = delay.as_millis() as u64, "reading the stream failed");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => break,
                    }
                }
            }
        }
        tasks.close();
        if !tasks.is_empty() {
            tracing::info!(
                stream,
                partitions,
                in_flight = tasks.len(),
                "consumer stopping; finishing batches in flight"
            );
        }
        tasks.wait().await;
        refreshing.cancel();
        tracing::debug!(stream, partitions, "consumer stopped");
    }

    /// New entries for this group, one batch per lane that has any: in the
    /// lanes the doorbell rang, without blocking; else in every lane, waiting
    /// up to `READ_BLOCK_MS` for some.
    async fn read_new(&self) -> RedisResult<Vec<Batch>> {
        let doorbell = self.doorbell.as_ref().filter(|doorbell| !doorbell.unsupported());
        let lanes = match doorbell {
            // A quarter of READ_BLOCK_MS: an entry added without a push (a dead letter put
            // back, a producer of its own) is read soon after it came, as a blocking read would.
            Some(doorbell) => doorbell.rung(self.config.read_block / 4).await,
            None => (0..self.lanes.len()).collect(),
        };
        if lanes.is_empty() {
            return Ok(Vec::new());
        }
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP").arg(H::GROUP).arg(&self.config.consumer_name).arg("COUNT").arg(self.config.read_count);
        if doorbell.is_none() {
            read.arg("BLOCK").arg(self.config.read_block.as_millis() as u64);
        }
        read.arg("STREAMS");
        for &lane in &lanes {
            read.arg(&self.lanes[lane].stream_key);
        }
        for _ in &lanes {
            read.arg(NEW_ENTRIES);
        }
        let reply: StreamReads = read.query_async(&mut self.reader.clone()).await?;
        let batches: Vec<Batch> = reply
            .keys
            .into_iter()
            .filter(|stream| !stream.ids.is_empty())
            .filter_map(|stream| {
                let lane = self.lanes.iter().position(|lane| lane.stream_key == stream.key)?;
                Some(Batch { lane, entries: stream.ids, poison: HashMap::new() })
            })
            .collect();
        if let Some(doorbell) = doorbell {
            // A full batch may have left more behind: read that lane again.
            for batch in batches.iter().filter(|batch| batch.entries.len() >= self.config.read_count) {
                doorbell.ring(batch.lane);
            }
        }
        Ok(batches)
    }

    /// This consumer's own pending entries in every lane after `cursors`
    /// (which move past what is returned), those no batch of this process
    /// holds: one batch per lane that has any; and whether some lane may have
    /// more. (Entries deleted meanwhile come without fields, and are
    /// dead-lettered as malformed.)
    async fn read_own(&self, cursors: &mut [String]) -> RedisResult<(Vec<Batch>, bool)> {
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(H::GROUP)
            .arg(&self.config.consumer_name)
            .arg("COUNT")
            .arg(self.config.read_count)
            .arg("STREAMS");
        for lane in &self.lanes {
            read.arg(&lane.stream_key);
        }
        for cursor in cursors.iter() {
            read.arg(cursor);
        }
        let reply: StreamReads = read.query_async(&mut self.writer.clone()).await?;
        let (mut batches, mut more) = (Vec::new(), false);
        for stream in reply.keys {
            let Some(lane) = self.lanes.iter().position(|lane| lane.stream_key == stream.key) else { continue };
            more |= stream.ids.len() >= self.config.read_count;
            if let Some(last) = stream.ids.last() {
                cursors[lane] = last.id.clone();
            }
            let held = &self.lanes[lane].held;
            let entries: Vec<StreamId> = stream.ids.into_iter().filter(|entry| !held.contains(&entry.id)).collect();
            if !entries.is_empty() {
                tracing::info!(
                    stream = H::STREAM.name(),
                    entries = entries.len(),
                    "read again entries delivered but not handled"
                );
                batches.push(Batch { lane, entries, poison: HashMap::new() });
            }
        }
        Ok((batches, more))
    }

    /// One page of reclaimed entries, from the first lane that is due a
    /// walk of its pending list and has some. A lane walks its list page by
    /// page, then rests `CLAIM_IDLE_MS / 2`.
    async fn reclaim_due(&self, reclaims: &mut [Reclaim]) -> RedisResult<Option<Batch>> {
        for (lane, reclaim) in reclaims.iter_mut().enumerate() {
            if Instant::now() < reclaim.next {
                continue;
            }
            let batch = self.reclaim(lane, reclaim).await?;
            if !batch.entries.is_empty() {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }

    /// Claims one page of a lane's entries idle longer than `CLAIM_IDLE_MS`
    /// (their consumer is presumed dead), judging the over-delivered ones
    /// poison, and moves the lane's walk on. Entries this process still
    /// holds are left to the batch that holds them.
    async fn reclaim(&self, lane: usize, reclaim: &mut Reclaim) -> RedisResult<Batch> {
        let Lane { stream_key, scope, held } = &self.lanes[lane];
        let mut conn = self.writer.clone();
        let mut claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(stream_key)
            .arg(H::GROUP)
            .arg(&self.config.consumer_name)
            .arg(self.config.claim_idle.as_millis() as u64)
            .arg(&reclaim.cursor)
            .arg("COUNT")
            .arg(self.config.read_count)
            .query_async(&mut conn)
            .await?;
        if claimed.next_stream_id == "0-0" {
            reclaim.next = Instant::now() + self.config.claim_idle / 2;
        }
        reclaim.cursor = std::mem::take(&mut claimed.next_stream_id);
        claimed.claimed.retain(|entry| !held.contains(&entry.id));
        let mut poison = HashMap::new();
        if let (Some(first), Some(last)) = (claimed.claimed.first(), claimed.claimed.last()) {
            // XAUTOCLAIM does not say how often an entry was delivered; XPENDING does.
            let pending: StreamPendingCountReply = redis::cmd("XPENDING")
                .arg(stream_key)
                .arg(H::GROUP)
                .arg(&first.id)
                .arg(&last.id)
                .arg(claimed.claimed.len())
                .arg(&self.config.consumer_name)
                .query_async(&mut conn)
                .await?;
            for entry in pending.ids {
                if entry.times_delivered as u64 > self.config.max_deliveries {
                    poison.insert(entry.id, format!("delivered {} times without success", entry.times_delivered));
                }
            }
            tracing::info!(
                stream = H::STREAM.name(),
                partition = scope.keys.partition().index(),
                claimed = claimed.claimed.len(),
                poison = poison.len(),
                "reclaimed idle entries"
            );
        }
        Ok(Batch { lane, entries: claimed.claimed, poison })
    }
}

/// Attempts at a batch before it lets go of its read slot (and goes on
/// trying in the background).
const ATTEMPTS_HOLDING_THE_READ: u32 = 5;
/// The longest pause between two attempts at a batch in the background.
const RETRY_AT_MOST_EVERY: Duration = Duration::from_secs(1);
/// Attempts at a batch some of whose entries keep reaching a node that does
/// not hold them ([`Outcome::Stray`]) before those are left pending, for a
/// reclaim after `CLAIM_IDLE_MS` (a stale master learns of its failover in
/// well under a second; this is for what cannot be foreseen).
const STRAY_ATTEMPTS: u32 = 20;

/// Applies one batch; the permit (shared by the batches of one read) bounds
/// reads in flight. A batch that keeps failing (its partition's master is
/// failing over, say) gives its permit back after a few attempts, so that
/// the loop goes on reading the other partitions, and keeps trying, at
/// least once a second, until it succeeds or the process stops: its
/// entries are its own (held, and kept fresh), so they go through as soon
/// as Redis answers again, never after waiting `CLAIM_IDLE_MS` for a
/// reclaim. On shutdown they stay pending, for whoever claims them.
async fn process<H: Handler>(
    handler: Arc<H>,
    mut conn: Redis,
    scope: Scope,
    config: Config,
    batch: Batch,
    (permit, _release): (Arc<OwnedSemaphorePermit>, Release),
    shutdown: CancellationToken,
) {
    let stream = H::STREAM.name();
    let (over_delivered, healthy): (Vec<StreamId>, Vec<StreamId>) =
        batch.entries.into_iter().partition(|entry| batch.poison.contains_key(&entry.id));
    let mut dead: Vec<(StreamId, Outcome)> = over_delivered
        .into_iter()
        .map(|entry| {
            let reason = batch.poison[&entry.id].clone();
            (entry, Outcome::Poison { reason, refund_order: true })
        })
        .collect();

    // Each order's step is a span of its trace (when traces are exported),
    // until the batch is through.
    let _steps = step_spans::<H>(&scope, &healthy);
    if !healthy.is_empty() {
        let mut backoff = Backoff::default();
        let mut attempts = 0;
        let mut permit = Some(permit);
        let outcomes = loop {
            attempts += 1;
            let error = match handler.handle(&mut conn, &scope, &healthy).await {
                Ok(outcomes) if !outcomes.contains(&Outcome::Stray) => break outcomes,
                Ok(outcomes) if attempts >= STRAY_ATTEMPTS => {
                    tracing::warn!(
                        stream,
                        attempts,
                        "entries keep reaching a node that does not hold them; left pending for a reclaim"
                    );
                    break outcomes;
                }
                Ok(_) => "a node that does not serve the partition answered".to_string(),
                Err(error) => error.to_string(),
            };
            if attempts == ATTEMPTS_HOLDING_THE_READ {
                tracing::warn!(stream, %error, entries = healthy.len(), "a batch keeps failing; trying on in the background");
                permit = None;
            }
            let delay = backoff.next_delay().min(RETRY_AT_MOST_EVERY);
            tracing::debug!(stream, %error, attempt = attempts, retry_in_ms = delay.as_millis() as u64, "applying a batch failed");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.cancelled() => {
                    tracing::info!(stream, entries = healthy.len(), "stopping; a failing batch stays pending");
                    return;
                }
            }
        };
        drop(permit);
        if attempts > ATTEMPTS_HOLDING_THE_READ {
            tracing::info!(stream, attempts, entries = healthy.len(), "a failing batch went through");
        }
        dead.extend(healthy.into_iter().zip(outcomes).filter(|(_, outcome)| matches!(outcome, Outcome::Poison { .. })));
    }
    if dead.is_empty() {
        return;
    }

    let mut backoff = Backoff::default();
    for attempt in 1..=5 {
        match dead_letter::<H>(&mut conn, &scope, &config, &dead).await {
            Ok(()) => return,
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(stream, %error, attempt, "dead-lettering failed");
                tokio::time::sleep(delay).await;
            }
        }
    }
    tracing::error!(stream, entries = dead.len(), "could not dead-letter; the entries stay pending");
}

/// A span per entry that carries its order's trace context, named after
/// the group (payment, warehouse, refund).
fn step_spans<H: Handler>(scope: &Scope, entries: &[StreamId]) -> Vec<tracing::Span> {
    if !telemetry::enabled() {
        return Vec::new();
    }
    entries
        .iter()
        .filter_map(|entry| {
            let (traceparent, order_id) = (streams::traceparent_of(entry)?, streams::order_id_of(entry)?);
            Some(telemetry::order_span(H::GROUP, Some(&traceparent), &order_id, scope.keys.partition()))
        })
        .collect()
}

/// Dead-letters poison entries, one atomic script each (dead letter, ack,
/// refund of the order), pipelined.
async fn dead_letter<H: Handler>(
    conn: &mut Redis,
    scope: &Scope,
    config: &Config,
    dead: &[(StreamId, Outcome)],
) -> WorkerResult<()> {
    let now = store::now_ms();
    let mut pipe = redis::pipe();
    // The order each script may refund, in the order of the replies.
    let mut refunding = Vec::with_capacity(dead.len());
    for (entry, outcome) in dead {
        let Outcome::Poison { reason, refund_order } = outcome else {
            continue;
        };
        tracing::warn!(stream = H::STREAM.name(), entry_id = %entry.id, %reason, "dead-lettering entry");
        let fields: Vec<(String, String)> = entry.map.iter().map(|(k, v)| (k.clone(), value_text(v))).collect();
        let order_id = if *refund_order { store::streams::order_id_of(entry) } else { None };
        let letter = scripts::DeadLetter {
            stream: H::STREAM,
            group: H::GROUP,
            entry_id: &entry.id,
            error: reason,
            consumer: &config.consumer_name,
            fields: &fields,
            refund_order_id: order_id.as_deref(),
        };
        scripts::dead_letter(&scope.keys, &letter, now, config.stream_maxlen, config.dead_letter_maxlen)
            .add_to(&mut pipe);
        refunding.push(order_id);
    }
    let replies = scope.durability.run_all(conn, pipe).await?;
    let (mut refunded, mut dropped, mut not_pending) = (0, 0, 0);
    for (reply, order_id) in replies.into_iter().zip(&refunding) {
        match DeadLettered::from_redis_value(reply) {
            Ok(DeadLettered::Refunded { dropped: d }) => {
                if let Some(order_id) = order_id {
                    crate::metrics::record_final(order_id, "refunded", now);
                }
                (refunded, dropped) = (refunded + 1, dropped + d);
            }
            Ok(DeadLettered::Dead { dropped: d }) => dropped += d,
            Ok(DeadLettered::NotPending) => not_pending += 1,
            Err(error) => tracing::error!(%error, "dead-lettering answered oddly"),
        }
    }
    let stream = H::STREAM.name();
    if refunded > 0 {
        tracing::warn!(stream, refunded, "refunded orders whose entries were dead-lettered");
    }
    if not_pending > 0 {
        tracing::info!(stream, not_pending, "entries committed by another consumer meanwhile were left alone");
    }
    if dropped > 0 {
        tracing::warn!(
            stream,
            dropped,
            cap = config.dead_letter_maxlen,
            "old dead letters fell off the cap (DEAD_LETTER_MAXLEN)"
        );
    }
    Ok(())
}

fn value_text(value: &Value) -> String {
    redis::from_redis_value_ref::<String>(value).unwrap_or_else(|_| format!("{value:?}"))
}

/// Shared by every handler: parses the batch, applies every entry that
/// parses in one batch script call (each entry acknowledged in the same
/// atomic step as its change), and judges each entry's reply. Entries that do
/// not parse are poison.
pub async fn apply_batch<E, R: FromRedisValue>(
    conn: &mut Redis,
    scope: &Scope,
    batch: &[StreamId],
    parse: impl Fn(&StreamId) -> Result<E, MalformedEntry>,
    call: impl FnOnce(&[(&E, &str)]) -> Call<Vec<R>>,
    judge: impl Fn(&E, R) -> Outcome,
) -> WorkerResult<Vec<Outcome>> {
    let parsed: Vec<Result<E, MalformedEntry>> = batch.iter().map(parse).collect();
    let applying: Vec<(&E, &str)> = batch
        .iter()
        .zip(&parsed)
        .filter_map(|(entry, event)| event.as_ref().ok().map(|event| (event, entry.id.as_str())))
        .collect();
    let mut replies = if applying.is_empty() {
        Vec::new().into_iter()
    } else {
        let replies = scope.durability.run(conn, call(&applying)).await?;
        if replies.len() != applying.len() {
            return Err(WorkerError::Replies { replies: replies.len(), entries: applying.len() });
        }
        replies.into_iter()
    };
    Ok(parsed
        .into_iter()
        .map(|event| match event {
            Ok(event) => match replies.next() {
                Some(reply) => judge(&event, reply),
                None => Outcome::poison("no reply from redis"),
            },
            Err(malformed) => malformed.into(),
        })
        .collect())
}

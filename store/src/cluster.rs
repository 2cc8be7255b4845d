//! A Redis Cluster connection that follows failovers on its own.
//!
//! The client learns that a slot has a new master from a MOVED, which only
//! a live node sends. A master cut off or paused sends nothing: every
//! command to it waits for its timeout and is tried on it again, until the
//! old master answers again (seconds after the failover, or never). So a
//! watcher asks some node for the cluster's view (`CLUSTER NODES`) every
//! [`WATCH_EVERY`] and, when slots changed hands, tells every [`Cluster`] of
//! the process on those seeds (one watcher for all of them, however many
//! connections the partitions' loops hold); each then makes a fresh
//! connection seeded with the new masters, and a command still waiting on
//! the old connection fails, instead of after its timeout (see
//! [`Cluster::run`]).
//!
//! A view is only followed when it is newer: every slot's owner carries the
//! configuration epoch it won the slot with, and a master that slept through
//! its failover (paused, cut off) still claims its slots with its old epoch
//! for the moment after it wakes. Its view is stale and ignored, and it is
//! never a seed, so no fresh connection learns its slots from it.
//!
//! Measured in the fault lab (`scripts/faults`): orders flow to the new
//! master within about a second of its election.
//!
//! A connection that reads from replicas learns a slot's replicas only when
//! it connects, from the first node it asks, and `CLUSTER SLOTS` lists a
//! replica only once that node has heard it synced (a fresh cluster's, or
//! an old master's rejoining as a replica): nodes hear it at different
//! moments. So while some [`Cluster`] reads from replicas, the watcher also
//! asks every master for `CLUSTER SLOTS` each tick, and when the replicas
//! they list between them change, such a `Cluster` takes a fresh connection
//! for its next command (a command in flight finishes), seeded with a
//! master that lists them all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_read_routing::RandomReplicaStrategy;
use redis::{AsyncConnectionConfig, RedisResult, Value};
use tokio::sync::watch;

/// How often the watcher asks for the cluster's view.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// The number of hash slots of a Redis Cluster.
const SLOTS: usize = 16384;

/// How to make the cluster clients of one [`Cluster`].
#[derive(Clone)]
pub struct Settings {
    /// The seeds' URLs; the first also lends its scheme and credentials to
    /// the masters a fresh client is seeded with.
    pub seeds: Vec<String>,
    pub config: ClusterConfig,
    /// How long a command may take, retries across a failover included.
    pub overall_timeout: Option<Duration>,
    /// Send read-only commands to a replica of the slot's master (to the
    /// master while it has none), so that they see only replicated writes.
    pub read_from_replicas: bool,
}

impl Settings {
    fn client(&self, seeds: &[String]) -> RedisResult<ClusterClient> {
        let builder = ClusterClient::builder(seeds.iter().map(String::as_str));
        let builder =
            if self.read_from_replicas { builder.read_routing_strategy(RandomReplicaStrategy) } else { builder };
        builder
            // A failover takes a few seconds, and while a slot moves a script
            // over keys on both sides gets TRYAGAIN until its keys are
            // together again: retry (with jittered backoff, at most a second
            // apart) for up to the overall timeout.
            .retries(16)
            .min_retry_wait(20)
            .max_retry_wait(1000)
            .overall_response_timeout(self.overall_timeout)
            .build()
    }
}

/// A cluster connection that follows the cluster's failovers (see the
/// module's documentation); cheap to clone (clones share it).
#[derive(Clone)]
pub struct Cluster {
    current: Arc<Mutex<Current>>,
    failovers: watch::Receiver<Masters>,
    settings: Arc<Settings>,
}

/// The connection in use, and the failover and replicas it follows.
struct Current {
    generation: u64,
    replicas: u64,
    conn: ClusterConnection,
}

/// The masters to seed a fresh connection with after the latest failover
/// (none before the first), and a count of the changes of the replicas that
/// serve reads.
#[derive(Debug, Clone, Default)]
struct Masters {
    generation: u64,
    seeds: Vec<String>,
    /// The client learns a slot's replicas only when it connects, and
    /// `CLUSTER SLOTS` lists a replica only once it has synced: a
    /// connection made while a replica was (re)joining would never read
    /// from it. A [`Cluster`] that reads from replicas makes a fresh
    /// connection when this changes, seeded with `replica_seed` alone.
    replicas: u64,
    /// A master whose `CLUSTER SLOTS` lists every replica: the client
    /// learns its slots from the first node it asks, and nodes learn of a
    /// replica's sync at different moments.
    replica_seed: Option<String>,
}

impl Cluster {
    /// Connects lazily to the seeds; follows failovers when a Tokio runtime
    /// is at hand (starting the watcher of these seeds if none runs).
    pub fn new(settings: Settings) -> RedisResult<Cluster> {
        let conn = settings.client(&settings.seeds)?.get_pending_async_connection_with_config(settings.config.clone());
        let failovers = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => failovers(&settings, &runtime),
            // Nothing will change: the sender is gone at once.
            Err(_) => watch::channel(Masters::default()).1,
        };
        Ok(Cluster {
            current: Arc::new(Mutex::new(Current { generation: 0, replicas: 0, conn })),
            failovers,
            settings: Arc::new(settings),
        })
    }

    pub fn connection(&self) -> ClusterConnection {
        self.connection_now(&mut self.failovers.clone()).1
    }

    /// The connection that follows the latest failover `failovers` has
    /// seen (and, reading from replicas, the latest replicas), made now if
    /// it is new, and that failover's generation; marks the news seen.
    fn connection_now(&self, failovers: &mut watch::Receiver<Masters>) -> (u64, ClusterConnection) {
        let masters = failovers.borrow_and_update();
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let new_replicas = self.settings.read_from_replicas && current.replicas != masters.replicas;
        if current.generation != masters.generation || new_replicas {
            current.generation = masters.generation;
            current.replicas = masters.replicas;
            let replica_seed = masters.replica_seed.as_ref().filter(|_| self.settings.read_from_replicas);
            let seeds = match replica_seed {
                Some(seed) => std::slice::from_ref(seed),
                None if masters.seeds.is_empty() => &self.settings.seeds,
                None => &masters.seeds,
            };
            match self.settings.client(seeds) {
                Ok(client) => {
                    current.conn = client.get_pending_async_connection_with_config(self.settings.config.clone())
                }
                Err(error) => tracing::warn!(%error, "could not follow the cluster's new masters"),
            }
        }
        (current.generation, current.conn.clone())
    }

    /// Runs `call` on the current connection. If the slots change hands
    /// before it answers, it fails at once rather than after its timeout:
    /// it may be waiting on a master that is gone, and it may also have run
    /// (on a master that is not), so sending it again could run it twice (a
    /// restock applied twice, an XREADGROUP delivering to nobody). Its
    /// caller treats it as any command whose outcome is unknown: retries
    /// what is idempotent, reads its own pending entries, answers 503. New
    /// replicas let it finish: only the next command takes them.
    pub async fn run<T, F, Fut>(&self, call: F) -> RedisResult<T>
    where
        F: FnOnce(ClusterConnection) -> Fut,
        Fut: std::future::Future<Output = RedisResult<T>>,
    {
        let mut failovers = self.failovers.clone();
        let (generation, conn) = self.connection_now(&mut failovers);
        let command = call(conn);
        tokio::pin!(command);
        loop {
            tokio::select! {
                result = &mut command => return result,
                Ok(()) = failovers.changed() => {
                    if failovers.borrow().generation == generation {
                        continue;
                    }
                    // Leave the old connection now, not at the next command:
                    // closed, it takes a command still blocked on it (an
                    // XREADGROUP) with it, before the caller reads what is pending
                    // for it. Left open, the XREADGROUP could still deliver.
                    drop(self.connection_now(&mut failovers));
                    tracing::debug!("a command in flight when the cluster's masters changed failed; it may have run");
                    return Err(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "the cluster's masters changed while the command was in flight; it may have run",
                    )));
                }
            }
        }
    }
}

/// A running watcher: its seeds, where it tells of failovers, and whether
/// some [`Cluster`] on them reads from replicas (then it watches those too).
struct Watcher {
    seeds: Vec<String>,
    news: Weak<watch::Sender<Masters>>,
    replica_reads: Arc<AtomicBool>,
}

/// The watchers running in this process.
static WATCHERS: Mutex<Vec<Watcher>> = Mutex::new(Vec::new());

/// News of the failovers of the cluster of `settings`' seeds, from the one
/// watcher of those seeds (started on `runtime` if none runs).
fn failovers(settings: &Settings, runtime: &tokio::runtime::Handle) -> watch::Receiver<Masters> {
    let mut watchers = WATCHERS.lock().unwrap_or_else(PoisonError::into_inner);
    watchers.retain(|watcher| watcher.news.strong_count() > 0);
    let running = watchers
        .iter()
        .find(|watcher| watcher.seeds == settings.seeds)
        .and_then(|watcher| Some((watcher.news.upgrade()?, watcher.replica_reads.clone())));
    if let Some((news, replica_reads)) = running {
        if settings.read_from_replicas {
            replica_reads.store(true, Ordering::Relaxed);
        }
        return news.subscribe();
    }
    let news = Arc::new(watch::Sender::new(Masters::default()));
    let receiver = news.subscribe();
    let replica_reads = Arc::new(AtomicBool::new(settings.read_from_replicas));
    watchers.push(Watcher {
        seeds: settings.seeds.clone(),
        news: Arc::downgrade(&news),
        replica_reads: replica_reads.clone(),
    });
    runtime.spawn(watch(news, settings.clone(), replica_reads));
    receiver
}

/// The replicas `CLUSTER SLOTS` lists for each slot range (`host:port`,
/// sorted): those a client reading from replicas would use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSets(Vec<(i64, Vec<String>)>);

impl ReplicaSets {
    /// Reads the reply of `CLUSTER SLOTS`: per range, `[first, last,
    /// master, replica...]`, each node `[host, port, id, ...]`.
    pub fn parse(reply: &Value) -> Option<ReplicaSets> {
        let text = |value: &Value| redis::from_redis_value_ref::<String>(value).ok();
        let Value::Array(ranges) = reply else { return None };
        let mut sets = Vec::new();
        for range in ranges {
            let Value::Array(fields) = range else { return None };
            let Some(Value::Int(first)) = fields.first() else { return None };
            let mut replicas = Vec::new();
            for node in fields.iter().skip(3) {
                let Value::Array(node) = node else { return None };
                replicas.push(format!("{}:{}", text(node.first()?)?, text(node.get(1)?)?));
            }
            replicas.sort();
            sets.push((*first, replicas));
        }
        sets.sort();
        Some(ReplicaSets(sets))
    }

    /// Every replica any of `views` lists, per slot range.
    pub fn union<'a>(views: impl Iterator<Item = &'a ReplicaSets>) -> ReplicaSets {
        let mut all: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        for ReplicaSets(sets) in views {
            for (first, replicas) in sets {
                all.entry(*first).or_default().extend(replicas.iter().cloned());
            }
        }
        ReplicaSets(all.into_iter().map(|(first, replicas)| (first, replicas.into_iter().collect())).collect())
    }
}

/// The replicas every master lists, while some [`Cluster`] reads from them.
#[derive(Default)]
struct ReplicaWatch {
    /// A connection to each master, by address.
    conns: HashMap<String, MultiplexedConnection>,
    /// The replicas last announced.
    announced: Option<ReplicaSets>,
}

impl ReplicaWatch {
    /// Asks every master for `CLUSTER SLOTS`. When the replicas they list
    /// between them are not those last announced, and one master's own
    /// answer lists them all, returns them and that master's address.
    async fn check(&mut self, masters: &[String], template: &str) -> Option<(ReplicaSets, String)> {
        let asks = masters.iter().map(|address| {
            let conn = self.conns.get(address).cloned();
            async move {
                let conn = match conn {
                    Some(conn) => conn,
                    None => {
                        let client = redis::Client::open(seed_at(template, address)).ok()?;
                        let config = AsyncConnectionConfig::new()
                            .set_connection_timeout(Some(WATCH_EVERY / 2))
                            .set_response_timeout(Some(WATCH_EVERY / 2));
                        client.get_multiplexed_async_connection_with_config(&config).await.ok()?
                    }
                };
                let mut slots = redis::cmd("CLUSTER");
                slots.arg("SLOTS");
                let reply = slots.query_async::<Value>(&mut conn.clone()).await.ok()?;
                Some((address.clone(), conn, ReplicaSets::parse(&reply)?))
            }
        });
        let answers: Vec<(String, MultiplexedConnection, ReplicaSets)> =
            futures::future::join_all(asks).await.into_iter().flatten().collect();
        self.conns = answers.iter().map(|(address, conn, _)| (address.clone(), conn.clone())).collect();
        let all = ReplicaSets::union(answers.iter().map(|(_, _, sets)| sets));
        if self.announced.as_ref() == Some(&all) {
            return None;
        }
        let (complete, _, _) = answers.iter().find(|(_, _, sets)| *sets == all)?;
        self.announced = Some(all.clone());
        Some((all, complete.clone()))
    }
}

/// Who serves each slot, by one node's account: the master's address and
/// the configuration epoch it holds the slot with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    owners: Vec<Option<(u64, String)>>,
    /// The masters that are up (not flagged `fail` or `fail?`), slots or not.
    live_masters: Vec<String>,
}

/// How a view compares with the one followed so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compared {
    /// The same owners.
    Same,
    /// Some slot has a new owner, with a higher epoch, and its old owner
    /// is no longer a live master (a failover): follow it.
    Newer,
    /// Slots have new owners, but every old owner is still a live master (a
    /// slot moved): it answers MOVED, so the client follows by itself; remember
    /// the view, change nothing.
    Moved,
    /// Some slot is claimed with a lower epoch than known: the view of a
    /// node that has not caught up; ignore it.
    Stale,
}

impl View {
    /// Reads the reply of `CLUSTER NODES`: one line per node, `<id>
    /// <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch>
    /// <link> <slot or range>...`.
    pub fn parse(text: &str) -> Option<View> {
        let mut owners = vec![None; SLOTS];
        let mut live_masters = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 || !fields[2].split(',').any(|flag| flag == "master") {
                continue;
            }
            let address = fields[1].split(['@', ',']).next()?.to_string();
            if !fields[2].split(',').any(|flag| flag == "fail" || flag == "fail?") {
                live_masters.push(address.clone());
            }
            let epoch: u64 = fields[6].parse().ok()?;
            // `[slot->-node]` and `[slot-<-node]` mark slots moving: not owned.
            for range in fields[8..].iter().filter(|range| !range.starts_with('[')) {
                let (first, last) = range.split_once('-').unwrap_or((range, range));
                let (first, last): (usize, usize) = (first.parse().ok()?, last.parse().ok()?);
                for owner in owners.get_mut(first..=last)? {
                    *owner = Some((epoch, address.clone()));
                }
            }
        }
        owners.iter().any(Option::is_some).then_some(View { owners, live_masters })
    }

    pub fn compare(&self, known: &View) -> Compared {
        let (mut moved, mut failed_over) = (false, false);
        for (seen, known) in self.owners.iter().zip(&known.owners) {
            match (seen, known) {
                (Some((seen_epoch, _)), Some((known_epoch, _))) if seen_epoch < known_epoch => return Compared::Stale,
                (Some((_, seen)), Some((_, known))) if seen != known => {
                    if self.live_masters.contains(known) {
                        moved = true;
                    } else {
                        failed_over = true;
                    }
                }
                (Some(_), None) => failed_over = true,
                _ => {}
            }
        }
        match (failed_over, moved) {
            (true, _) => Compared::Newer,
            (false, true) => Compared::Moved,
            (false, false) => Compared::Same,
        }
    }

    /// The masters' addresses (`host:port`), each once.
    pub fn masters(&self) -> Vec<String> {
        let mut masters: Vec<String> = self.owners.iter().flatten().map(|(_, address)| address.clone()).collect();
        masters.sort();
        masters.dedup();
        masters
    }
}

/// `url` (a seed's) pointing at `address` (`host:port`, an IPv6 host
/// without brackets as `CLUSTER NODES` writes it) instead: same scheme,
/// credentials and query.
pub fn seed_at(url: &str, address: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let credentials = authority.rfind('@').map_or("", |at| &authority[..=at]);
    let address = match address.rsplit_once(':') {
        Some((host, port)) if host.contains(':') => format!("[{host}]:{port}"),
        _ => address.to_string(),
    };
    format!("{scheme}://{credentials}{address}{tail}")
}

/// How long a seed may take to say who serves a slot.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// The URL (a seed's scheme and credentials) of the master that serves
/// `key`'s hash slot, for what must talk to that node itself: a
/// subscription to a shard channel. Every seed is asked at once (`CLUSTER
/// KEYSLOT`, `CLUSTER NODES`); the claim with the highest epoch wins, as a
/// master that slept through its failover claims its slots with its old one.
pub async fn master_url_of(seeds: &[String], key: &str) -> RedisResult<String> {
    let asks = seeds.iter().map(|seed| async move {
        let ask = async {
            let mut conn = redis::Client::open(seed.as_str())?.get_multiplexed_async_connection().await?;
            let (slot, nodes): (usize, String) = redis::pipe()
                .cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .cmd("CLUSTER")
                .arg("NODES")
                .query_async(&mut conn)
                .await?;
            RedisResult::Ok(View::parse(&nodes).and_then(|view| view.owners.get(slot).cloned().flatten()))
        };
        tokio::time::timeout(ASK_TIMEOUT, ask).await.ok().and_then(Result::ok).flatten()
    });
    let claims = futures::future::join_all(asks).await;
    match (seeds.first(), claims.into_iter().flatten().max_by_key(|(epoch, _)| *epoch)) {
        (Some(template), Some((_, address))) => Ok(seed_at(template, &address)),
        _ => Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "no cluster seed said which master serves the slot",
            key.to_string(),
        ))),
    }
}

/// Watches the cluster's view while some [`Cluster`] follows it (see the
/// module), and tells them of each failover.
async fn watch(failovers: Arc<watch::Sender<Masters>>, settings: Settings, replica_reads: Arc<AtomicBool>) {
    let mut known: Option<View> = None;
    let mut replicas = ReplicaWatch::default();
    let mut ticks = tokio::time::interval(WATCH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A connection of its own to ask on: a question to a node that does not
    // answer (paused, cut off) times out, and a client that saw a timeout
    // may reconnect to that node; never on the connection the commands use
    // (a blocked XREADGROUP there would deliver entries to nobody).
    let mut probe: Option<ClusterConnection> = None;
    loop {
        ticks.tick().await;
        if failovers.receiver_count() == 0 {
            return;
        }
        let conn = match probe.as_mut() {
            Some(conn) => conn,
            None => match settings.client(&settings.seeds) {
                Ok(client) => probe.insert(client.get_pending_async_connection_with_config(settings.config.clone())),
                Err(_) => continue,
            },
        };
        // Some node answers within a tick, or the next tick asks again.
        let mut nodes = redis::cmd("CLUSTER");
        nodes.arg("NODES");
        let template = settings.seeds.first().map_or("redis://", String::as_str);
        let replicas_seen = async {
            match known.as_ref() {
                Some(view) if replica_reads.load(Ordering::Relaxed) => replicas.check(&view.masters(), template).await,
                _ => None,
            }
        };
        let (replicas_seen, reply) =
            tokio::join!(replicas_seen, tokio::time::timeout(WATCH_EVERY, nodes.query_async::<String>(conn)));
        if let Some((sets, seed)) = replicas_seen {
            tracing::debug!(replicas = ?sets, seed, "the replicas serving reads changed; following them");
            failovers.send_modify(|masters| {
                masters.replicas += 1;
                masters.replica_seed = Some(seed_at(template, &seed));
            });
        }
        let Ok(Ok(reply)) = reply else {
            continue;
        };
        let Some(seen) = View::parse(&reply) else { continue };
        let Some(followed) = known.as_ref() else {
            known = Some(seen);
            continue;
        };
        match seen.compare(followed) {
            Compared::Same | Compared::Stale => continue,
            Compared::Moved => {
                known = Some(seen);
                continue;
            }
            Compared::Newer => {}
        }
        let seeds: Vec<String> = seen.masters().iter().map(|master| seed_at(template, master)).collect();
        match settings.client(&seeds) {
            Ok(client) => {
                tracing::info!(masters = ?seen.masters(), "the cluster's slots changed hands; following them");
                probe = Some(client.get_pending_async_connection_with_config(settings.config.clone()));
                failovers.send_modify(|masters| {
                    masters.generation += 1;
                    masters.seeds = seeds;
                });
                known = Some(seen);
            }
            Err(error) => tracing::warn!(%error, "could not follow the cluster's new masters"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host-4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 [5461->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
";

    fn view(text: &str) -> View {
        View::parse(text).expect("a view")
    }

    #[test]
    fn cluster_nodes_is_read_as_who_serves_each_slot_with_which_epoch() {
        let seen = view(NODES);
        assert_eq!(seen.owners[0], Some((1, "127.0.0.1:30001".to_string())));
        assert_eq!(seen.owners[5461], Some((2, "127.0.0.1:30002".to_string())));
        assert_eq!(seen.owners[16383], Some((3, "127.0.0.1:30003".to_string())));
        assert_eq!(seen.masters(), ["127.0.0.1:30001", "127.0.0.1:30002", "127.0.0.1:30003"]);
        assert_eq!(View::parse(""), None);
        assert_eq!(View::parse("garbage"), None);
    }

    #[test]
    fn a_failover_is_followed_and_the_old_masters_view_is_not() {
        let before = view(NODES);
        // The replica won slots 0-5460 with epoch 7.
        let after = view(
            &NODES
                .replace("127.0.0.1:30004@31004,host-4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected", "127.0.0.1:30004@31004 master - 0 1 7 connected 0-5460")
                .replace("myself,master - 0 0 1 connected 0-5460", "myself,slave 07c37dfeb235213a872192d90877d0cd55635b91 0 0 1 connected"),
        );
        assert_eq!(after.compare(&before), Compared::Newer);
        assert_eq!(after.compare(&after), Compared::Same);
        // The old master, awake again, still claims its slots with epoch 1.
        assert_eq!(before.compare(&after), Compared::Stale);
        assert_eq!(after.masters(), ["127.0.0.1:30002", "127.0.0.1:30003", "127.0.0.1:30004"]);
    }

    #[test]
    fn a_slot_moved_between_live_masters_is_remembered_not_followed() {
        let before = view(NODES);
        // Slot 5461 went from 30002 to 30001, which bumped its epoch to 4;
        // both are live masters, and 30002 answers MOVED for it.
        let after = view(&NODES.replace("connected 5461-10922", "connected 5462-10922").replace(
            "myself,master - 0 0 1 connected 0-5460 [5461->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]",
            "myself,master - 0 0 4 connected 0-5461",
        ));
        assert_eq!(after.compare(&before), Compared::Moved);
        // The same slots after a failover of 30002: its replica's view, 30002 failing.
        let failed = view(
            &NODES
                .replace("127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922", "127.0.0.1:30002@31002 master,fail - 0 1426238316232 2 connected")
                .replace("127.0.0.1:30004@31004,host-4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected", "127.0.0.1:30004@31004 master - 0 1 7 connected 5461-10922"),
        );
        assert_eq!(failed.compare(&before), Compared::Newer);
    }

    #[test]
    fn cluster_slots_is_read_as_the_replicas_of_each_range() {
        fn node(host: &str, port: i64) -> Value {
            Value::Array(vec![Value::BulkString(host.into()), Value::Int(port), Value::BulkString(b"id".to_vec())])
        }
        let range = |first: i64, nodes: Vec<Value>| {
            Value::Array([vec![Value::Int(first), Value::Int(first + 9)], nodes].concat())
        };
        let synced = Value::Array(vec![
            range(10, vec![node("10.0.0.2", 7002)]),
            range(0, vec![node("10.0.0.1", 7001), node("10.0.0.5", 7005), node("10.0.0.4", 7004)]),
        ]);
        assert_eq!(
            ReplicaSets::parse(&synced),
            Some(ReplicaSets(vec![
                (0, vec!["10.0.0.4:7004".to_string(), "10.0.0.5:7005".to_string()]),
                (10, Vec::new())
            ]))
        );
        // The same replicas listed in another order are the same.
        let reordered = Value::Array(vec![
            range(0, vec![node("10.0.0.1", 7001), node("10.0.0.4", 7004), node("10.0.0.5", 7005)]),
            range(10, vec![node("10.0.0.2", 7002)]),
        ]);
        assert_eq!(ReplicaSets::parse(&reordered), ReplicaSets::parse(&synced));
        assert_eq!(ReplicaSets::parse(&Value::Nil), None);
    }

    #[test]
    fn the_replicas_of_several_views_are_every_replica_any_lists() {
        let view = |sets: &[(i64, &[&str])]| {
            ReplicaSets(sets.iter().map(|(first, r)| (*first, r.iter().map(|r| r.to_string()).collect())).collect())
        };
        // One node has heard of both replicas' sync, another of one only.
        let complete = view(&[(0, &["a:1"]), (10, &["b:1"])]);
        let behind = view(&[(0, &["a:1"]), (10, &[])]);
        assert_eq!(ReplicaSets::union([&behind, &complete].into_iter()), complete);
        let other = view(&[(0, &["c:1"])]);
        assert_eq!(ReplicaSets::union([&complete, &other].into_iter()), view(&[(0, &["a:1", "c:1"]), (10, &["b:1"])]));
        assert_eq!(ReplicaSets::union(std::iter::empty()), view(&[]));
    }

    #[test]
    fn a_seed_keeps_its_scheme_and_credentials_at_a_new_address() {
        assert_eq!(seed_at("redis://10.0.0.1:6379", "10.0.0.9:7000"), "redis://10.0.0.9:7000");
        assert_eq!(
            seed_at("rediss://user:p%40ss@a.example:6380/?insecure", "10.0.0.9:7000"),
            "rediss://user:p%40ss@10.0.0.9:7000/?insecure"
        );
        assert_eq!(seed_at("redis://:secret@h:1", "::1:7000"), "redis://:secret@[::1]:7000");
    }
}

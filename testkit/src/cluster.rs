//! A private Redis Cluster per test: real `redis-server` processes on free
//! loopback ports, data in a temporary directory, killed when dropped.
//!
//! Everything talks to the nodes through `redis-cli`, so testkit needs no
//! Redis client of its own and what it does can be replayed by hand.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// How long cluster creation, a restart or a slot hand-over may take to settle.
const SETTLE_WITHIN: Duration = Duration::from_secs(30);
/// A single `redis-cli` call; a node that does not answer within this is hung
/// (e.g. SIGSTOPped by a test), and waiting forever would hang the test.
const CLI_TIMEOUT: Duration = Duration::from_secs(10);
/// Between two polls of the cluster's state.
const POLL: Duration = Duration::from_millis(25);

/// A Redis Cluster of `redis-server` child processes owned by a test.
pub struct RedisCluster {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
    last_kill: Option<Instant>,
}

struct Node {
    port: u16,
    /// The cluster bus port, chosen free like the port: the default
    /// (port + 10000) may be taken or beyond 65535.
    bus_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// What a node is in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Master,
    Replica,
}

/// One line of `CLUSTER NODES`, as seen by one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub port: u16,
    pub id: String,
    pub role: Role,
    /// A replica's master.
    pub master_id: Option<String>,
    /// The slots a master serves (empty for replicas).
    pub slots: Vec<RangeInclusive<u16>>,
    /// Flagged `fail` or `fail?` by the node whose view this is.
    pub failing: bool,
}

impl NodeInfo {
    /// Whether this node serves `slot`.
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|range| range.contains(&slot))
    }
}

impl RedisCluster {
    /// 3 masters with 1 replica each.
    pub fn start() -> RedisCluster {
        RedisCluster::start_with(3, 1)
    }

    /// Starts `masters` masters with `replicas_per_master` replicas each and
    /// waits until every node agrees on a healthy cluster.
    pub fn start_with(masters: usize, replicas_per_master: usize) -> RedisCluster {
        // `redis-cli --cluster create` refuses fewer, and failover needs a majority of masters.
        assert!(masters >= 3, "a Redis Cluster needs at least 3 masters, not {masters}");
        let count = masters * (1 + replicas_per_master);
        let dir = tempfile::tempdir().expect("create a temporary directory for the cluster");
        let ports = free_ports_outside_ephemeral_range(2 * count);
        let nodes = (0..count)
            .map(|i| {
                let port = ports[2 * i];
                Node { port, bus_port: ports[2 * i + 1], dir: dir.path().join(port.to_string()), child: None }
            })
            .collect();
        let mut cluster = RedisCluster { dir, nodes, last_kill: None };
        // All at once: each node takes a moment to start, polling them in turn overlaps that.
        for node in &mut cluster.nodes {
            create_dir(&node.dir);
            node.child = Some(spawn(node));
        }
        for i in 0..count {
            let mut attempts = 1;
            while let Err(log) = cluster.wait_until_answering(cluster.nodes[i].port) {
                // Another process took a port between our choice and the node's bind: choose again.
                if !log.contains("Address already in use") || attempts == 5 {
                    panic!("redis-server on port {} exited; end of its log:\n{log}", cluster.nodes[i].port);
                }
                attempts += 1;
                let ports = free_ports_outside_ephemeral_range(2);
                let node = &mut cluster.nodes[i];
                node.child = None;
                (node.port, node.bus_port) = (ports[0], ports[1]);
                node.dir = cluster.dir.path().join(node.port.to_string());
                create_dir(&node.dir);
                node.child = Some(spawn(node));
            }
        }
        let ports = cluster.ports();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        create.args(ports.iter().map(|port| format!("127.0.0.1:{port}")));
        create.args(["--cluster-replicas", &replicas_per_master.to_string(), "--cluster-yes"]);
        let out = run_with_timeout(create, SETTLE_WITHIN)
            .unwrap_or_else(|e| panic!("redis-cli --cluster create on ports {ports:?}: {e}"));
        if !out.contains("[OK] All 16384 slots covered") {
            panic!("redis-cli --cluster create on ports {ports:?} did not cover every slot:\n{out}");
        }
        let view = cluster.wait_until_settled("the new cluster to agree on its slots and replicas");
        let (got_masters, got_replicas) = count_roles(&view);
        assert_eq!(
            (got_masters, got_replicas),
            (masters, masters * replicas_per_master),
            "the new cluster has an unexpected shape: {view:#?}"
        );
        cluster
    }

    /// Every node's port, in start order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// The ports of the nodes that were not killed.
    pub fn live_ports(&self) -> Vec<u16> {
        self.nodes.iter().filter(|node| node.child.is_some()).map(|node| node.port).collect()
    }

    /// `redis://127.0.0.1:P` of every node, comma-separated: the value of
    /// `REDIS_CLUSTER_NODES`. All of them, so a client can bootstrap from
    /// whichever survives.
    pub fn seeds(&self) -> String {
        self.nodes.iter().map(|node| format!("redis://127.0.0.1:{}", node.port)).collect::<Vec<_>>().join(",")
    }

    /// The temporary directory holding one subdirectory (named by port) per node.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A node's log file.
    pub fn log_path(&self, port: u16) -> PathBuf {
        self.node(port).dir.join("redis.log")
    }

    /// The cluster as the first live node sees it right now (killed nodes
    /// included, flagged `failing` once it noticed).
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let mut problems = Vec::new();
        for port in self.live_ports() {
            match cli(port, &["CLUSTER", "NODES"]) {
                Ok(text) => return parse_cluster_nodes(&text),
                Err(e) => problems.push(e),
            }
        }
        panic!("no node answered CLUSTER NODES: {problems:?}");
    }

    /// The master serving `slot`, according to [`RedisCluster::nodes`].
    pub fn master_of_slot(&self, slot: u16) -> u16 {
        let view = self.nodes();
        view.iter()
            .find(|node| node.role == Role::Master && node.serves(slot))
            .map(|node| node.port)
            .unwrap_or_else(|| panic!("no master serves slot {slot}: {view:#?}"))
    }

    /// Runs `redis-cli -c` (following MOVED/ASK redirections) against the
    /// first live node and returns its trimmed output, errors included as text.
    pub fn cli(&self, args: &[&str]) -> String {
        let port = *self.live_ports().first().expect("a live node to run redis-cli against");
        let mut command = Command::new("redis-cli");
        command.args(["-c", "-p", &port.to_string()]).args(args);
        run_with_timeout(command, CLI_TIMEOUT).unwrap_or_else(|e| panic!("redis-cli -c -p {port} {args:?}: {e}"))
    }

    /// Runs `redis-cli` against one node, without following redirections.
    pub fn cli_at(&self, port: u16, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &port.to_string()]).args(args);
        run_with_timeout(command, CLI_TIMEOUT).unwrap_or_else(|e| panic!("redis-cli -p {port} {args:?}: {e}"))
    }

    /// SIGKILLs the master of `slot` and returns its port. Its replica takes
    /// over after about `cluster-node-timeout` plus an election: see
    /// [`RedisCluster::wait_for_failover`].
    pub fn kill_master_of_slot(&mut self, slot: u16) -> u16 {
        let port = self.master_of_slot(slot);
        self.kill_node(port);
        port
    }

    /// SIGKILLs one node (nothing flushed beyond what its AOF already wrote).
    pub fn kill_node(&mut self, port: u16) {
        let node = self.node_mut(port);
        let mut child = node.child.take().unwrap_or_else(|| panic!("node {port} is not running"));
        let _ = child.kill();
        let _ = child.wait();
        self.last_kill = Some(Instant::now());
    }

    /// SIGSTOPs one node: it neither answers nor fails, as a process paused by
    /// its host (a long garbage collection, a frozen VM) looks to its peers.
    pub fn pause_node(&self, port: u16) {
        self.signal(port, "-STOP");
    }

    /// SIGCONTs a paused node.
    pub fn resume_node(&self, port: u16) {
        self.signal(port, "-CONT");
    }

    fn signal(&self, port: u16, signal: &str) {
        let node = self.nodes.iter().find(|node| node.port == port).unwrap_or_else(|| panic!("no node {port}"));
        let pid = node.child.as_ref().unwrap_or_else(|| panic!("node {port} is not running")).id();
        let sent = Command::new("kill").args([signal, &pid.to_string()]).status();
        assert!(sent.is_ok_and(|status| status.success()), "kill {signal} {pid} (node {port})");
    }

    /// The replicas of the master on `port`.
    pub fn replicas_of(&self, port: u16) -> Vec<u16> {
        let view = self.nodes();
        let Some(master) = view.iter().find(|node| node.port == port) else { return Vec::new() };
        view.iter().filter(|node| node.master_id.as_deref() == Some(master.id.as_str())).map(|node| node.port).collect()
    }

    /// Waits until a live node is master of `slot` and every live node
    /// agrees the cluster is whole again (all slots served, replicas
    /// linked). Returns the time since the last kill, or since this call if
    /// nothing was killed.
    pub fn wait_for_failover(&self, slot: u16, within: Duration) -> Duration {
        let start = self.last_kill.unwrap_or_else(Instant::now);
        let deadline = Instant::now() + within;
        let live = self.live_ports();
        let what = format!("a failover of slot {slot} to a live node");
        wait_until(deadline, &what, || {
            let view = self.check_settled()?;
            match view.iter().find(|node| node.role == Role::Master && node.serves(slot)) {
                Some(node) if live.contains(&node.port) => Ok(()),
                Some(node) => Err(format!("slot {slot} is still served by killed node {}", node.port)),
                None => Err(format!("no master serves slot {slot}")),
            }
        });
        start.elapsed()
    }

    /// Starts a killed node again with the same port, directory and
    /// `nodes.conf`, and waits until the cluster has taken it back: a former
    /// master whose slots failed over rejoins as a replica of the new master.
    pub fn restart_node(&mut self, port: u16) {
        let node = self.node_mut(port);
        assert!(node.child.is_none(), "node {port} is still running; kill it first");
        node.child = Some(spawn(node));
        if let Err(log) = self.wait_until_answering(port) {
            panic!("restarted redis-server on port {port} exited; end of its log:\n{log}");
        }
        self.wait_until_settled(&format!("restarted node {port} to rejoin the cluster"));
    }

    /// Moves `slot` (with its keys) to the master on `to_port` while clients
    /// keep working, the way `redis-cli --cluster reshard` does.
    pub fn migrate_slot(&self, slot: u16, to_port: u16) {
        self.migrate(slot, to_port, 100, Duration::ZERO);
    }

    /// Like [`RedisCluster::migrate_slot`] but 10 keys at a time with a pause
    /// before each batch and before the hand-over, so that a test's load runs
    /// into the MIGRATING/IMPORTING state (ASK redirections) for a while.
    pub fn migrate_slot_slowly(&self, slot: u16, to_port: u16, pause_between_batches: Duration) {
        self.migrate(slot, to_port, 10, pause_between_batches);
    }

    fn migrate(&self, slot: u16, to_port: u16, batch: usize, pause: Duration) {
        let view = self.nodes();
        let source = view
            .iter()
            .find(|node| node.role == Role::Master && node.serves(slot))
            .unwrap_or_else(|| panic!("no master serves slot {slot}: {view:#?}"));
        let target = view
            .iter()
            .find(|node| node.port == to_port)
            .unwrap_or_else(|| panic!("no node on port {to_port}: {view:#?}"));
        assert_eq!(target.role, Role::Master, "slot {slot} can only move to a master, and {to_port} is not");
        assert_ne!(source.port, to_port, "slot {slot} is already served by {to_port}");
        let slot_arg = slot.to_string();
        let (from, to) = (source.port, target.port);
        // Importing first: once the source says MIGRATING it sends ASKs to the target.
        cli_expect_ok(to, &["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &source.id]);
        cli_expect_ok(from, &["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &target.id]);
        loop {
            std::thread::sleep(pause);
            let keys = cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot_arg, &batch.to_string()])
                .unwrap_or_else(|e| panic!("list the keys of slot {slot} on {from}: {e}"));
            // One key a line: keys with newlines in them are not supported.
            let keys: Vec<&str> = keys.lines().filter(|key| !key.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let to_arg = to.to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", &to_arg, "", "0", "5000", "KEYS"];
            args.extend(&keys);
            // NOKEY: the keys expired or were deleted meanwhile; the next round lists the rest.
            match cli(from, &args).as_deref() {
                Ok("OK") | Ok("NOKEY") => {}
                other => panic!("MIGRATE {} keys of slot {slot} from {from} to {to}: {other:?}", keys.len()),
            }
        }
        // Target first, so it owns the slot before the source stops redirecting there.
        cli_expect_ok(to, &["CLUSTER", "SETSLOT", &slot_arg, "NODE", &target.id]);
        cli_expect_ok(from, &["CLUSTER", "SETSLOT", &slot_arg, "NODE", &target.id]);
        for other in &view {
            let running = self.live_ports().contains(&other.port);
            if other.role == Role::Master && running && other.port != from && other.port != to {
                cli_expect_ok(other.port, &["CLUSTER", "SETSLOT", &slot_arg, "NODE", &target.id]);
            }
        }
        let deadline = Instant::now() + SETTLE_WITHIN;
        wait_until(deadline, &format!("every node to see slot {slot} on {to}"), || {
            let view = self.check_settled()?;
            match view.iter().find(|node| node.role == Role::Master && node.serves(slot)) {
                Some(node) if node.port == to => Ok(()),
                owner => Err(format!("slot {slot} is served by {:?}", owner.map(|node| node.port))),
            }
        });
    }

    /// Every line of every node's log that contains `needle`, with the node's port.
    pub fn log_contains(&self, needle: &str) -> Vec<(u16, String)> {
        let mut found = Vec::new();
        for node in &self.nodes {
            let path = node.dir.join("redis.log");
            let Ok(bytes) = std::fs::read(&path) else { continue };
            for line in String::from_utf8_lossy(&bytes).lines() {
                if line.contains(needle) {
                    found.push((node.port, line.to_string()));
                }
            }
        }
        found
    }

    /// `INFO errorstats` of every live node, each under a `# 127.0.0.1:P`
    /// header, so a test can assert e.g. that no `errorstat_CROSSSLOT` appears.
    pub fn error_stats(&self) -> String {
        let mut all = String::new();
        for port in self.live_ports() {
            let stats = cli(port, &["INFO", "errorstats"]).unwrap_or_else(|e| format!("(no answer: {e})"));
            all.push_str(&format!("# 127.0.0.1:{port}\n{}\n", stats.replace('\r', "")));
        }
        all
    }

    /// Kills every node (SIGKILL: the data goes with the temporary directory anyway).
    pub fn stop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    fn node(&self, port: u16) -> &Node {
        self.nodes.iter().find(|node| node.port == port).unwrap_or_else(|| panic!("no node on port {port}"))
    }

    fn node_mut(&mut self, port: u16) -> &mut Node {
        self.nodes.iter_mut().find(|node| node.port == port).unwrap_or_else(|| panic!("no node on port {port}"))
    }

    /// Waits until the node answers PING; the end of its log if it exited instead.
    fn wait_until_answering(&mut self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let log = self.log_path(port);
        let child = self.node_mut(port).child.as_mut().expect("a node that was just started");
        wait_until(deadline, &format!("redis-server on port {port} to answer PING"), || {
            if let Ok(Some(status)) = child.try_wait() {
                return Ok(Err(format!("{status}\n{}", log_tail(&log))));
            }
            match cli(port, &["PING"]) {
                Ok(pong) if pong == "PONG" => Ok(Ok(())),
                other => Err(format!("{other:?}")),
            }
        })
    }

    fn wait_until_settled(&self, what: &str) -> Vec<NodeInfo> {
        wait_until(Instant::now() + SETTLE_WITHIN, what, || self.check_settled())
    }

    /// Whether the cluster is whole: every live node says `cluster_state:ok`
    /// with every slot served by a node nobody suspects, knows every node,
    /// and sees the same live nodes, roles and slots; every live replica's
    /// link to its master is up. Returns the first live node's view.
    fn check_settled(&self) -> Result<Vec<NodeInfo>, String> {
        let live = self.live_ports();
        let mut reference: Option<(u16, Vec<NodeInfo>)> = None;
        for &port in &live {
            let info = cli(port, &["CLUSTER", "INFO"])?;
            for (field, want) in [
                ("cluster_state", "ok".to_string()),
                ("cluster_slots_assigned", SLOTS.to_string()),
                ("cluster_slots_ok", SLOTS.to_string()),
                ("cluster_known_nodes", self.nodes.len().to_string()),
            ] {
                let got = info_field(&info, field);
                if got != Some(want.as_str()) {
                    return Err(format!("127.0.0.1:{port} reports {field}:{}", got.unwrap_or("(missing)")));
                }
            }
            let view = parse_cluster_nodes(&cli(port, &["CLUSTER", "NODES"])?);
            let mut live_view: Vec<NodeInfo> = view.iter().filter(|node| live.contains(&node.port)).cloned().collect();
            live_view.sort_by_key(|node| node.port);
            if live_view.len() != live.len() {
                return Err(format!("127.0.0.1:{port} knows {} of the {} live nodes", live_view.len(), live.len()));
            }
            if let Some(node) = live_view.iter().find(|node| node.failing) {
                return Err(format!("127.0.0.1:{port} suspects live node {}", node.port));
            }
            let served: u32 = view.iter().flat_map(|n| &n.slots).map(|r| u32::from(r.end() - r.start()) + 1).sum();
            if live_view.iter().flat_map(|n| &n.slots).count() != view.iter().flat_map(|n| &n.slots).count()
                || served != u32::from(SLOTS)
            {
                return Err(format!("127.0.0.1:{port} sees slots served by killed nodes: {view:?}"));
            }
            let me = live_view.iter().find(|node| node.port == port).expect("a node lists itself");
            if me.role == Role::Replica {
                let replication = cli(port, &["INFO", "replication"])?;
                if info_field(&replication, "master_link_status") != Some("up") {
                    return Err(format!("replica 127.0.0.1:{port} has no link to its master yet"));
                }
            }
            match &reference {
                None => reference = Some((port, live_view)),
                Some((first, first_view)) if *first_view != live_view => {
                    return Err(format!(
                        "127.0.0.1:{first} and 127.0.0.1:{port} disagree:\n{first_view:?}\n{live_view:?}"
                    ));
                }
                Some(_) => {}
            }
        }
        let (first, _) = reference.ok_or("no live node")?;
        Ok(parse_cluster_nodes(&cli(first, &["CLUSTER", "NODES"])?))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The hash slot of `key`: CRC16 (XMODEM) mod 16384 of the key, or of its
/// hash tag: what is between the first `{` and the first `}` after it, when
/// that is not empty (`a{}b` and `{}{x}` hash as a whole).
pub fn key_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = match bytes.iter().position(|&b| b == b'{') {
        Some(open) => match bytes[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &bytes[open + 1..open + 1 + len],
            _ => bytes,
        },
        None => bytes,
    };
    crc16_xmodem(hashed) % SLOTS
}

fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

fn spawn(node: &Node) -> Child {
    Command::new("redis-server")
        .args(["--port", &node.port.to_string(), "--cluster-port", &node.bus_port.to_string()])
        .args(["--bind", "127.0.0.1", "--daemonize", "no"])
        // A dead master is noticed after 1 s (the default 15 s makes every failover test slow).
        .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000"])
        // Only a dead master's slots are unavailable until its replica takes
        // over; with the default (yes) every slot would refuse traffic meanwhile.
        .args(["--cluster-require-full-coverage", "no"])
        // A replica fails over however long its link was down (the default
        // refuses after 10 node timeouts, e.g. after a test paused things).
        .args(["--cluster-replica-validity-factor", "0"])
        // Full syncs start at once: the default waits 5 s for more replicas,
        // which delays start-up and a restarted node's rejoin.
        .args(["--repl-diskless-sync-delay", "0"])
        // A replica cut off from its master, or still syncing, refuses reads
        // (the live feed reads from replicas with REDIS_MIN_REPLICAS ≥ 1).
        .args(["--replica-serve-stale-data", "no"])
        .args(["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""])
        .arg("--dir")
        .arg(&node.dir)
        .arg("--logfile")
        .arg(node.dir.join("redis.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start redis-server (is it installed? scripts/setup installs it)")
}

/// `count` different loopback ports that were free a moment ago (held
/// together while choosing, so none is picked twice), chosen at random below
/// the kernel's ephemeral range: a port from `bind(0)` is in that range, and
/// the many outgoing connections of a cluster (bus links, every `redis-cli`)
/// take their local ports from it too, so one could steal it before the node
/// binds it.
fn free_ports_outside_ephemeral_range(count: usize) -> Vec<u16> {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000, ephemeral_start);
    let mut listeners = Vec::new();
    if high < low + 1_000 {
        // An unusual ephemeral range: fall back to whatever the kernel hands out.
        for _ in 0..count {
            listeners.push(TcpListener::bind("127.0.0.1:0").expect("find a free port"));
        }
    } else {
        let mut random = RandomState::new().build_hasher().finish() | 1;
        let mut tries = 0;
        while listeners.len() < count {
            tries += 1;
            assert!(tries < 100_000, "found only {} free ports in {low}..{high}", listeners.len());
            // xorshift64: good enough to spread parallel tests over the range.
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            let port = low + (random % u64::from(high - low)) as u16;
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
                listeners.push(listener);
            }
        }
    }
    listeners.iter().map(|l| l.local_addr().expect("a bound port").port()).collect()
}

fn create_dir(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
}

/// `redis-cli -e -p PORT ARGS...`: its trimmed output, or why it failed
/// (not reachable, an error reply, no answer within [`CLI_TIMEOUT`]).
fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    let mut command = Command::new("redis-cli");
    command.args(["-e", "-p", &port.to_string()]).args(args);
    run_with_timeout(command, CLI_TIMEOUT)
}

fn cli_expect_ok(port: u16, args: &[&str]) {
    match cli(port, args) {
        Ok(reply) if reply == "OK" => {}
        other => panic!("redis-cli -p {port} {args:?}: {other:?}"),
    }
}

/// Runs `command` and returns its stdout (trimmed at the end); an error
/// with its output when it fails, or when it does not exit within `within`.
fn run_with_timeout(mut command: Command, within: Duration) -> Result<String, String> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    let pid = child.id();
    let (done, result) = mpsc::channel();
    // The output is read to the end on another thread so that a full pipe never stalls it.
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match result.recv_timeout(within) {
        Ok(Ok(out)) => {
            let stdout = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
            if out.status.success() {
                Ok(stdout)
            } else {
                Err(format!("{}: {stdout} {}", out.status, String::from_utf8_lossy(&out.stderr).trim_end()))
            }
        }
        Ok(Err(e)) => Err(format!("cannot wait for it: {e}")),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            Err(format!("no answer within {within:?}"))
        }
    }
}

/// Polls `check` until it succeeds; past `deadline`, panics saying what it
/// waited for and the last reason it was not there yet.
fn wait_until<T>(deadline: Instant, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    loop {
        match check() {
            Ok(value) => return value,
            Err(why) if Instant::now() >= deadline => panic!("gave up waiting for {what}; last seen: {why}"),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// `field:value` lines of `INFO` / `CLUSTER INFO` (which end lines with `\r\n`).
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| line.trim_end().strip_prefix(field)?.strip_prefix(':'))
}

/// `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`;
/// nodes without an address yet (handshake) are left out, as are the
/// `[slot->-id]` / `[slot-<-id]` markers of a migration in progress.
fn parse_cluster_nodes(text: &str) -> Vec<NodeInfo> {
    let mut nodes = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            continue;
        }
        let address = fields[1].split(['@', ',']).next().unwrap_or_default();
        let Some(port) = address.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).filter(|&p| p != 0) else {
            continue;
        };
        let flags: HashSet<&str> = fields[2].split(',').collect();
        let role = if flags.contains("master") {
            Role::Master
        } else if flags.contains("slave") {
            Role::Replica
        } else {
            continue;
        };
        let slots = fields[8..]
            .iter()
            .filter(|slot| !slot.starts_with('['))
            .filter_map(|slot| match slot.split_once('-') {
                Some((a, b)) => Some(a.parse().ok()?..=b.parse().ok()?),
                None => slot.parse().ok().map(|s| s..=s),
            })
            .collect();
        nodes.push(NodeInfo {
            port,
            id: fields[0].to_string(),
            role,
            master_id: (fields[3] != "-").then(|| fields[3].to_string()),
            slots,
            failing: flags.contains("fail") || flags.contains("fail?"),
        });
    }
    nodes
}

fn count_roles(view: &[NodeInfo]) -> (usize, usize) {
    let masters = view.iter().filter(|node| node.role == Role::Master && !node.slots.is_empty()).count();
    let replicas = view.iter().filter(|node| node.role == Role::Replica).count();
    (masters, replicas)
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slots as `redis-cli -p P CLUSTER KEYSLOT <key>` of Redis 7.0.15 reported them.
    #[test]
    fn key_slot_matches_redis() {
        for (key, slot) in [
            ("foo", 12182),
            ("{p07}:order:x", 6953),
            ("stockflow:{p00}:orders", 11214),
            ("a{}b", 13694),
            ("{}{x}", 3257),
            ("{x}", 16287),
            ("x", 16287),
            ("", 0),
            ("a{b}c{d}", 3300),
            ("{a", 10276),
            ("a}b{c}", 7365),
            ("héllo", 11061),
            ("123456789", 12739),
        ] {
            assert_eq!(key_slot(key), slot, "slot of {key:?}");
        }
    }

    #[test]
    fn parses_cluster_nodes() {
        let text = "\
07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922 [5000->-e7d1]
e7d1 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 16383
6ec2 127.0.0.1:30005@31005 master,fail - 1426238316232 0 5 disconnected
aaaa :0@0 handshake - 0 0 0 disconnected
";
        let nodes = parse_cluster_nodes(text);
        assert_eq!(nodes.len(), 4);
        assert_eq!(nodes[0].role, Role::Replica);
        assert_eq!(nodes[0].master_id.as_deref(), Some("e7d1"));
        assert_eq!(nodes[1].slots, vec![5461..=10922]);
        assert_eq!(nodes[2].slots, vec![0..=5460, 16383..=16383]);
        assert!(nodes[2].serves(16383) && !nodes[2].serves(5461));
        assert!(nodes[3].failing && nodes[3].slots.is_empty());
    }

    #[test]
    fn reads_info_fields() {
        let info = "# Cluster\r\ncluster_state:ok\r\ncluster_slots_ok:16384\r\n";
        assert_eq!(info_field(info, "cluster_state"), Some("ok"));
        assert_eq!(info_field(info, "cluster_slots"), None);
        assert_eq!(info_field(info, "cluster_slots_ok"), Some("16384"));
    }
}

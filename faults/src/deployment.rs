//! A whole Stockflow deployment in the lab: a Redis Cluster of 3 masters
//! with 1 replica each (or 2), 2 servers and 2 workers processes, each on a host of its
//! own, the release binaries, and what the faults need to find their
//! targets (which node is master of a partition, its replica) and to move a
//! slot.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::lab::{Host, Network, Proc};

/// Masters of the Redis Cluster.
pub const MASTERS: usize = 3;
/// The workers' `CLAIM_IDLE_MS`: longer than any fault, so an order that
/// took longer waited for another consumer to reclaim it.
pub const CLAIM_IDLE_MS: u64 = 30_000;
pub const SERVERS: usize = 2;
pub const WORKERS: usize = 2;
/// `cluster-node-timeout`: a node unheard of this long is failing, and its
/// replica takes over about a second or two later.
pub const NODE_TIMEOUT: Duration = Duration::from_millis(2000);
/// The admin token of the lab's servers.
pub const ADMIN_TOKEN: &str = "fault-lab-admin-token-0123456789";
const REDIS_PORT: u16 = 6379;
const SITE_PORT: u16 = 3000;

/// The deployment's settings that change between runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub min_replicas: u32,
    /// Replicas of each master: with 2, a promoted replica still has one,
    /// so with `REDIS_MIN_REPLICAS=1` its partition takes orders again at once.
    pub replicas_per_master: usize,
}

impl Settings {
    /// Redis nodes: the masters, then their replicas.
    pub fn redis_nodes(&self) -> usize {
        MASTERS * (1 + self.replicas_per_master)
    }
}

/// Everything running in the lab.
pub struct Deployment {
    pub settings: Settings,
    pub network: Network,
    pub redis: Vec<Proc>,
    pub servers: Vec<Proc>,
    pub workers: Vec<Proc>,
    dir: tempfile::TempDir,
}

fn names(redis_nodes: usize) -> Vec<String> {
    let mut names: Vec<String> = (1..=redis_nodes).map(|n| format!("redis{n}")).collect();
    names.extend((1..=SERVERS).map(|n| format!("server{n}")));
    names.extend((1..=WORKERS).map(|n| format!("workers{n}")));
    names
}

/// `redis-cli -h host ...`, its output (at most 5 s: a paused node never answers).
pub async fn cli(host: &Host, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new("timeout")
        .args(["5", "redis-cli", "-h", &host.ip.to_string(), "-p", &REDIS_PORT.to_string()])
        .args(args)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || text.starts_with("ERR") {
        bail!("redis-cli -h {} {}: {text} {}", host.ip, args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(text)
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub ip: String,
    pub master: bool,
    pub master_id: Option<String>,
    pub failing: bool,
    pub slots: Vec<(u16, u16)>,
}

fn parse_nodes(text: &str) -> Vec<Node> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = *fields.get(2)?;
            let slots = fields
                .iter()
                .skip(8)
                .filter(|f| !f.starts_with('['))
                .filter_map(|range| match range.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => range.parse().ok().map(|s| (s, s)),
                })
                .collect();
            Some(Node {
                id: fields[0].to_string(),
                ip: fields[1].split(':').next()?.to_string(),
                master: flags.contains("master"),
                master_id: fields.get(3).filter(|m| **m != "-").map(|m| m.to_string()),
                failing: flags.contains("fail"),
                slots,
            })
        })
        .collect()
}

impl Deployment {
    /// Starts the cluster, then the servers and the workers, and waits until
    /// both servers are ready.
    pub async fn start(root: &Path, settings: Settings) -> Result<Deployment> {
        let network = Network::create(&names(settings.redis_nodes()))?;
        let dir = tempfile::tempdir()?;
        let mut deployment =
            Deployment { settings, network, redis: Vec::new(), servers: Vec::new(), workers: Vec::new(), dir };
        for n in 1..=settings.redis_nodes() {
            let host = deployment.network.host(&format!("redis{n}")).clone();
            let data = deployment.dir.path().join(format!("redis{n}"));
            std::fs::create_dir_all(&data)?;
            let args: Vec<String> = [
                "--bind",
                &host.ip.to_string(),
                "--port",
                &REDIS_PORT.to_string(),
                "--protected-mode",
                "no",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                &NODE_TIMEOUT.as_millis().to_string(),
                "--cluster-announce-ip",
                &host.ip.to_string(),
                // A returning master resyncs as a replica at once, not 5 s
                // later (Redis' default): with REDIS_MIN_REPLICAS=1 its
                // partition takes orders again only then. As scripts/cluster.
                "--repl-diskless-sync-delay",
                "0",
                // A replica cut off from its master, or still syncing (an
                // old master just back as a replica), refuses reads rather
                // than answer from data its master may no longer have: the
                // live feed reads from replicas (REDIS_MIN_REPLICAS ≥ 1), and
                // browsers saw the old master's lost changes. As scripts/cluster.
                "--replica-serve-stale-data",
                "no",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--dir",
                &data.display().to_string(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let log = data.join("redis.log");
            deployment.redis.push(Proc::start(
                &format!("redis{n}"),
                &host,
                Path::new("redis-server"),
                &args,
                &[],
                log,
            )?);
        }
        for n in 1..=settings.redis_nodes() {
            let host = deployment.network.host(&format!("redis{n}")).clone();
            let what = format!("redis{n} to answer");
            wait_until(Duration::from_secs(15), &what, || async { cli(&host, &["PING"]).await.map(|_| ()) }).await?;
        }
        let mut create = tokio::process::Command::new("timeout");
        create.args(["60", "redis-cli", "--cluster", "create"]);
        for n in 1..=settings.redis_nodes() {
            create.arg(format!("{}:{REDIS_PORT}", deployment.network.host(&format!("redis{n}")).ip));
        }
        let replicas = settings.replicas_per_master.to_string();
        let out = create.args(["--cluster-replicas", &replicas, "--cluster-yes"]).output().await?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !text.contains("[OK] All 16384 slots covered") {
            bail!("redis-cli --cluster create: {text}{}", String::from_utf8_lossy(&out.stderr));
        }
        deployment.wait_until_whole(Duration::from_secs(60)).await?;

        let seeds: Vec<String> = (1..=settings.redis_nodes())
            .map(|n| format!("redis://{}:{REDIS_PORT}", deployment.network.host(&format!("redis{n}")).ip))
            .collect();
        let common = |more: &[(&str, String)]| -> Vec<(String, String)> {
            let mut env = vec![
                ("REDIS_CLUSTER_NODES".to_string(), seeds.join(",")),
                ("REDIS_MIN_REPLICAS".to_string(), settings.min_replicas.to_string()),
                ("ADMIN_TOKEN".to_string(), ADMIN_TOKEN.to_string()),
                ("PAYMENT_DELAY_MS".to_string(), "50".to_string()),
                ("CLAIM_IDLE_MS".to_string(), CLAIM_IDLE_MS.to_string()),
                // LAB_RUST_LOG: more (or less) from the processes, to look into a run.
                (
                    "RUST_LOG".to_string(),
                    std::env::var("LAB_RUST_LOG").unwrap_or_else(|_| "server=info,workers=info,store=info".to_string()),
                ),
            ];
            env.extend(more.iter().map(|(k, v)| (k.to_string(), v.clone())));
            env
        };
        for n in 1..=SERVERS {
            let host = deployment.network.host(&format!("server{n}")).clone();
            let env = common(&[
                ("LEPTOS_SITE_ADDR", format!("{}:{SITE_PORT}", host.ip)),
                ("LEPTOS_OUTPUT_NAME", "stockflow".into()),
                ("LEPTOS_SITE_ROOT", root.join("target/site").display().to_string()),
                ("LEPTOS_SITE_PKG_DIR", "pkg".into()),
                ("LEPTOS_ENV", "PROD".into()),
                ("ORDER_RATE_PER_CLIENT", "0".into()),
                ("SEARCH_RATE_PER_CLIENT", "0".into()),
                ("FEED_MAX_PER_CLIENT", "1000".into()),
            ]);
            let log = deployment.dir.path().join(format!("server{n}.log"));
            let program = root.join("target/release/server");
            deployment.servers.push(Proc::start(&format!("server{n}"), &host, &program, &[], &env, log)?);
        }
        for n in 1..=WORKERS {
            let host = deployment.network.host(&format!("workers{n}")).clone();
            let env = common(&[("CONSUMER_NAME", format!("lab-workers{n}"))]);
            let log = deployment.dir.path().join(format!("workers{n}.log"));
            let program = root.join("target/release/workers");
            deployment.workers.push(Proc::start(&format!("workers{n}"), &host, &program, &[], &env, log)?);
        }
        for n in 1..=SERVERS {
            let url = format!("{}/readyz", deployment.server_url(n));
            let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
            let ready = wait_until(Duration::from_secs(60), &format!("server{n} to be ready"), || {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let response = client.get(url).send().await?;
                    anyhow::ensure!(response.status().is_success(), "{}", response.status());
                    Ok(())
                }
            })
            .await;
            if let Err(error) = ready {
                bail!("{error}\n{}", deployment.servers[n - 1].log_tail(20));
            }
        }
        Ok(deployment)
    }

    /// The base URL of server `n` (1-based).
    pub fn server_url(&self, n: usize) -> String {
        format!("http://{}:{SITE_PORT}", self.network.host(&format!("server{n}")).ip)
    }

    /// The seeds, as the lab's own clients reach the cluster.
    pub fn seeds(&self) -> String {
        (1..=self.settings.redis_nodes())
            .map(|n| format!("redis://{}:{REDIS_PORT}", self.network.host(&format!("redis{n}")).ip))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn redis_host(&self, ip: &str) -> Option<(usize, &Host)> {
        (1..=self.settings.redis_nodes())
            .map(|n| (n, self.network.host(&format!("redis{n}"))))
            .find(|(_, h)| h.ip.to_string() == ip)
    }

    /// The cluster as some live, reachable node sees it.
    pub async fn view(&self) -> Result<Vec<Node>> {
        let mut last = anyhow!("no node");
        for n in 1..=self.settings.redis_nodes() {
            match cli(self.network.host(&format!("redis{n}")), &["CLUSTER", "NODES"]).await {
                Ok(text) => return Ok(parse_nodes(&text)),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    /// The Redis node (1-based) that is master of `slot` now, and its replicas.
    pub async fn master_of(&self, slot: u16) -> Result<(usize, Vec<usize>)> {
        let view = self.view().await?;
        let master = view
            .iter()
            .find(|node| node.master && !node.failing && node.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .with_context(|| format!("no master serves slot {slot}"))?;
        let (n, _) = self.redis_host(&master.ip).context("the master is not a lab node")?;
        let replicas = view
            .iter()
            .filter(|node| node.master_id.as_deref() == Some(master.id.as_str()))
            .filter_map(|node| self.redis_host(&node.ip).map(|(n, _)| n))
            .collect();
        Ok((n, replicas))
    }

    /// Another master than node `n` (1-based).
    pub async fn other_master(&self, n: usize) -> Result<usize> {
        self.other_master_except(&[n]).await
    }

    /// A master that is none of `not` (1-based).
    pub async fn other_master_except(&self, not: &[usize]) -> Result<usize> {
        let view = self.view().await?;
        view.iter()
            .filter(|node| node.master && !node.slots.is_empty() && !node.failing)
            .filter_map(|node| self.redis_host(&node.ip).map(|(m, _)| m))
            .find(|m| !not.contains(m))
            .context("no other master")
    }

    /// Waits until every node says the cluster is ok and no node is failing.
    pub async fn wait_until_whole(&self, within: Duration) -> Result<()> {
        wait_until(within, "the cluster to be whole", || async {
            for n in 1..=self.settings.redis_nodes() {
                let host = self.network.host(&format!("redis{n}"));
                let info = cli(host, &["CLUSTER", "INFO"]).await?;
                anyhow::ensure!(info.contains("cluster_state:ok"), "redis{n}: not ok");
                let nodes = parse_nodes(&cli(host, &["CLUSTER", "NODES"]).await?);
                anyhow::ensure!(nodes.iter().all(|node| !node.failing), "redis{n} sees a failing node");
                // A master's replicas have its data (the first sync waits a few seconds).
                let me = nodes.iter().find(|node| node.ip == host.ip.to_string());
                if me.is_some_and(|me| me.master && !me.slots.is_empty()) {
                    let replication = cli(host, &["INFO", "replication"]).await?;
                    let online = replication.matches("state=online").count();
                    let wanted = self.settings.replicas_per_master;
                    anyhow::ensure!(online >= wanted, "redis{n} has {online} of its {wanted} replicas online");
                }
            }
            Ok(())
        })
        .await
    }

    /// Moves `slot` (with its keys) to the master on node `to` (1-based), as
    /// `redis-cli --cluster reshard` does.
    pub async fn move_slot(&self, slot: u16, to: usize) -> Result<()> {
        let (from, _) = self.master_of(slot).await?;
        let view = self.view().await?;
        let (source, target) = (self.network.host(&format!("redis{from}")), self.network.host(&format!("redis{to}")));
        let id_of = |host: &Host| {
            view.iter().find(|node| node.ip == host.ip.to_string()).map(|node| node.id.clone()).context("node id")
        };
        let (source_id, target_id) = (id_of(source)?, id_of(target)?);
        let slot = slot.to_string();
        cli(target, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &source_id]).await?;
        cli(source, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &target_id]).await?;
        loop {
            let keys = cli(source, &["CLUSTER", "GETKEYSINSLOT", &slot, "100"]).await?;
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let target_ip = target.ip.to_string();
            let port = REDIS_PORT.to_string();
            let mut args = vec!["MIGRATE", target_ip.as_str(), port.as_str(), "", "0", "5000", "KEYS"];
            args.extend(&keys);
            let moved = cli(source, &args).await?;
            anyhow::ensure!(moved == "OK" || moved == "NOKEY", "MIGRATE: {moved}");
        }
        cli(target, &["CLUSTER", "SETSLOT", &slot, "NODE", &target_id]).await?;
        cli(source, &["CLUSTER", "SETSLOT", &slot, "NODE", &target_id]).await?;
        Ok(())
    }

    /// Where the processes' logs are.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Stops everything (the network goes when the deployment is dropped).
    pub async fn stop(&mut self) {
        for proc in self.servers.iter_mut().chain(self.workers.iter_mut()) {
            proc.stop(Duration::from_secs(5)).await;
        }
        for proc in &mut self.redis {
            proc.resume().ok();
            let _ = proc.kill().await;
        }
    }
}

/// Tries `check` until it succeeds, for up to `within`.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() > deadline => bail!("waited {within:?} for {what}: {error}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

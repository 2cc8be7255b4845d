//! What the bench reads about the processes it measures: CPU time and
//! resident memory from `/proc` (for the server and workers it knows the pid
//! of, and for itself), and Redis's own figures from `INFO`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use redis::aio::MultiplexedConnection;
use serde::Serialize;

/// Clock ticks per second in `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time (user + system, every thread) a process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu(&stat)
}

/// The process's resident memory now, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time all cores have spent since boot, from `/proc/stat`: running
/// processes (or taken by the hypervisor), and handling interrupts (the
/// loopback's packets among them, which no process is charged for).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MachineCpu {
    pub processes: f64,
    pub interrupts: f64,
}

pub fn machine_cpu() -> Option<MachineCpu> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_cpu(stat.lines().next()?)
}

fn parse_machine_cpu(cpu_line: &str) -> Option<MachineCpu> {
    let fields: Vec<u64> = cpu_line.strip_prefix("cpu ")?.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let sum = |indexes: &[usize]| indexes.iter().filter_map(|&i| fields.get(i)).sum::<u64>() as f64 / TICKS_PER_SECOND;
    Some(MachineCpu { processes: sum(&[0, 1, 2, 7]), interrupts: sum(&[5, 6]) })
}

fn parse_stat_cpu(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of the whole line; the slice starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// A connection to Redis for its `INFO` figures (never for the shop's own work).
#[derive(Clone)]
pub struct RedisProbe {
    conn: MultiplexedConnection,
    /// The same Redis as the shop's store reaches it, for writing in bulk.
    store: store::Redis,
}

/// `INFO commandstats`: calls and microseconds per command.
pub type CommandStats = BTreeMap<String, CommandStat>;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct CommandStat {
    pub calls: u64,
    pub usec: u64,
}

impl RedisProbe {
    pub async fn connect(url: &str) -> Result<RedisProbe> {
        let client = redis::Client::open(url).with_context(|| format!("--redis-url {url}"))?;
        let conn = client.get_multiplexed_async_connection().await.with_context(|| format!("connecting to {url}"))?;
        let store = store::connection::connect(&store::RedisTarget::Single(url.to_string()))?;
        Ok(RedisProbe { conn, store })
    }

    pub fn connection(&self) -> MultiplexedConnection {
        self.conn.clone()
    }

    /// A connection of the store's own kind (for `store::bulk`).
    pub fn store(&self) -> &store::Redis {
        &self.store
    }

    pub async fn info(&self, section: &str) -> Result<BTreeMap<String, String>> {
        let text: String = redis::cmd("INFO").arg(section).query_async(&mut self.conn.clone()).await?;
        Ok(parse_info(&text))
    }

    /// `used_cpu_sys + used_cpu_user`: the CPU Redis has used (every thread).
    pub async fn cpu_seconds(&self) -> Result<f64> {
        let info = self.info("cpu").await?;
        let field = |name: &str| -> Result<f64> {
            info.get(name).and_then(|v| v.parse().ok()).with_context(|| format!("INFO cpu has no {name}"))
        };
        Ok(field("used_cpu_sys")? + field("used_cpu_user")?)
    }

    pub async fn command_stats(&self) -> Result<CommandStats> {
        let info = self.info("commandstats").await?;
        Ok(parse_command_stats(&info))
    }

    pub async fn version(&self) -> Option<String> {
        self.info("server").await.ok()?.get("redis_version").cloned()
    }

    pub async fn used_memory(&self) -> Option<u64> {
        self.info("memory").await.ok()?.get("used_memory")?.parse().ok()
    }

    /// Waits (up to `limit`) until no AOF rewrite runs or is scheduled: a
    /// rewrite forks and copies the whole data set, which would land in
    /// whatever the bench measures next.
    pub async fn wait_for_quiet_persistence(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let info = self.info("persistence").await?;
            let busy = ["aof_rewrite_in_progress", "aof_rewrite_scheduled", "rdb_bgsave_in_progress"]
                .iter()
                .any(|field| info.get(*field).is_some_and(|v| v != "0"));
            if !busy {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("Redis was still rewriting its append-only file after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `field:value` lines of an `INFO` answer.
pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.trim_end().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `cmdstat_evalsha:calls=3,usec=120,usec_per_call=40.00,...` lines, by command name.
pub fn parse_command_stats(info: &BTreeMap<String, String>) -> CommandStats {
    info.iter()
        .filter_map(|(key, value)| {
            let name = key.strip_prefix("cmdstat_")?;
            let mut stat = CommandStat::default();
            for part in value.split(',') {
                match part.split_once('=') {
                    Some(("calls", n)) => stat.calls = n.parse().ok()?,
                    Some(("usec", n)) => stat.usec = n.parse().ok()?,
                    _ => {}
                }
            }
            Some((name.to_string(), stat))
        })
        .collect()
}

/// What changed between two `INFO commandstats` readings.
pub fn command_delta(before: &CommandStats, after: &CommandStats) -> CommandStats {
    after
        .iter()
        .map(|(name, stat)| {
            let old = before.get(name).copied().unwrap_or_default();
            (
                name.clone(),
                CommandStat { calls: stat.calls.saturating_sub(old.calls), usec: stat.usec.saturating_sub(old.usec) },
            )
        })
        .filter(|(_, stat)| stat.calls > 0)
        .collect()
}

/// The processes whose CPU a scenario reports.
#[derive(Clone)]
pub struct Observer {
    pub server_pid: Option<u32>,
    pub workers_pid: Option<u32>,
    pub redis: Option<RedisProbe>,
}

/// CPU seconds used so far by each process the bench can see.
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    at: Instant,
    processes: Vec<(&'static str, Option<f64>)>,
    machine: Option<MachineCpu>,
}

/// CPU used during a stretch of a scenario, per process.
#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    pub wall_s: f64,
    /// Seconds of CPU per process (`None`: not visible from here); then
    /// `interrupts` (the machine's, the loopback's packets among them) and
    /// `other`: every other process, when every process of the app was visible.
    pub cpu_s: BTreeMap<&'static str, Option<f64>>,
}

impl Observer {
    pub async fn cpu(&self) -> CpuSnapshot {
        let redis = match &self.redis {
            Some(probe) => probe.cpu_seconds().await.ok(),
            None => None,
        };
        CpuSnapshot {
            at: Instant::now(),
            processes: vec![
                ("server", self.server_pid.and_then(cpu_seconds)),
                ("workers", self.workers_pid.and_then(cpu_seconds)),
                ("redis", redis),
                ("bench", cpu_seconds(std::process::id())),
            ],
            machine: machine_cpu(),
        }
    }
}

impl CpuSnapshot {
    pub fn until(&self, later: &CpuSnapshot) -> CpuUse {
        let mut cpu_s: BTreeMap<&'static str, Option<f64>> = self
            .processes
            .iter()
            .zip(&later.processes)
            .map(|((name, a), (_, b))| (*name, a.zip(*b).map(|(a, b)| (b - a).max(0.0))))
            .collect();
        let ours: Option<f64> = cpu_s.values().copied().sum();
        let machine = self.machine.zip(later.machine);
        cpu_s.insert("interrupts", machine.map(|(a, b)| (b.interrupts - a.interrupts).max(0.0)));
        cpu_s.insert("other", machine.zip(ours).map(|((a, b), ours)| (b.processes - a.processes - ours).max(0.0)));
        CpuUse { wall_s: later.at.duration_since(self.at).as_secs_f64(), cpu_s }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_cpu(stat), Some(2.0));
        assert!(cpu_seconds(std::process::id()).is_some());
        assert!(rss_kib(std::process::id()).unwrap() > 0);
        assert_eq!(
            parse_machine_cpu("cpu  100 5 45 9000 30 10 20 20 0 0"),
            Some(MachineCpu { processes: 1.7, interrupts: 0.3 })
        );
        assert!(machine_cpu().is_some());
    }

    #[test]
    fn command_stats_and_their_delta() {
        let info = parse_info(
            "# Commandstats\r\ncmdstat_evalsha:calls=10,usec=500,usec_per_call=50.00,rejected_calls=0,failed_calls=0\r\n\
             cmdstat_xinfo|groups:calls=2,usec=8,usec_per_call=4.00,rejected_calls=0,failed_calls=0\r\n",
        );
        let before = parse_command_stats(&info);
        assert_eq!(before["evalsha"], CommandStat { calls: 10, usec: 500 });
        assert_eq!(before["xinfo|groups"].calls, 2);
        let mut after = before.clone();
        after.insert("evalsha".into(), CommandStat { calls: 15, usec: 800 });
        after.insert("hset".into(), CommandStat { calls: 5, usec: 10 });
        let delta = command_delta(&before, &after);
        assert_eq!(delta.len(), 2, "unchanged commands are left out: {delta:?}");
        assert_eq!(delta["evalsha"], CommandStat { calls: 5, usec: 300 });
    }
}

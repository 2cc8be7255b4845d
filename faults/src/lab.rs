//! The lab: every Redis node and every Stockflow process on a host of its
//! own (a Linux network namespace), all joined by one bridge, and the faults
//! a data centre sees, made on them.
//!
//! Host `n` has the address `10.213.<subnet>.<10 + n>` on the bridge; the
//! lab itself (the clients) has `.1`, in the machine's own namespace. A
//! fault is made with the kernel's own tools: a link taken down cuts a host
//! off from everyone; blackhole routes (`ip route add blackhole`) on both
//! sides cut two hosts apart and leave the rest, so a group of hosts can be
//! split from the others (no `netem`, no firewall needed); SIGSTOP pauses a
//! process as a frozen host would; SIGKILL kills it. Traffic only ever goes
//! to the addresses of the namespaces the lab made.
//!
//! Everything the lab makes carries its name (`sflab<pid>`): it removes it
//! all when dropped, and a new lab removes what a lab that died left.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

/// What every name the lab makes starts with.
const PREFIX: &str = "sflab";

/// A host of the lab: a network namespace with one address on the bridge.
#[derive(Debug, Clone)]
pub struct Host {
    /// What it runs, for people: `redis-1`, `server-2`, ...
    pub name: String,
    pub netns: String,
    /// The root side of its link to the bridge.
    veth: String,
    pub ip: Ipv4Addr,
}

/// The lab's network.
pub struct Network {
    id: String,
    bridge: String,
    subnet: u8,
    pub hosts: Vec<Host>,
}

/// Runs `ip` with `args`, failing with its message.
pub fn ip(args: &[&str]) -> Result<()> {
    let out = std::process::Command::new("ip").args(args).stderr(Stdio::piped()).stdout(Stdio::null()).output()?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Network {
    /// Makes the bridge and one host per name.
    pub fn create(names: &[String]) -> Result<Network> {
        if std::process::Command::new("id").arg("-u").output().map(|o| o.stdout != b"0\n").unwrap_or(true) {
            bail!("the fault lab makes network namespaces: run it as root");
        }
        remove_leftovers();
        let pid = std::process::id();
        let id = format!("{PREFIX}{pid}");
        // A subnet of its own per lab, unlikely to meet anything else.
        let subnet = (pid % 200 + 20) as u8;
        let bridge = format!("{id}br");
        let mut network = Network { id: id.clone(), bridge: bridge.clone(), subnet, hosts: Vec::new() };
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("10.213.{subnet}.1/24"), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for (n, name) in names.iter().enumerate() {
            let netns = format!("{id}-{name}");
            let veth = format!("{PREFIX}{}h{n}", pid % 100_000);
            let host_ip = Ipv4Addr::new(10, 213, subnet, 10 + n as u8);
            ip(&["netns", "add", &netns])?;
            network.hosts.push(Host { name: name.clone(), netns: netns.clone(), veth: veth.clone(), ip: host_ip });
            ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns])?;
            ip(&["link", "set", &veth, "master", &bridge, "up"])?;
            ip(&["-n", &netns, "addr", "add", &format!("{host_ip}/24"), "dev", "eth0"])?;
            ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        }
        Ok(network)
    }

    pub fn host(&self, name: &str) -> &Host {
        self.hosts.iter().find(|host| host.name == name).unwrap_or_else(|| panic!("no host {name}"))
    }

    /// The lab's own address (the clients').
    pub fn own_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, 1)
    }

    /// Cuts `host` off from everyone (its link down), or joins it again.
    pub fn set_linked(&self, host: &Host, linked: bool) -> Result<()> {
        ip(&["link", "set", &host.veth, if linked { "up" } else { "down" }])
    }

    /// Cuts every host of `group` off from every other host (and from the
    /// lab's clients when `with_clients` is false), or joins them again: a
    /// partition into `group` and the rest.
    pub fn set_split(&self, group: &[&Host], with_clients: bool, split: bool) -> Result<()> {
        let verb = if split { "add" } else { "del" };
        let inside: Vec<&str> = group.iter().map(|h| h.netns.as_str()).collect();
        for host in group {
            for other in self.hosts.iter().filter(|h| !inside.contains(&h.netns.as_str())) {
                ip(&["-n", &host.netns, "route", verb, "blackhole", &format!("{}/32", other.ip)])?;
                ip(&["-n", &other.netns, "route", verb, "blackhole", &format!("{}/32", host.ip)])?;
            }
            if !with_clients {
                ip(&["-n", &host.netns, "route", verb, "blackhole", &format!("{}/32", self.own_ip())])?;
                ip(&["route", verb, "blackhole", &format!("{}/32", host.ip)])?;
            }
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = ip(&["route", "del", "blackhole", &format!("{}/32", host.ip)]);
            // The link first: a namespace outlives its deletion while a
            // process (a redis-server still exiting) is in it, and its link
            // with it, whose name the next run of this process reuses.
            let _ = ip(&["link", "del", &host.veth]);
            let _ = ip(&["netns", "del", &host.netns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
        tracing::debug!(lab = %self.id, "removed the lab's network");
    }
}

/// Removes what labs that died left: their namespaces and bridges (and so
/// their links), and the processes still running in them.
pub fn remove_leftovers() {
    let list = std::process::Command::new("ip").args(["netns", "list"]).output();
    let names = list.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    for name in names.lines().filter_map(|line| line.split_whitespace().next()).filter(|n| n.starts_with(PREFIX)) {
        let pids = std::process::Command::new("ip").args(["netns", "pids", name]).output();
        for pid in pids.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default().lines() {
            let _ = std::process::Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
        let _ = ip(&["netns", "del", name]);
    }
    let links = std::process::Command::new("ip").args(["-o", "link", "show", "type", "bridge"]).output();
    for line in links.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default().lines() {
        if let Some(name) = line.split(':').nth(1).map(str::trim).filter(|n| n.starts_with(PREFIX)) {
            let _ = ip(&["link", "del", name]);
        }
    }
}

/// A process of the lab, on one host; killed when dropped.
pub struct Proc {
    pub name: String,
    netns: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    /// Starts `program` with `args` and `env` on `host`; its output goes to `log`.
    pub fn start(
        name: &str,
        host: &Host,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        log: PathBuf,
    ) -> Result<Proc> {
        let mut proc = Proc {
            name: name.to_string(),
            netns: host.netns.clone(),
            program: program.to_path_buf(),
            args: args.to_vec(),
            env: env.to_vec(),
            log,
            child: None,
        };
        proc.spawn()?;
        Ok(proc)
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.netns])
            .arg(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        self.child = Some(command.spawn().with_context(|| format!("starting {} in {}", self.name, self.netns))?);
        Ok(())
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    fn signal(&self, signal: &str) -> Result<()> {
        let pid = self.pid().with_context(|| format!("{} is not running", self.name))?;
        let sent = std::process::Command::new("kill").args([signal, &pid.to_string()]).status()?;
        if !sent.success() {
            bail!("kill {signal} {pid} ({})", self.name);
        }
        Ok(())
    }

    /// SIGSTOP: it neither answers nor fails, as on a frozen host.
    pub fn pause(&self) -> Result<()> {
        self.signal("-STOP")
    }

    pub fn resume(&self) -> Result<()> {
        self.signal("-CONT")
    }

    /// SIGKILL, and waits for it to be gone.
    pub async fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            // SIGKILL ends a paused process too.
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
        Ok(())
    }

    /// SIGTERM, and waits up to `within` for it to exit.
    pub async fn stop(&mut self, within: Duration) {
        if self.signal("-TERM").is_ok() {
            if let Some(child) = self.child.as_mut() {
                let _ = tokio::time::timeout(within, child.wait()).await;
            }
        }
        let _ = self.kill().await;
    }

    /// Starts it again as it was started first.
    pub fn restart(&mut self) -> Result<()> {
        self.spawn()
    }

    /// The end of its log, for a report of why something failed.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

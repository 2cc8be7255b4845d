//! Test support: a private `redis-server` per test (or per test binary).
//!
//! Tests never touch the machine's default Redis: each [`RedisServer`] runs on
//! a free loopback port with its data in a temporary directory, and is killed
//! when dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod backend;
mod cluster;
pub use backend::{Backend, TestRedis};
pub use cluster::{key_slot, NodeInfo, RedisCluster, Role, SLOTS};

/// A `redis-server` child process owned by a test.
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server with append-only persistence on a free port and waits until it answers.
    pub fn start() -> RedisServer {
        let dir = tempfile::tempdir().expect("create a temporary directory for redis-server");
        let port = free_port();
        let child = spawn(dir.path(), port);
        let server = RedisServer { child, port, dir };
        server.wait_until_ready();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL: nothing flushed beyond what AOF already wrote).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server gracefully (SIGTERM: it writes its AOF and exits).
    pub fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and data directory; it
    /// reloads its state from the append-only file.
    pub fn start_again(&mut self) {
        self.child = spawn(self.dir.path(), self.port);
        self.wait_until_ready();
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let out = Command::new("redis-cli").args(["-p", &self.port.to_string(), "PING"]).output();
            if let Ok(out) = out {
                if out.stdout.starts_with(b"PONG") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer within 10 s", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(dir: &Path, port: u16) -> Child {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--appendonly", "yes"])
        .args(["--appendfsync", "everysec", "--save", "", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start redis-server (is it installed? scripts/setup installs it)");
    // Drain its log so a full pipe never stalls it.
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
    }
    child
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("find a free port")
}

/// A child process of a test (a workers or server binary), killed when dropped.
pub struct Process {
    child: Child,
    name: String,
}

impl Process {
    /// Starts `program` with `env` added to the environment; its output goes
    /// to the test's output, prefixed by nothing (cargo shows it on failure).
    pub fn spawn(name: &str, program: &str, args: &[&str], env: &[(&str, String)]) -> Process {
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().unwrap_or_else(|e| panic!("start {program}: {e}"));
        Process { child, name: name.to_string() }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `within` for the exit; returns its exit code
    /// (`None` when it had to be killed or died by a signal).
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                eprintln!("{} did not exit within {within:?} of SIGTERM", self.name);
                self.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

//! The fixed set of scenarios, what they share, and what each reports.

pub mod contested;
pub mod fanout;
pub mod hostile;
pub mod latency;
pub mod lists;
pub mod redis_cost;
pub mod servers;
pub mod steady;
pub mod throughput;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::http::{Conn, Product, Target};
use crate::observe::{CpuUse, Observer, RedisProbe};
use crate::stats::Samples;

/// Other work on the machine, in cores, past which a scenario's figures are flagged as noisy.
const NOISE_CORES: f64 = 0.25;

/// Every scenario, in the order they run (lists last: it leaves a million orders behind).
pub const ALL: [&str; 9] =
    ["throughput", "latency", "steady", "servers", "hostile", "contested", "redis", "fanout", "lists"];

/// How big each scenario is: the full run, or the smoke run of `scripts/test`.
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    pub smoke: bool,
    pub warmup: Duration,
    pub drain: Duration,
    pub throughput_time: Duration,
    pub throughput_lanes: usize,
    pub latency_rate: f64,
    pub latency_time: Duration,
    pub contested_products: usize,
    pub contested_stock: u32,
    pub contested_lanes: usize,
    pub redis_orders: usize,
    pub redis_idle: Duration,
    pub list_orders: usize,
    pub list_requests: usize,
    pub fanout_clients: usize,
    pub fanout_rate: f64,
    pub fanout_time: Duration,
}

impl Sizes {
    pub fn full() -> Sizes {
        Sizes {
            smoke: false,
            warmup: Duration::from_secs(2),
            drain: Duration::from_secs(180),
            throughput_time: Duration::from_secs(10),
            throughput_lanes: 64,
            latency_rate: 2000.0,
            latency_time: Duration::from_secs(10),
            contested_products: 20,
            contested_stock: 100,
            contested_lanes: 64,
            redis_orders: 5000,
            redis_idle: Duration::from_secs(2),
            list_orders: 1_000_000,
            list_requests: 1000,
            fanout_clients: 10_000,
            fanout_rate: 2.0,
            fanout_time: Duration::from_secs(10),
        }
    }

    pub fn smoke() -> Sizes {
        Sizes {
            smoke: true,
            warmup: Duration::from_millis(300),
            drain: Duration::from_secs(30),
            throughput_time: Duration::from_secs(2),
            throughput_lanes: 64,
            latency_rate: 100.0,
            latency_time: Duration::from_secs(2),
            contested_products: 20,
            contested_stock: 5,
            contested_lanes: 64,
            redis_orders: 200,
            redis_idle: Duration::from_secs(1),
            list_orders: 10_000,
            list_requests: 30,
            fanout_clients: 100,
            fanout_rate: 5.0,
            fanout_time: Duration::from_secs(2),
        }
    }
}

/// What every scenario gets.
pub struct Ctx {
    pub target: Arc<Target>,
    pub redis: Option<RedisProbe>,
    pub observer: Observer,
    pub sizes: Sizes,
    pub namespace: String,
    /// The bench started this app and its Redis, which it throws away afterwards.
    pub private: bool,
    pub server_pid: Option<u32>,
    /// A second app, on `PARTITIONS=1`, for the steady scenario's comparison.
    pub one_partition: Option<Box<Ctx>>,
    /// More servers of the same app and Redis, for the servers scenario.
    pub extra_servers: Vec<Arc<Target>>,
    pub extra_server_pids: Vec<u32>,
}

/// Which way a figure should move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
    Neither,
}

/// One number of the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    /// `scenario.name`, stable across runs: what `--compare` matches on.
    pub key: String,
    pub scenario: String,
    pub label: String,
    /// `None`: not measurable here (n/a).
    pub value: Option<f64>,
    pub unit: String,
    pub better: Better,
}

/// What a scenario found.
pub struct Report {
    pub name: &'static str,
    pub figures: Vec<Figure>,
    pub details: BTreeMap<String, serde_json::Value>,
    pub failures: Vec<String>,
    /// Not failures, but reasons to distrust a figure.
    pub warnings: Vec<String>,
    pub histogram: Option<(String, Samples)>,
    /// Why it did not run (e.g. no Redis to read from).
    pub skipped: Option<String>,
}

impl Report {
    pub fn new(name: &'static str) -> Report {
        Report {
            name,
            figures: Vec::new(),
            details: BTreeMap::new(),
            failures: Vec::new(),
            warnings: Vec::new(),
            histogram: None,
            skipped: None,
        }
    }

    pub fn skipped(name: &'static str, why: &str) -> Report {
        Report { skipped: Some(why.to_string()), ..Report::new(name) }
    }

    pub fn figure(&mut self, key: &str, label: &str, value: Option<f64>, unit: &str, better: Better) {
        self.figures.push(Figure {
            key: format!("{}.{key}", self.name),
            scenario: self.name.to_string(),
            label: label.to_string(),
            value: value.filter(|v| v.is_finite()),
            unit: unit.to_string(),
            better,
        });
    }

    pub fn detail(&mut self, key: &str, value: impl Serialize) {
        self.details.insert(key.to_string(), serde_json::to_value(value).unwrap_or(serde_json::Value::Null));
    }

    /// CPU per process over a stretch, per order (µs), as figures and details.
    pub fn cpu_figures(&mut self, cpu: &CpuUse, orders: usize) {
        self.cpu_figures_per(cpu, orders, "order");
    }

    /// CPU per process over a stretch, per `unit` (µs), as figures and details.
    pub fn cpu_figures_per(&mut self, cpu: &CpuUse, count: usize, unit: &str) {
        for (process, seconds) in cpu.cpu_s.iter().filter(|(p, _)| !matches!(**p, "other" | "interrupts")) {
            let per = seconds.filter(|_| count > 0).map(|s| s * 1e6 / count as f64);
            self.figure(
                &format!("cpu_us_per_{unit}.{process}"),
                &format!("{process} CPU per {unit}"),
                per,
                "µs",
                Better::Lower,
            );
        }
        self.cpu_window(cpu);
    }

    /// Cores each process kept busy over a stretch (details), and a warning
    /// when something else on the machine did too.
    pub fn cpu_window(&mut self, cpu: &CpuUse) {
        let cores: BTreeMap<&str, Option<f64>> =
            cpu.cpu_s.iter().map(|(p, s)| (*p, s.map(|s| s / cpu.wall_s.max(1e-9)))).collect();
        // A stretch shorter than a second is too short to tell (the counters tick every 10 ms).
        let noisy = cores.get("other").copied().flatten().filter(|&c| c > NOISE_CORES && cpu.wall_s >= 1.0);
        if let Some(other) = noisy {
            self.warnings.push(format!(
                "{}: other processes kept {other:.2} cores busy meanwhile: its figures are noisy",
                self.name
            ));
        }
        self.detail("cpu_seconds", &cpu.cpu_s);
        self.detail("cores_busy", cores);
        self.detail("cpu_window_s", cpu.wall_s);
    }
}

/// A progress bar for one scenario (drawn only on a terminal).
pub fn bar(name: &str) -> ProgressBar {
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12.bold} [{elapsed_precise}] [{bar:30.cyan/blue}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// `count` products with `stock` units each, named after the scenario.
pub async fn products(ctx: &Ctx, scenario: &str, count: usize, stock: u32) -> Result<Vec<Product>> {
    let mut conn = Conn::open(&ctx.target).await?;
    let mut products = Vec::with_capacity(count);
    for i in 0..count {
        products.push(conn.create_product(&format!("bench {scenario} {i}"), "1.00", stock).await?);
    }
    Ok(products)
}

/// Milliseconds, for figures.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

//! The fault lab: runs Stockflow on a Redis Cluster in network namespaces,
//! drives it like real clients while a fault is made, and judges each run
//! by its history (see `checker`). `scripts/faults` runs the whole matrix;
//! `scripts/test` a short part of it.
//!
//! # Layout
//! - [`lab`]: the hosts (network namespaces on a bridge), cuts and splits,
//!   and the processes on them.
//! - [`deployment`]: the Redis Cluster, the servers and the workers in the lab.
//! - [`fault`]: the faults.
//! - [`workload`]: the clients and their history.
//! - [`checker`]: the verdict on a run.

mod checker;
mod deployment;
mod fault;
mod lab;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::checker::{Verdict, Window};
use crate::deployment::{Deployment, Settings};
use crate::fault::Fault;
use crate::workload::Load;

/// Runs Stockflow under network faults on a Redis Cluster in network
/// namespaces (as root), and checks every run's history.
#[derive(Parser)]
#[command(about)]
struct Args {
    /// Faults to make (default: all).
    #[arg(long, value_delimiter = ',')]
    faults: Option<Vec<Fault>>,
    /// REDIS_MIN_REPLICAS values to run each fault with.
    #[arg(long, value_delimiter = ',', default_value = "0,1")]
    replicas: Vec<u32>,
    /// Replicas of each of the 3 masters (1 or 2).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    replicas_per_master: u8,
    /// The short part for scripts/test: isolating a master and pausing one, with REDIS_MIN_REPLICAS=1.
    #[arg(long)]
    short: bool,
    /// Orders per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds of orders per run (the fault starts 4 s in).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Where the report goes.
    #[arg(long, default_value = "target/faults")]
    out: PathBuf,
    /// The checkout (binaries under target/release, the site under target/site).
    #[arg(long, default_value = ".")]
    root: PathBuf,
}

/// One run of the matrix.
#[derive(Debug, Serialize)]
struct Run {
    fault: &'static str,
    min_replicas: u32,
    replicas_per_master: usize,
    what: String,
    verdict: Option<Verdict>,
    error: Option<String>,
}

/// When the fault starts, after the load began.
const FAULT_AT: Duration = Duration::from_secs(4);
/// How long the shop has to finish every order once the load ended.
const DRAIN: Duration = Duration::from_secs(60);
/// How soon after the fault began orders of its partition must succeed
/// again, where the cluster lets them: the failover (the node timeout, an
/// election) plus the 5 s the README promises.
const RECOVERY: Duration = Duration::from_millis(deployment::NODE_TIMEOUT.as_millis() as u64 + 5_000);

/// Whether a partition takes orders again once its master failed over: the
/// promoted replica keeps one replica fewer than its master had.
fn writable_after_failover(settings: Settings) -> bool {
    settings.replicas_per_master > settings.min_replicas as usize
}

async fn run_one(
    root: &std::path::Path,
    out: &std::path::Path,
    fault: Fault,
    settings: Settings,
    load: Load,
) -> Result<(String, Verdict)> {
    let mut deployment = Deployment::start(root, settings).await?;
    let servers: Vec<String> = (1..=deployment::SERVERS).map(|n| deployment.server_url(n)).collect();
    let products = workload::create_products(&servers, &load).await?;
    let config = store::Config::for_cluster(&deployment.seeds());
    let shop = store::Shop::new(&config)?;
    let keys = shop.layout().keys_of_id(&products[0].id);
    let slot = testkit::key_slot(&keys.orders());
    let partition = keys.partition();

    let stop = CancellationToken::new();
    let (placed, all_placed) = tokio::sync::oneshot::channel();
    let running = tokio::spawn(workload::run(servers, products, load, stop.clone(), placed));
    tokio::time::sleep(FAULT_AT).await;
    let start_ms = workload::now_ms();
    let what = fault.make(&mut deployment, slot).await;
    let window = Window { start_ms, end_ms: workload::now_ms() };
    let what = what?;
    let _ = all_placed.await;
    // Let the shop finish: every order final, or the drain's end.
    let deadline = tokio::time::Instant::now() + DRAIN;
    while tokio::time::Instant::now() < deadline {
        let open = shop
            .status_counts()
            .await
            .map(|counts| counts.iter().filter(|(status, _)| !status.is_terminal()).map(|(_, n)| n).sum::<u64>());
        if open.is_ok_and(|open| open == 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The browsers catch the last changes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    let history = running.await??;
    let verdict = checker::check(&history, &shop, window, fault.aims_at_partition().then_some(partition)).await?;
    // The history and every process's log, to look into.
    let kept = out.join("runs").join(format!(
        "{}-min{}-of{}",
        fault.name(),
        settings.min_replicas,
        settings.replicas_per_master
    ));
    std::fs::create_dir_all(&kept)?;
    std::fs::write(kept.join("history.json"), serde_json::to_vec(&history)?)?;
    std::fs::write(kept.join("verdict.json"), serde_json::to_vec_pretty(&verdict)?)?;
    deployment.stop().await;
    for entry in walk(&deployment.dir()) {
        if entry.extension().is_some_and(|e| e == "log") {
            let name = entry.strip_prefix(deployment.dir()).unwrap_or(&entry).to_string_lossy().replace('/', "-");
            std::fs::copy(&entry, kept.join(name)).ok();
        }
    }
    Ok((what, verdict))
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn table(runs: &[Run]) -> String {
    let mut md = String::from(
        "| fault | REDIS_MIN_REPLICAS | replicas per master | acknowledged / sent | lost | duplicated | 503 then saved | not final | final twice | stock | coverable refunds | stalled | browsers: missed / twice / out of order / final twice (reloads) | client errors during the fault | first success after the fault | POST → final p99 during the fault / all |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|\n",
    );
    for run in runs {
        match (&run.verdict, &run.error) {
            (Some(v), _) => {
                let errors: Vec<String> = v.errors_during_fault.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
                let ms = |value: Option<u64>| value.map_or("–".to_string(), |ms| format!("{ms} ms"));
                md.push_str(&format!(
                    "| {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} / {} ({}) | {} | {} | {} / {} |\n",
                    run.fault,
                    run.min_replicas,
                    run.replicas_per_master,
                    v.acknowledged,
                    v.orders_sent,
                    v.lost.len(),
                    v.duplicates.len(),
                    v.saved_after_not_saved.len(),
                    v.not_final.len(),
                    v.final_twice.len(),
                    v.stock.len(),
                    v.coverable_refunds.len(),
                    v.stalled.len(),
                    v.browsers_missed,
                    v.browsers_twice,
                    v.browsers_out_of_order,
                    v.browsers_final_twice,
                    v.browsers_reloads,
                    if errors.is_empty() { "none".to_string() } else { errors.join(", ") },
                    ms(v.first_success_after_fault_ms),
                    ms(v.fault_final_p99_ms),
                    ms(v.final_p99_ms),
                ));
            }
            (None, error) => md.push_str(&format!(
                "| {} | {} | {} | run failed: {} ||||||||||||||\n",
                run.fault,
                run.min_replicas,
                run.replicas_per_master,
                error.as_deref().unwrap_or("?").replace('|', "/").replace('\n', " ")
            )),
        }
    }
    md
}

async fn matrix(args: Args) -> Result<bool> {
    let (faults, replicas) = if args.short {
        (vec![Fault::IsolateMaster, Fault::PauseMaster], vec![1])
    } else {
        (args.faults.clone().unwrap_or_else(|| Fault::ALL.to_vec()), args.replicas.clone())
    };
    let seconds = if args.short { args.seconds.min(12) } else { args.seconds };
    let load = Load { rate: args.rate, duration: Duration::from_secs(seconds), products: 20, stock: 60, browsers: 4 };
    let mut runs = Vec::new();
    for fault in faults {
        for &min_replicas in &replicas {
            let replicas_per_master = usize::from(args.replicas_per_master);
            eprintln!(
                "==> {} with REDIS_MIN_REPLICAS={min_replicas}, {replicas_per_master} replica(s) per master",
                fault.name()
            );
            let settings = Settings { min_replicas, replicas_per_master };
            let outcome = run_one(&args.root, &args.out, fault, settings, load).await;
            let run = match outcome {
                Ok((what, verdict)) => {
                    eprintln!(
                        "    {what}: {} of {} acknowledged, {} violations",
                        verdict.acknowledged,
                        verdict.orders_sent,
                        verdict.violations()
                    );
                    Run {
                        fault: fault.name(),
                        min_replicas,
                        replicas_per_master,
                        what,
                        verdict: Some(verdict),
                        error: None,
                    }
                }
                Err(error) => {
                    eprintln!("    run failed: {error:#}");
                    Run {
                        fault: fault.name(),
                        min_replicas,
                        replicas_per_master,
                        what: String::new(),
                        verdict: None,
                        error: Some(format!("{error:#}")),
                    }
                }
            };
            runs.push(run);
        }
    }
    let md = table(&runs);
    println!("{md}");
    std::fs::create_dir_all(&args.out)?;
    let stamp = store::now_ms();
    std::fs::write(args.out.join(format!("{stamp}.md")), &md)?;
    std::fs::write(args.out.join(format!("{stamp}.json")), serde_json::to_vec_pretty(&runs)?)?;
    std::fs::write(args.out.join("latest.md"), &md)?;
    std::fs::write(args.out.join("latest.json"), serde_json::to_vec_pretty(&runs)?)?;
    // The goal: every run ran, no broken promise with REDIS_MIN_REPLICAS=1,
    // and orders flowed again soon wherever the cluster lets them.
    let mut good = true;
    for run in &runs {
        let settings = Settings { min_replicas: run.min_replicas, replicas_per_master: run.replicas_per_master };
        match &run.verdict {
            None => good = false,
            Some(verdict) if run.min_replicas >= 1 && verdict.broken_promises() > 0 => {
                eprintln!("{} with REDIS_MIN_REPLICAS={}: {verdict:#?}", run.fault, run.min_replicas);
                good = false;
            }
            Some(verdict)
                if writable_after_failover(settings)
                    && verdict.first_success_after_fault_ms.is_some_and(|ms| ms > RECOVERY.as_millis() as u64) =>
            {
                eprintln!(
                    "{} with {settings:?}: the first order went through {:?} ms after the fault, past {RECOVERY:?}",
                    run.fault, verdict.first_success_after_fault_ms
                );
                good = false;
            }
            Some(_) => {}
        }
    }
    Ok(good)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    // Ctrl-C: the lab's hosts and processes go with it (dropped on the way out).
    let outcome = tokio::select! {
        outcome = matrix(args) => outcome,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted");
            lab::remove_leftovers();
            return ExitCode::from(130);
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("faults: {error:#}");
            lab::remove_leftovers();
            ExitCode::FAILURE
        }
    }
}

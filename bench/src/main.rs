//! `bench`: Stockflow's load generator. `scripts/bench` builds it, starts a
//! private app (or takes `--url` of a running one) and runs it; it runs the
//! fixed set of scenarios against that app and writes the report under
//! `target/bench/`. README.md ("Benchmark") says what each scenario measures.
//!
//! It targets the loopback only, and runs on the same machine as what it
//! measures, so it is built to be cheap: a hyper connection per lane, raw
//! sockets for the live-feed clients, two runtime threads.

mod feed;
mod http;
mod load;
mod observe;
mod report;
mod scenarios;
mod seed;
mod sse;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use redis::AsyncCommands;

use crate::feed::Feed;
use crate::http::{Conn, Placed, Target};
use crate::observe::{Observer, RedisProbe};
use crate::report::{RunResult, ScenarioResult};
use crate::scenarios::{Ctx, Report, Sizes, ALL};

const USAGE: &str = "\
usage: bench --url http://127.0.0.1:PORT [options]
       bench compare OLD.json NEW.json
       bench seed --url URL --redis-url URL [--products N] [--orders N] [--namespace NS]

Runs the benchmark scenarios against a running Stockflow (scripts/bench starts
one and calls this; see README.md, \"Benchmark\").

options:
  --url URL            the app (loopback only)
  --redis-url URL      its Redis (loopback only), for the Redis cost and lists scenarios
  --smoke              small sizes: seconds, not minutes (what scripts/test runs)
  --only a,b           only these scenarios: throughput, latency, steady, servers, hostile, contested, redis, fanout, lists
  --out DIR            where the report goes (default target/bench)
  --compare OLD.json   after the run, print the change of every figure since OLD.json
  --namespace NS       the app's REDIS_NAMESPACE (default stockflow)
  --server-pid PID     the server's pid, for its CPU and memory
  --workers-pid PID    the workers' pid, for their CPU
  --private            the app and its Redis are the bench's own, thrown away afterwards
  --note KEY=VALUE     a line for the report's target description (repeatable)
  --one-partition-url URL, --one-partition-redis-url URL,
  --one-partition-server-pid PID, --one-partition-workers-pid PID
                       a second app on PARTITIONS=1, which the steady scenario measures too
  --extra-server-url URL, --extra-server-pid PID
                       another server of the same app and Redis (repeatable), for the servers scenario
  --command TEXT       the command line to record (default: this one)
`bench seed` loads a shop into a private app: N products (default 1000) made
in bulk through the product script, and N orders (default 1000000) written
straight into its Redis, as the lists scenario writes its own (scripts/ui-speed
measures the page on it). The app must answer at --url; the ADMIN_TOKEN
environment variable, when set, is sent as the bearer token.";

struct Args {
    url: String,
    redis_url: Option<String>,
    smoke: bool,
    only: Option<Vec<String>>,
    out: PathBuf,
    compare: Option<PathBuf>,
    namespace: String,
    server_pid: Option<u32>,
    workers_pid: Option<u32>,
    private: bool,
    notes: Vec<(String, String)>,
    command: String,
    one_partition: SecondApp,
    /// More servers of the same app (`--extra-server-url`, `--extra-server-pid`).
    extra_server_urls: Vec<String>,
    extra_server_pids: Vec<u32>,
}

/// The second app of the steady scenario, on `PARTITIONS=1`.
#[derive(Default)]
struct SecondApp {
    url: Option<String>,
    redis_url: Option<String>,
    server_pid: Option<u32>,
    workers_pid: Option<u32>,
}

enum Command {
    Run(Box<Args>),
    Compare(PathBuf, PathBuf),
    Seed(seed::SeedArgs),
    Help,
}

fn parse_seed_args(mut argv: impl Iterator<Item = String>) -> Result<Command> {
    let mut args = seed::SeedArgs {
        url: String::new(),
        redis_url: String::new(),
        namespace: store::keys::DEFAULT_NAMESPACE.to_string(),
        products: 1000,
        orders: 1_000_000,
    };
    while let Some(arg) = argv.next() {
        let mut value = || argv.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => args.url = value()?,
            "--redis-url" => args.redis_url = value()?,
            "--namespace" => args.namespace = value()?,
            "--products" => args.products = value()?.parse().context("--products")?,
            "--orders" => args.orders = value()?.parse().context("--orders")?,
            other => bail!("seed: unknown argument {other:?}"),
        }
    }
    if args.url.is_empty() || args.redis_url.is_empty() {
        bail!("seed: --url and --redis-url are required");
    }
    Ok(Command::Seed(args))
}

fn parse_args(raw: Vec<String>) -> Result<Command> {
    let mut argv = raw.iter().cloned();
    let mut args = Args {
        url: String::new(),
        redis_url: None,
        smoke: false,
        only: None,
        out: PathBuf::from("target/bench"),
        compare: None,
        namespace: store::keys::DEFAULT_NAMESPACE.to_string(),
        server_pid: None,
        workers_pid: None,
        private: false,
        notes: Vec::new(),
        command: String::new(),
        one_partition: SecondApp::default(),
        extra_server_urls: Vec::new(),
        extra_server_pids: Vec::new(),
    };
    let mut first = true;
    while let Some(arg) = argv.next() {
        let mut value = || argv.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "compare" if first => {
                let (old, new) = (value()?, value()?);
                return Ok(Command::Compare(old.into(), new.into()));
            }
            "seed" if first => return parse_seed_args(argv),
            "-h" | "--help" => return Ok(Command::Help),
            "--url" => args.url = value()?,
            "--redis-url" => args.redis_url = Some(value()?),
            "--smoke" => args.smoke = true,
            "--only" => {
                let only: Vec<String> = value()?.split(',').map(|s| s.trim().to_string()).collect();
                if let Some(bad) = only.iter().find(|s| !ALL.contains(&s.as_str())) {
                    bail!("--only: no scenario {bad:?} (there are {})", ALL.join(", "));
                }
                args.only = Some(only);
            }
            "--out" => args.out = value()?.into(),
            "--compare" => args.compare = Some(value()?.into()),
            "--namespace" => args.namespace = value()?,
            "--server-pid" => args.server_pid = Some(value()?.parse().context("--server-pid")?),
            "--workers-pid" => args.workers_pid = Some(value()?.parse().context("--workers-pid")?),
            "--private" => args.private = true,
            "--note" => {
                let note = value()?;
                let (key, text) = note.split_once('=').context("--note takes KEY=VALUE")?;
                args.notes.push((key.to_string(), text.to_string()));
            }
            "--command" => args.command = value()?,
            "--one-partition-url" => args.one_partition.url = Some(value()?),
            "--one-partition-redis-url" => args.one_partition.redis_url = Some(value()?),
            "--one-partition-server-pid" => {
                args.one_partition.server_pid = Some(value()?.parse().context("--one-partition-server-pid")?)
            }
            "--one-partition-workers-pid" => {
                args.one_partition.workers_pid = Some(value()?.parse().context("--one-partition-workers-pid")?)
            }
            "--extra-server-url" => args.extra_server_urls.push(value()?),
            "--extra-server-pid" => args.extra_server_pids.push(value()?.parse().context("--extra-server-pid")?),
            other => bail!("unknown argument {other:?}"),
        }
        first = false;
    }
    if args.url.is_empty() {
        bail!("--url is required");
    }
    if args.command.is_empty() {
        args.command = std::iter::once("bench".to_string()).chain(raw).collect::<Vec<_>>().join(" ");
    }
    Ok(Command::Run(Box::new(args)))
}

fn main() -> ExitCode {
    let command = match parse_args(std::env::args().skip(1).collect()) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("bench: {error:#}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Compare(old, new) => match (report::load(&old), report::load(&new)) {
            (Ok(a), Ok(b)) => {
                print!("{}", report::compare(&a, &b, &old.display().to_string()));
                ExitCode::SUCCESS
            }
            (Err(error), _) | (_, Err(error)) => {
                eprintln!("bench: {error:#}");
                ExitCode::from(2)
            }
        },
        Command::Seed(args) => {
            let Some(runtime) = runtime() else { return ExitCode::from(2) };
            match runtime.block_on(seed::seed(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("bench seed: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run(args) => {
            let Some(runtime) = runtime() else { return ExitCode::from(2) };
            match runtime.block_on(run(*args)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(error) => {
                    eprintln!("bench: {error:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// Two threads: the machine it shares with the app has few cores to spare.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            eprintln!("bench: {error}");
            None
        }
    }
}

async fn run(args: Args) -> Result<bool> {
    let started = Instant::now();
    let (started_at, stamp) = report::timestamps();
    let admin_token = std::env::var("ADMIN_TOKEN").ok().filter(|t| !t.is_empty());
    let target = Arc::new(Target::resolve(&args.url, admin_token.as_deref()).await?);
    let ready = Conn::open(&target).await?.request(hyper::Method::GET, "/readyz", None).await?;
    ensure!(ready.status == hyper::StatusCode::OK, "{}/readyz answered {}", target.url, ready.status);
    let redis = match &args.redis_url {
        Some(url) => {
            ensure_loopback_redis(url).await?;
            Some(RedisProbe::connect(url).await?)
        }
        None => None,
    };
    let sizes = if args.smoke { Sizes::smoke() } else { Sizes::full() };
    let one_partition = match (&args.one_partition.url, &args.one_partition.redis_url) {
        (Some(url), Some(redis_url)) => {
            ensure_loopback_redis(redis_url).await?;
            let redis = Some(RedisProbe::connect(redis_url).await?);
            let second = &args.one_partition;
            Some(Box::new(Ctx {
                target: Arc::new(Target::resolve(url, admin_token.as_deref()).await?),
                observer: Observer {
                    server_pid: second.server_pid,
                    workers_pid: second.workers_pid,
                    redis: redis.clone(),
                },
                redis,
                sizes: sizes.clone(),
                namespace: args.namespace.clone(),
                private: args.private,
                server_pid: second.server_pid,
                one_partition: None,
                extra_servers: Vec::new(),
                extra_server_pids: Vec::new(),
            }))
        }
        (None, None) => None,
        _ => bail!("--one-partition-url and --one-partition-redis-url go together"),
    };
    let mut extra_servers = Vec::new();
    for url in &args.extra_server_urls {
        extra_servers.push(Arc::new(Target::resolve(url, admin_token.as_deref()).await?));
    }
    let ctx = Ctx {
        target: target.clone(),
        redis: redis.clone(),
        observer: Observer { server_pid: args.server_pid, workers_pid: args.workers_pid, redis: redis.clone() },
        sizes,
        namespace: args.namespace.clone(),
        private: args.private,
        server_pid: args.server_pid,
        one_partition,
        extra_servers,
        extra_server_pids: args.extra_server_pids.clone(),
    };

    let mut feed = Feed::connect(&target).await?;
    probe(&ctx, &mut feed).await.context("a first order through the whole pipeline")?;

    let mut reports: Vec<Report> = Vec::new();
    for name in ALL {
        if args.only.as_ref().is_some_and(|only| !only.iter().any(|o| o == name)) {
            continue;
        }
        let scenario_started = Instant::now();
        let outcome = match name {
            "throughput" => scenarios::throughput::run(&ctx, &mut feed).await,
            "latency" => scenarios::latency::run(&ctx, &mut feed).await,
            "steady" => {
                // No browser follows the feed while steady measures: an unwatched
                // server's feed reads nothing, and that is the cost it reports.
                drop(feed);
                let outcome = scenarios::steady::run(&ctx).await;
                feed = Feed::connect(&target).await?;
                outcome
            }
            "servers" => {
                // Only the scenario's own feed clients watch the servers while it measures.
                drop(feed);
                let outcome = scenarios::servers::run(&ctx).await;
                feed = Feed::connect(&target).await?;
                outcome
            }
            "hostile" => scenarios::hostile::run(&ctx, &mut feed).await,
            "contested" => scenarios::contested::run(&ctx, &mut feed).await,
            "redis" => scenarios::redis_cost::run(&ctx, &mut feed).await,
            "fanout" => scenarios::fanout::run(&ctx, &mut feed).await,
            "lists" => scenarios::lists::run(&ctx, &mut feed).await,
            other => unreachable!("scenario {other}"),
        };
        let report = match outcome {
            Ok(report) => report,
            Err(error) => {
                let mut report = Report::new(name);
                report.failures.push(format!("{name}: {error:#}"));
                // Whatever broke, the next scenario starts with a fresh subscription.
                feed = Feed::connect(&target).await?;
                report
            }
        };
        println!("{}", summary_line(&report, scenario_started.elapsed()));
        for failure in &report.failures {
            println!("    FAILED {failure}");
        }
        for warning in &report.warnings {
            println!("    warning: {warning}");
        }
        reports.push(report);
        // Let the app fall idle before the next scenario.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let mut machine = machine();
    if let Some(redis) = &redis {
        if let Some(version) = redis.version().await {
            machine.insert("redis".into(), version);
        }
    }
    let mut target_info: BTreeMap<String, String> = BTreeMap::new();
    target_info.insert("url".into(), target.url.clone());
    if let Some(url) = &args.redis_url {
        target_info.insert("redis".into(), redact(url));
    }
    if let Some(redis) = &redis {
        let partitions: Option<String> =
            redis.connection().get(format!("{}:partitions", args.namespace)).await.unwrap_or(None);
        if let Some(partitions) = partitions {
            target_info.insert("partitions".into(), partitions);
        }
    }
    target_info.extend(args.notes.iter().cloned());

    let mut histogram = None;
    let mut figures = Vec::new();
    let mut results = BTreeMap::new();
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    for report in reports {
        figures.extend(report.figures);
        failures.extend(report.failures.iter().cloned());
        warnings.extend(report.warnings);
        if report.histogram.is_some() {
            histogram = report.histogram;
        }
        results.insert(
            report.name.to_string(),
            ScenarioResult { skipped: report.skipped, failures: report.failures, details: report.details },
        );
    }
    let result = RunResult {
        schema: 1,
        started_at,
        command: args.command.clone(),
        mode: if args.smoke { "smoke" } else { "full" }.to_string(),
        duration_s: started.elapsed().as_secs_f64(),
        target: target_info,
        machine,
        sizes: serde_json::to_value(&ctx.sizes)?,
        figures,
        scenarios: results,
        failures: failures.clone(),
        warnings: warnings.clone(),
    };
    let comparison = match &args.compare {
        Some(path) => Some(report::compare(&report::load(path)?, &result, &path.display().to_string())),
        None => None,
    };
    let written = report::write(&args.out, &stamp, &result, histogram.as_mut(), comparison.as_deref())?;

    println!("\n{}:\n{}", result.command, report::text_table(&result));
    if let Some(comparison) = &comparison {
        println!("{comparison}");
    }
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    println!("wrote {}", names.join(", "));
    for warning in &warnings {
        println!("warning: {warning}");
    }
    let skipped: Vec<&str> =
        result.scenarios.iter().filter(|(_, s)| s.skipped.is_some()).map(|(name, _)| name.as_str()).collect();
    if failures.is_empty() && skipped.is_empty() {
        println!("every scenario ran and every invariant held ({:.0} s)", result.duration_s);
    } else if failures.is_empty() {
        println!("every invariant held; skipped: {} ({:.0} s)", skipped.join(", "), result.duration_s);
    } else {
        println!("{} FAILURE(S):", failures.len());
        for failure in &failures {
            println!("  - {failure}");
        }
    }
    Ok(failures.is_empty())
}

/// One order through the whole pipeline before anything is measured: the
/// app works, the workers run, and the bench's live feed is subscribed.
async fn probe(ctx: &Ctx, feed: &mut Feed) -> Result<()> {
    let product = scenarios::products(ctx, "probe", 1, 1000).await?.remove(0);
    let mut conn = Conn::open(&ctx.target).await?;
    match conn.place_order(&product.id, 1).await? {
        Placed::Accepted(order) => feed.wait_terminal(order, Duration::from_secs(30)).await.map(|_| ()),
        Placed::Refused(why) => bail!(why),
    }
}

fn summary_line(report: &Report, took: Duration) -> String {
    if let Some(why) = &report.skipped {
        return format!("{:<11} skipped: {why}", report.name);
    }
    let figures: Vec<String> = report
        .figures
        .iter()
        .filter(|f| !f.key.contains(".calls_per_order.") && !f.key.contains(".cpu_us_per_"))
        .map(|f| format!("{} {}", f.label, report::value_text(f)))
        .collect();
    format!("{:<11} {} ({:.0} s)", report.name, figures.join(" · "), took.as_secs_f64())
}

async fn ensure_loopback_redis(url: &str) -> Result<()> {
    if url.starts_with("redis+unix:") || url.starts_with("unix:") {
        return Ok(());
    }
    let uri: hyper::Uri = url.parse().with_context(|| format!("--redis-url {}", redact(url)))?;
    let authority = uri.authority().with_context(|| format!("--redis-url {} has no host", redact(url)))?;
    let host = authority.host().trim_matches(['[', ']']);
    let loopback = tokio::net::lookup_host((host, authority.port_u16().unwrap_or(6379)))
        .await
        .with_context(|| format!("resolving {host}"))?
        .any(|addr| addr.ip().is_loopback());
    ensure!(loopback, "--redis-url {}: the bench only targets the loopback", redact(url));
    Ok(())
}

/// A URL without its password.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://…@{host}"),
        _ => url.to_string(),
    }
}

/// What the numbers were measured on.
fn machine() -> BTreeMap<String, String> {
    let mut machine = BTreeMap::new();
    if let Ok(cpus) = std::thread::available_parallelism() {
        machine.insert("cpus".into(), cpus.to_string());
    }
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    if let Some(model) = read("/proc/cpuinfo").lines().find_map(|l| l.strip_prefix("model name")) {
        machine.insert("cpu".into(), model.trim_start_matches([' ', '\t', ':']).trim().to_string());
    }
    if let Some(kib) = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    {
        machine.insert("memory".into(), format!("{:.0} GiB", kib as f64 / 1024.0 / 1024.0));
    }
    let kernel = read("/proc/sys/kernel/osrelease");
    if !kernel.trim().is_empty() {
        machine.insert("kernel".into(), format!("Linux {}", kernel.trim()));
    }
    machine
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command> {
        parse_args(line.split_whitespace().map(String::from).collect())
    }

    #[test]
    fn arguments() {
        let Command::Run(args) = parse("--url http://127.0.0.1:3000 --smoke --only lists,redis").unwrap() else {
            panic!("a run")
        };
        assert!(args.smoke);
        assert_eq!(args.only.unwrap(), ["lists", "redis"]);
        assert_eq!(args.command, "bench --url http://127.0.0.1:3000 --smoke --only lists,redis");
        assert!(matches!(parse("compare a.json b.json").unwrap(), Command::Compare(..)));
        assert!(parse("--smoke").is_err(), "--url is required");
        assert!(parse("--url x --only nope").is_err());
        assert!(parse("--url x --bogus").is_err());
        assert_eq!(redact("redis://:secret@127.0.0.1:6379"), "redis://…@127.0.0.1:6379");
    }
}

//! The workers binary: runs the consumer loops until SIGTERM or ctrl-c.
//!
//! `workers [--only payment,warehouse,refunds] [--partitions 0-7]`, or
//! `workers migrate` to move a Redis of the layout before partitions into
//! the partitioned one (once, before starting the new version); configuration
//! from the environment (see the README).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use store::Partition;
use tokio_util::sync::CancellationToken;
use workers::Role;

/// mimalloc rather than glibc's malloc, which took a fifth of the server's
/// CPU under load (perf, throughput scenario of scripts/bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Stockflow's workers: the consumer loops that move orders through their
/// life (payment, warehouse, refunds), on every partition or a subset.
///
/// Every setting is also an environment variable (shown in brackets).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Consumer loops to run.
    #[arg(long, value_delimiter = ',', default_value = "payment,warehouse,refunds", help_heading = "Workers")]
    only: Vec<Role>,
    /// Partitions to consume, like 0-7, 3 or 0-3,8-11 [default: all].
    #[arg(long, help_heading = "Workers")]
    partitions: Option<String>,
    #[command(flatten)]
    own: workers::settings::WorkersSettings,
    #[command(flatten)]
    consumers: store::config::ConsumerSettings,
    #[command(flatten)]
    settings: store::config::Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Moves the data of a Redis written by a version before partitions into the partitioned
    /// layout, once, then exits. Safe to run again, and after a crash at any moment.
    Migrate,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = store::telemetry::init(cli.settings.log_format, "workers=info,store=info", "stockflow-workers");
    let code = run(cli).await;
    // Exports the last spans; it waits for the exporter's thread, so off the runtime's.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    code
}

async fn run(cli: Cli) -> ExitCode {
    let config = match cli.settings.check().and_then(|config| cli.consumers.apply(config)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("workers: {message}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Migrate) = cli.command {
        return migrate(&config).await;
    }
    let partitions: Vec<Partition> = match &cli.partitions {
        None => config.layout.partitions().all().collect(),
        Some(spec) => match config.layout.partitions().subset(spec) {
            Ok(partitions) => partitions,
            Err(error) => {
                eprintln!("workers: {error}");
                return ExitCode::from(2);
            }
        },
    };
    if let Some(addr) = cli.own.metrics_addr {
        if let Err(error) = workers::metrics::serve(addr) {
            eprintln!("workers: cannot serve metrics at {addr} (WORKERS_METRICS_ADDR): {error}");
            return ExitCode::from(2);
        }
    }
    if let Err(error) = store::deployment::prepare(&config, false).await {
        eprintln!("workers: {error}");
        return ExitCode::FAILURE;
    }
    tracing::info!(
        redis = %config.redis,
        namespace = config.layout.namespace(),
        partitions = partitions.len(),
        of = config.layout.partitions().count(),
        consumer = %config.consumer_name,
        roles = ?cli.only,
        "workers starting"
    );

    let shutdown = CancellationToken::new();
    tokio::spawn(store::shutdown::cancel_on_signal(shutdown.clone()));
    match workers::run_partitions(config, &cli.only, &partitions, shutdown).await {
        Ok(()) => {
            tracing::info!("workers stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "workers failed");
            ExitCode::FAILURE
        }
    }
}

/// `workers migrate`: moves the layout before partitions into this one.
async fn migrate(config: &store::Config) -> ExitCode {
    let conn = match store::deployment::prepare(config, true).await {
        Ok(conn) => conn,
        Err(error) => {
            eprintln!("workers migrate: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(redis = %config.redis, namespace = config.layout.namespace(), partitions = config.layout.partitions().count(), "migrating");
    match store::migrate::migrate(&conn, &config.layout).await {
        Ok(report) => {
            println!(
                "migrated into {} partitions (namespace {:?}): {} products, {} orders ({} listed in {}), \
                 {} unfinished stream entries and dead letters, {} idempotency keys, {} admin sessions; {} old keys removed",
                config.layout.partitions().count(),
                config.layout.namespace(),
                report.products,
                report.orders,
                report.relocated_orders,
                config.layout.legacy_orders(),
                report.entries,
                report.idempotency_keys,
                report.admin_sessions,
                report.removed_keys,
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("workers migrate: {error}; nothing is lost: run it again");
            ExitCode::FAILURE
        }
    }
}

//! The workers binary: runs the consumer loops until SIGTERM or ctrl-c.
//!
//! `workers [--only payment,warehouse,refunds] [--partitions 0-7]`, or
//! `workers migrate` to move a Redis of the layout before partitions into
//! the partitioned one (once, before starting the new version); configuration
//! from the environment (see the README).

use std::process::ExitCode;

use store::Partition;
use tokio_util::sync::CancellationToken;
use workers::Role;

const USAGE: &str = "usage: workers [--only payment,warehouse,refunds] [--partitions 0-7]\n       workers migrate";

/// What the command line asked for.
struct Args {
    /// `workers migrate`: move old data, then exit.
    migrate: bool,
    roles: Vec<Role>,
    /// `None`: every partition.
    partitions: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "workers=info,store=info".into()),
        )
        .init();

    let args = match parse_args(std::env::args().skip(1).collect()) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("workers: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match store::Config::from_env() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("workers: {message}");
            return ExitCode::from(2);
        }
    };
    if args.migrate {
        return migrate(&config).await;
    }
    let partitions: Vec<Partition> = match &args.partitions {
        None => config.layout.partitions().all().collect(),
        Some(spec) => match config.layout.partitions().subset(spec) {
            Ok(partitions) => partitions,
            Err(error) => {
                eprintln!("workers: {error}\n{USAGE}");
                return ExitCode::from(2);
            }
        },
    };
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
        roles = ?args.roles,
        "workers starting"
    );

    let shutdown = CancellationToken::new();
    tokio::spawn(store::shutdown::cancel_on_signal(shutdown.clone()));
    match workers::run_partitions(config, &args.roles, &partitions, shutdown).await {
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

fn parse_args(args: Vec<String>) -> Result<Args, String> {
    let mut parsed = Args { migrate: false, roles: Role::ALL.to_vec(), partitions: None };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "migrate" if parsed.roles.len() == Role::ALL.len() && parsed.partitions.is_none() => parsed.migrate = true,
            "--only" => parsed.roles = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--partitions" => parsed.partitions = Some(value()?),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    Ok(parsed)
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

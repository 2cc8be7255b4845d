//! The workers binary: runs the consumer loops until SIGTERM or ctrl-c.
//!
//! `workers [--only payment,warehouse,refunds]`; configuration from the
//! environment (see the README).

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;
use workers::Role;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "workers=info,store=info".into()),
        )
        .init();

    let roles = match roles_from_args() {
        Ok(roles) => roles,
        Err(message) => {
            eprintln!("workers: {message}\nusage: workers [--only payment,warehouse,refunds]");
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
    tracing::info!(redis = %config.redis_url, consumer = %config.consumer_name, ?roles, "workers starting");

    let shutdown = CancellationToken::new();
    tokio::spawn(store::shutdown::cancel_on_signal(shutdown.clone()));
    match workers::run(config, &roles, shutdown).await {
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

fn roles_from_args() -> Result<Vec<Role>, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(Role::ALL.to_vec()),
        [flag, list] if flag == "--only" => list.split(',').map(str::parse).collect(),
        [flag] if flag.starts_with("--only=") => flag["--only=".len()..].split(',').map(str::parse).collect(),
        _ => Err(format!("unexpected arguments {args:?}")),
    }
}

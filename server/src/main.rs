//! The server binary: reads configuration, serves until SIGTERM or ctrl-c.

use std::process::ExitCode;

use clap::Parser;
use leptos::prelude::get_configuration;
use tokio_util::sync::CancellationToken;

/// mimalloc rather than glibc's malloc, which took a fifth of the server's
/// CPU under load (perf, throughput scenario of scripts/bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Stockflow's web server: the shop's pages, the REST API and the live feed.
///
/// Every setting is also an environment variable (shown in brackets).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    settings: store::config::Settings,
    #[command(flatten)]
    shop: store::config::ShopSettings,
    #[command(flatten)]
    server: server::config::ServerSettings,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry =
        store::telemetry::init(cli.settings.log_format, "server=info,store=info,tower_http=warn", "stockflow-server");
    let code = run(cli).await;
    // Exports the last spans; it waits for the exporter's thread, so off the runtime's.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    code
}

async fn run(cli: Cli) -> ExitCode {
    let config = match cli.settings.check().and_then(|config| cli.shop.apply(config)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("server: {message}");
            return ExitCode::from(2);
        }
    };
    let server_config = match cli.server.check(config.admin_token.is_some()) {
        Ok(server_config) => server_config,
        Err(message) => {
            eprintln!("server: {message}");
            return ExitCode::from(2);
        }
    };
    let mut leptos_options = match get_configuration(None) {
        Ok(conf) => conf.leptos_options,
        Err(error) => {
            eprintln!("server: leptos configuration: {error}");
            return ExitCode::from(2);
        }
    };
    leptos_options.site_addr = server_config.site_addr;
    // cargo-leptos tells the server it runs whether the files are hashed; a
    // server started otherwise finds out from the build's list of hashes.
    if std::env::var_os("LEPTOS_HASH_FILES").is_none() {
        leptos_options.hash_files = server::assets::built_with_hashes(&leptos_options);
    }
    let addr = leptos_options.site_addr;
    let conn = match store::deployment::prepare(&config, false).await {
        Ok(conn) => conn,
        Err(error) => {
            eprintln!("server: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = store::indexes::build_missing(&conn, &config.layout).await {
        eprintln!("server: building the search indexes in Redis ({}) failed: {error}", config.redis);
        return ExitCode::FAILURE;
    }
    let shutdown = CancellationToken::new();
    let state = match server::state(&config, &server_config, leptos_options, shutdown.clone()) {
        Ok(state) => state,
        Err(server::StartError::Store(error)) => {
            eprintln!("server: Redis ({}): {error}", config.redis);
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("server: {error}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("server: cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(metrics_addr) = server_config.metrics_addr {
        match tokio::net::TcpListener::bind(metrics_addr).await {
            Ok(listener) => {
                tracing::info!("metrics on http://{metrics_addr}/metrics");
                let metrics = server::metrics_app(state.clone());
                tokio::spawn(server::serve::serve(listener, metrics, server_config.connections, shutdown.clone()));
            }
            Err(error) => {
                eprintln!("server: cannot listen on METRICS_ADDR {metrics_addr}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    if config.admin_token.is_none() {
        tracing::warn!("ADMIN_TOKEN is unset: anyone who reaches this server can change the warehouse");
    }
    if server_config.public_origins.is_empty() && !addr.ip().is_loopback() {
        tracing::warn!("PUBLIC_ORIGIN is unset: requests for any host name are answered (see README, Security)");
    }
    tracing::info!(
        redis = %config.redis,
        namespace = config.layout.namespace(),
        partitions = config.layout.partitions().count(),
        "listening on http://{addr}"
    );
    tokio::spawn(store::shutdown::cancel_on_signal(shutdown.clone()));
    server::serve::serve(listener, server::app(state), server_config.connections, shutdown.clone()).await;
    shutdown.cancel();
    ExitCode::SUCCESS
}

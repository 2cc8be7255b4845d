//! The server binary: reads configuration, serves until SIGTERM or ctrl-c.

use std::process::ExitCode;

use axum::serve::ListenerExt;
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
    /// Address the web server listens on.
    #[arg(long, env = "LEPTOS_SITE_ADDR", default_value = "127.0.0.1:3000", help_heading = "Server")]
    site_addr: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "server=info,store=info,tower_http=warn".into()),
        )
        .init();

    let cli = Cli::parse();
    let config = match cli.settings.check() {
        Ok(config) => config,
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
    leptos_options.site_addr = cli.site_addr;
    // cargo-leptos tells the server it runs whether the files are hashed; a
    // server started otherwise finds out from the build's list of hashes.
    if std::env::var_os("LEPTOS_HASH_FILES").is_none() {
        leptos_options.hash_files = server::assets::built_with_hashes(&leptos_options);
    }
    let addr = leptos_options.site_addr;
    if let Err(error) = store::deployment::prepare(&config, false).await {
        eprintln!("server: {error}");
        return ExitCode::FAILURE;
    }
    let shutdown = CancellationToken::new();
    let state = match server::state(&config, leptos_options, shutdown.clone()) {
        Ok(state) => state,
        Err(error) => {
            eprintln!("server: Redis ({}): {error}", config.redis);
            return ExitCode::from(2);
        }
    };
    // TCP_NODELAY on every connection: a small write that follows another
    // (the next live-feed event, a response after its headers) goes out at
    // once instead of waiting, under Nagle's algorithm, for the client's
    // acknowledgement of the first, which it may delay by up to 40 ms.
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY on a connection");
            }
        }),
        Err(error) => {
            eprintln!("server: cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        redis = %config.redis,
        namespace = config.layout.namespace(),
        partitions = config.layout.partitions().count(),
        "listening on http://{addr}"
    );
    // The peer address of each connection: wrong admin tokens are limited per client.
    let app = server::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served =
        axum::serve(listener, app).with_graceful_shutdown(store::shutdown::cancel_on_signal(shutdown.clone())).await;
    shutdown.cancel();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

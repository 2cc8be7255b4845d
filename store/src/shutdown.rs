//! The signal both binaries stop on.

use tokio_util::sync::CancellationToken;

/// Waits for the first SIGTERM or SIGINT (ctrl-c), then cancels `shutdown`
/// so every loop and long-lived stream can finish its work and end.
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested: finishing work in flight");
    shutdown.cancel();
}

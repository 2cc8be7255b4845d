//! Liveness and readiness for process supervisors and load balancers.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::AppState;

/// The process is alive and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready to serve: Redis answers for every partition (on a cluster, every
/// partition's master: 503 while a failover is under way).
///
/// `warnings` tells of a Redis node whose `maxmemory-policy` would evict
/// Stockflow's keys (still ready: nothing is lost until memory is full).
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Redis answers for every partition"),
    (status = 503, description = "Redis, or the master of some partition, is unreachable"),
))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let conn = state.shop.connection();
    let (ready, memory) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(2), state.shop.ping()),
        tokio::time::timeout(Duration::from_secs(2), store::observe::memory(&conn)),
    );
    let warnings: Vec<String> = match memory {
        Ok(Ok(nodes)) => nodes.iter().filter_map(|node| node.warning()).collect(),
        _ => Vec::new(),
    };
    match ready {
        Ok(Ok(())) if warnings.is_empty() => (StatusCode::OK, Json(json!({ "ready": true }))),
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "ready": true, "warnings": warnings }))),
        _ => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "ready": false, "error": "redis is unreachable" }))),
    }
}

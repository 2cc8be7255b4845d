//! The REST API's one error type and its mapping to HTTP.
//!
//! Clients get a status code and `{"error": "..."}`; nothing internal leaks.

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use store::StoreError;

/// The body of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person to read.
    #[schema(example = "quantity: must be a whole number from 1 to 10000")]
    pub error: String,
}

/// An error answered to a REST client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    /// A warehouse change without the admin token (only when `ADMIN_TOKEN` is set).
    #[error("{0}")]
    Unauthorized(String),
    /// Too many of `what` from this client: it must wait `wait`.
    #[error("too many {what} from this address; retry in {} s", store::limits::retry_after_secs(*.wait))]
    TooManyRequests { what: &'static str, wait: Duration },
    /// A body that parsed but breaks a rule; the message names the field.
    #[error("{0}")]
    Unprocessable(String),
    /// A request that could not be read at all (bad JSON, wrong content type, too large).
    #[error("{1}")]
    BadRequest(StatusCode, String),
    /// The write did not reach `REDIS_MIN_REPLICAS` replicas in time.
    #[error("not confirmed by enough Redis replicas in time, so it may not last a failover; retry with the same Idempotency-Key (it never creates a second order or product), and read a product's stock before repeating a restock")]
    NotReplicated,
    /// Nothing was saved: too few replicas are online (a failover under way).
    #[error("not saved: fewer Redis replicas than REDIS_MIN_REPLICAS are online for it (a failover may be under way); retry in a few seconds, with the same Idempotency-Key")]
    TooFewReplicas,
    /// Redis is unreachable or misbehaving; details are logged, not returned.
    #[error("service unavailable")]
    Unavailable,
}

impl ApiError {
    /// Too many wrong admin tokens: wait `wait`.
    pub fn too_many_guesses(wait: Duration) -> ApiError {
        ApiError::TooManyRequests { what: "wrong admin tokens", wait }
    }
}

/// 429 to a server function's call before the function runs (a limit):
/// `Retry-After`, and `message` as the functions' own error type, which the
/// page reads and shows.
pub fn server_fn_too_many(wait: Duration, message: String) -> Response {
    use leptos::server_fn::error::FromServerFnError;
    let headers = [
        (header::RETRY_AFTER, store::limits::retry_after_secs(wait).to_string()),
        (header::CONTENT_TYPE, "application/json".to_string()),
    ];
    (StatusCode::TOO_MANY_REQUESTS, headers, app::error::ShopError::Refused(message).ser()).into_response()
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        error.log("request failed in the store");
        match error {
            StoreError::NotFound { kind, id } => ApiError::NotFound(format!("{kind} {id} not found")),
            StoreError::Invalid { field, message } => ApiError::Unprocessable(format!("{field}: {message}")),
            StoreError::NotReplicated { .. } => ApiError::NotReplicated,
            StoreError::TooFewReplicas { .. } => ApiError::TooFewReplicas,
            _ => ApiError::Unavailable,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(status, _) => *status,
            ApiError::Unavailable | ApiError::NotReplicated => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooFewReplicas => {
                // A failover takes a few seconds to give the new master a replica.
                let body = Json(ErrorBody { error: self.to_string() });
                return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "2")], body).into_response();
            }
            ApiError::Unauthorized(_) => {
                let body = Json(ErrorBody { error: self.to_string() });
                return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response();
            }
            ApiError::TooManyRequests { wait, .. } => {
                let body = Json(ErrorBody { error: self.to_string() });
                let retry_after = store::limits::retry_after_secs(*wait).to_string();
                return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, retry_after)], body).into_response();
            }
        };
        (status, Json(ErrorBody { error: self.to_string() })).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(error: StoreError) -> StatusCode {
        ApiError::from(error).into_response().status()
    }

    #[test]
    fn each_store_error_has_its_status() {
        assert_eq!(status_of(StoreError::NotFound { kind: "order", id: "x".into() }), StatusCode::NOT_FOUND);
        assert_eq!(status_of(StoreError::invalid("quantity", "too many")), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(status_of(StoreError::NotReplicated { wanted: 1, reached: 0 }), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of(StoreError::TooFewReplicas { wanted: 1, online: 0 }), StatusCode::SERVICE_UNAVAILABLE);
        // A placing task stopped by a shutdown: unavailable, say nothing more.
        let stopped = ApiError::from(StoreError::Stopped("saving the order"));
        assert_eq!(stopped.to_string(), "service unavailable");
        assert_eq!(stopped.into_response().status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}

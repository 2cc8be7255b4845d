//! The admin check of the REST API: with `ADMIN_TOKEN` set, warehouse
//! changes need `Authorization: Bearer <ADMIN_TOKEN>`.
//!
//! Wrong tokens are rate limited per client address
//! (`ClientLimits::admin_guesses`, shared with the UI's sign-in): a client
//! that sent too many gets 429 with `Retry-After`, whatever token it sends,
//! until it has waited.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use store::admin::bearer_token;

use crate::client::client_of;
use crate::error::ApiError;
use crate::AppState;

/// Proof that the request may change the warehouse; a handler that takes it
/// answers 401 to anyone else, and 429 to a client that sent too many wrong tokens.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let gate = state.shop.admin();
        if !gate.required() {
            return Ok(Admin);
        }
        let presented = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer_token);
        let Some(token) = presented else {
            return Err(ApiError::Unauthorized("this needs Authorization: Bearer <ADMIN_TOKEN>".to_string()));
        };
        let client = client_of(&parts.extensions);
        match state.limits.admin_guesses.attempt(client, || gate.token_matches(token)) {
            Ok(true) => Ok(Admin),
            Ok(false) => {
                tracing::warn!(client = %client.0, "wrong admin bearer token");
                Err(ApiError::Unauthorized("the admin token is wrong".to_string()))
            }
            Err(wait) => Err(ApiError::too_many_guesses(wait)),
        }
    }
}

/// Middleware: a bearer token sent to the UI's server functions (`/api/...`;
/// they take one too, for scripts) counts against the same limit as over
/// REST, so that they are no way around it. Throttled: 429 before the
/// function runs. (The function itself then checks the token as before.)
pub async fn limit_server_fn_tokens(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let gate = state.shop.admin();
    if gate.required() && request.uri().path().starts_with("/api/") {
        let presented = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer_token);
        if let Some(token) = presented {
            let client = client_of(request.extensions());
            match state.limits.admin_guesses.attempt(client, || gate.token_matches(token)) {
                Ok(true) => {}
                Ok(false) => tracing::warn!(client = %client.0, "wrong admin bearer token to a server function"),
                Err(wait) => {
                    return crate::error::server_fn_too_many(wait, ApiError::too_many_guesses(wait).to_string())
                }
            }
        }
    }
    next.run(request).await
}

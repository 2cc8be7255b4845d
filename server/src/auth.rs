//! The admin check of the REST API: with `ADMIN_TOKEN` set, warehouse
//! changes need `Authorization: Bearer <ADMIN_TOKEN>`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use store::admin::bearer_token;

use crate::error::ApiError;
use crate::AppState;

/// Proof that the request may change the warehouse; a handler that takes it
/// answers 401 to anyone else.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let gate = state.shop.admin();
        if !gate.required() {
            return Ok(Admin);
        }
        let presented = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer_token);
        match presented {
            Some(token) if gate.token_matches(token) => Ok(Admin),
            Some(_) => Err(ApiError::Unauthorized("the admin token is wrong".to_string())),
            None => Err(ApiError::Unauthorized("this needs Authorization: Bearer <ADMIN_TOKEN>".to_string())),
        }
    }
}

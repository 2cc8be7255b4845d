//! Server functions: the UI's calls into the shop.
//!
//! Each one is a thin edge over the same service layer the REST API uses
//! ([`store::Shop`]): parse the form fields with the domain's rules, call the
//! shop, and turn its errors into messages a person can act on. Failures of
//! the infrastructure are logged, never shown. Each has a stable path,
//! `/api/<function name>`.

use domain::{Order, Product};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Whether warehouse changes need an admin, and whether this browser is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminAccess {
    /// `ADMIN_TOKEN` is set on the server.
    pub required: bool,
    /// This browser holds an open admin session.
    pub signed_in: bool,
}

#[cfg(feature = "ssr")]
mod ssr {
    use leptos::prelude::*;
    use store::{Shop, StoreError};

    /// The shop provided by the server as context.
    pub fn shop() -> Result<Shop, ServerFnError> {
        use_context::<Shop>().ok_or_else(|| ServerFnError::new("the shop is not configured"))
    }

    /// A message for the person at the keyboard, answered with the matching
    /// 4xx or 503 status; infrastructure detail stays in the log.
    pub fn to_message(error: StoreError) -> ServerFnError {
        use http::StatusCode;
        let (status, message) = match error {
            StoreError::NotFound { kind, .. } => (StatusCode::NOT_FOUND, format!("That {kind} no longer exists.")),
            StoreError::Invalid { field, message } => {
                (StatusCode::UNPROCESSABLE_ENTITY, format!("{}: {message}", field.replace('_', " ")))
            }
            other => {
                tracing::error!(error = %other, "server function failed");
                (StatusCode::SERVICE_UNAVAILABLE, "The shop is unavailable right now; please try again.".to_string())
            }
        };
        refuse(status, &message)
    }

    /// Answers with `status` and `message`.
    fn refuse(status: http::StatusCode, message: &str) -> ServerFnError {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(status);
        }
        ServerFnError::new(message)
    }

    fn header(name: http::HeaderName) -> Option<String> {
        let parts = use_context::<http::request::Parts>()?;
        parts.headers.get(name)?.to_str().ok().map(str::to_string)
    }

    /// The admin session id in the request's cookie, if any.
    pub fn session_id() -> Option<String> {
        header(http::header::COOKIE).and_then(|c| store::admin::session_from_cookies(&c).map(str::to_string))
    }

    /// Whether the request may change the warehouse: no `ADMIN_TOKEN` is set,
    /// or it carries an open admin session (or the token as a bearer header,
    /// for scripts calling server functions directly).
    pub async fn is_admin(shop: &Shop) -> Result<bool, ServerFnError> {
        let gate = shop.admin();
        if !gate.required() {
            return Ok(true);
        }
        let bearer = header(http::header::AUTHORIZATION);
        if bearer.as_deref().and_then(store::admin::bearer_token).is_some_and(|t| gate.token_matches(t)) {
            return Ok(true);
        }
        match session_id() {
            Some(id) => gate.session_is_open(&id).await.map_err(to_message),
            None => Ok(false),
        }
    }

    /// The shop, for a warehouse change: 401 unless [`is_admin`].
    pub async fn shop_for_admin() -> Result<Shop, ServerFnError> {
        let shop = shop()?;
        if is_admin(&shop).await? {
            Ok(shop)
        } else {
            Err(unauthorized("Sign in as admin to change products."))
        }
    }

    /// Sets a response header (a cookie).
    pub fn set_header(name: http::HeaderName, value: &str) {
        if let (Some(response), Ok(value)) =
            (use_context::<leptos_axum::ResponseOptions>(), http::HeaderValue::from_str(value))
        {
            response.append_header(name, value);
        }
    }

    pub fn unauthorized(message: &str) -> ServerFnError {
        refuse(http::StatusCode::UNAUTHORIZED, message)
    }
}

/// Every product, oldest first.
#[server(endpoint = "list_products")]
pub async fn list_products() -> Result<Vec<Product>, ServerFnError> {
    ssr::shop()?.products().await.map_err(ssr::to_message)
}

/// Adds a product from the add-product form.
#[server(endpoint = "add_product")]
pub async fn add_product(name: String, price: String, quantity: String) -> Result<Product, ServerFnError> {
    let shop = ssr::shop_for_admin().await?;
    let new = domain::NewProduct::parse(&name, &price, &quantity).map_err(|e| ssr::to_message(e.into()))?;
    shop.create_product(new).await.map_err(ssr::to_message)
}

/// Removes a product.
#[server(endpoint = "delete_product")]
pub async fn delete_product(id: String) -> Result<(), ServerFnError> {
    ssr::shop_for_admin().await?.delete_product(&id).await.map_err(ssr::to_message)
}

/// Adds units to a product's stock.
#[server(endpoint = "restock_product")]
pub async fn restock_product(id: String, quantity: String) -> Result<Product, ServerFnError> {
    let shop = ssr::shop_for_admin().await?;
    let restock = domain::Restock::parse(&quantity).map_err(|e| ssr::to_message(e.into()))?;
    shop.restock(&id, restock).await.map_err(ssr::to_message)
}

/// Whether this browser must sign in to change products, and whether it has.
#[server(endpoint = "admin_status")]
pub async fn admin_status() -> Result<AdminAccess, ServerFnError> {
    let shop = ssr::shop()?;
    let required = shop.admin().required();
    Ok(AdminAccess { required, signed_in: required && ssr::is_admin(&shop).await? })
}

/// Opens an admin session for whoever knows `ADMIN_TOKEN`, kept in an
/// HttpOnly, SameSite=Strict cookie. Wrong tokens are limited per client
/// address, together with those sent over REST: past the limit, 429 with
/// `Retry-After` and a message saying how long to wait.
#[server(endpoint = "sign_in")]
pub async fn sign_in(token: String) -> Result<(), ServerFnError> {
    use store::admin::{ClientAddr, GuessLimiter};
    let gate = ssr::shop()?.admin().clone();
    if !gate.required() {
        return Ok(());
    }
    let guesses =
        use_context::<GuessLimiter>().ok_or_else(|| ServerFnError::new("the admin guess limit is not configured"))?;
    // The server records the connection's peer address in every request.
    let client = use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<ClientAddr>().copied())
        .unwrap_or(ClientAddr::UNKNOWN);
    match guesses.attempt(client, || gate.token_matches(token.trim())) {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(client = %client.0, "admin sign-in with a wrong token");
            return Err(ssr::unauthorized("That admin token is wrong."));
        }
        Err(wait) => {
            let seconds = store::admin::retry_after_secs(wait);
            tracing::warn!(client = %client.0, "admin sign-in refused: too many wrong tokens");
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(http::StatusCode::TOO_MANY_REQUESTS);
            }
            ssr::set_header(http::header::RETRY_AFTER, &seconds.to_string());
            return Err(ServerFnError::new(format!(
                "Too many wrong admin tokens from this address. Try again in {seconds} s."
            )));
        }
    }
    let session = gate.open_session().await.map_err(ssr::to_message)?;
    ssr::set_header(http::header::SET_COOKIE, &store::admin::session_cookie(&session));
    tracing::info!("admin signed in");
    Ok(())
}

/// Ends this browser's admin session.
#[server(endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), ServerFnError> {
    if let Some(session) = ssr::session_id() {
        ssr::shop()?.admin().close_session(&session).await.map_err(ssr::to_message)?;
    }
    ssr::set_header(http::header::SET_COOKIE, &store::admin::expired_session_cookie());
    Ok(())
}

/// Places an order from the order form.
#[server(endpoint = "place_order")]
pub async fn place_order(product_id: String, quantity: String) -> Result<Order, ServerFnError> {
    if product_id.trim().is_empty() {
        return Err(ssr::to_message(store::StoreError::invalid("product", "choose a product")));
    }
    let quantity = domain::Quantity::parse(&quantity)
        .map_err(|e| ssr::to_message(store::StoreError::invalid("quantity", e.to_string())))?;
    ssr::shop()?.place_order(product_id.trim(), quantity).await.map_err(ssr::to_message)
}

/// Every order, newest first.
#[server(endpoint = "list_orders")]
pub async fn list_orders() -> Result<Vec<Order>, ServerFnError> {
    ssr::shop()?.orders().await.map_err(ssr::to_message)
}

/// The text of a server function's error, without the framework's prefix.
pub fn error_text(error: &ServerFnError) -> String {
    match error {
        ServerFnError::ServerError(message) => message.clone(),
        other => other.to_string(),
    }
}

//! Server functions: the UI's calls into the shop.
//!
//! Each one is a thin edge over the same service layer the REST API uses
//! ([`store::Shop`]): parse the form fields with the domain's rules, call the
//! shop, and turn its errors into messages a person can act on. Failures of
//! the infrastructure are logged, never shown.

use domain::{Order, Product};
use leptos::prelude::*;

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
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(status);
        }
        ServerFnError::new(message)
    }
}

/// Every product, oldest first.
#[server]
pub async fn list_products() -> Result<Vec<Product>, ServerFnError> {
    ssr::shop()?.products().await.map_err(ssr::to_message)
}

/// Adds a product from the add-product form.
#[server]
pub async fn add_product(name: String, price: String, quantity: String) -> Result<Product, ServerFnError> {
    let new = domain::NewProduct::parse(&name, &price, &quantity).map_err(|e| ssr::to_message(e.into()))?;
    ssr::shop()?.create_product(new).await.map_err(ssr::to_message)
}

/// Removes a product.
#[server]
pub async fn delete_product(id: String) -> Result<(), ServerFnError> {
    ssr::shop()?.delete_product(&id).await.map_err(ssr::to_message)
}

/// Places an order from the order form.
#[server]
pub async fn place_order(product_id: String, quantity: String) -> Result<Order, ServerFnError> {
    if product_id.trim().is_empty() {
        return Err(ssr::to_message(store::StoreError::invalid("product", "choose a product")));
    }
    let quantity = domain::Quantity::parse(&quantity)
        .map_err(|e| ssr::to_message(store::StoreError::invalid("quantity", e.to_string())))?;
    ssr::shop()?.place_order(product_id.trim(), quantity).await.map_err(ssr::to_message)
}

/// Every order, newest first.
#[server]
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

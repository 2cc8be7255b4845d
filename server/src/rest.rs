//! The REST API, compatible with the original: same paths, same JSON field
//! names, prices as decimal numbers. Every handler calls the shop's service
//! layer, as the UI's server functions do.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::{Cents, NewProduct, Order, Product, Quantity};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// The REST routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/product", post(create_product))
        .route("/product/{id}", get(get_product).delete(delete_product))
        .route("/products", get(list_products))
        .route("/orders", post(place_order).get(list_orders))
        .route("/orders/{id}", get(get_order))
}

/// A JSON body whose rejections are answered as `{"error": ...}` with the
/// rejection's own 4xx status.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(rejection_error(rejection)),
        }
    }
}

fn rejection_error(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let message = match &rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "expected a JSON body with Content-Type: application/json".to_string()
        }
        _ => rejection.body_text(),
    };
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        ApiError::Unprocessable(message)
    } else {
        ApiError::BadRequest(status, message)
    }
}

/// `POST /product` body, as the original took it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct NewProductBody {
    /// 1 to 200 characters after trimming.
    #[schema(example = "Oak chair", min_length = 1, max_length = 200)]
    name: String,
    /// A decimal number from 0 to 1000000 with at most 2 decimals (a numeric string is accepted too).
    #[schema(value_type = f64, example = 19.99, minimum = 0, maximum = 1000000)]
    price: Cents,
    /// Units in stock, 0 to 1000000.
    #[schema(example = 10, minimum = 0, maximum = 1000000)]
    quantity: u64,
}

/// Adds a product to the warehouse.
#[utoipa::path(post, path = "/product", tag = "warehouse", request_body = NewProductBody, responses(
    (status = 201, description = "Created", body = Product),
    (status = 400, description = "Malformed JSON", body = ErrorBody),
    (status = 413, description = "Body over 64 KiB", body = ErrorBody),
    (status = 415, description = "Not JSON", body = ErrorBody),
    (status = 422, description = "A field breaks a rule; the message names it", body = ErrorBody),
    (status = 503, description = "Redis unreachable", body = ErrorBody),
))]
pub(crate) async fn create_product(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewProductBody>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewProduct::new(&body.name, body.price, body.quantity).map_err(store::StoreError::from)?;
    let product = state.shop.create_product(new).await?;
    Ok((StatusCode::CREATED, Json(product)))
}

/// One product.
#[utoipa::path(get, path = "/product/{id}", tag = "warehouse", params(("id" = String, Path, description = "Product id (ULID)")), responses(
    (status = 200, description = "The product", body = Product),
    (status = 404, description = "No such product", body = ErrorBody),
    (status = 503, description = "Redis unreachable", body = ErrorBody),
))]
pub(crate) async fn get_product(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Product>, ApiError> {
    Ok(Json(state.shop.product(&id).await?))
}

/// Every product, oldest first (at most 1000).
#[utoipa::path(get, path = "/products", tag = "warehouse", responses(
    (status = 200, description = "The products", body = [Product]),
    (status = 503, description = "Redis unreachable", body = ErrorBody),
))]
pub(crate) async fn list_products(State(state): State<AppState>) -> Result<Json<Vec<Product>>, ApiError> {
    Ok(Json(state.shop.products().await?))
}

/// Removes a product; orders for it still in flight are refunded.
#[utoipa::path(delete, path = "/product/{id}", tag = "warehouse", params(("id" = String, Path, description = "Product id (ULID)")), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such product", body = ErrorBody),
    (status = 503, description = "Redis unreachable", body = ErrorBody),
))]
pub(crate) async fn delete_product(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.shop.delete_product(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /orders` body, as the original took it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct NewOrderBody {
    product_id: String,
    #[schema(value_type = u32, minimum = 1, maximum = 10000, example = 2)]
    quantity: Quantity,
}

/// Header that makes `POST /orders` safe to retry.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Places an order: prices it (the 20% fee on the whole order) and saves it
/// `pending`; payment, stock and refunds follow asynchronously. With an
/// `Idempotency-Key`, a retry within the window returns the order the first
/// attempt created instead of creating another.
#[utoipa::path(post, path = "/orders", tag = "store", request_body = NewOrderBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: 1 to 200 visible ASCII characters")),
    responses(
        (status = 201, description = "Placed (status pending), or found again by its Idempotency-Key", body = Order,
            headers(("Idempotency-Replayed" = String, description = "true when an earlier request with this key created it"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Bad quantity, or a key reused for a different order", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody),
    ))]
pub(crate) async fn place_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewOrderBody>,
) -> Result<impl IntoResponse, ApiError> {
    let key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::Unprocessable("Idempotency-Key: must be visible ASCII".to_string()))?,
        ),
    };
    let placed = state.shop.place_order_once(&body.product_id, body.quantity, key).await?;
    let replayed = [("idempotency-replayed", if placed.replayed { "true" } else { "false" })];
    Ok((StatusCode::CREATED, replayed, Json(placed.order)))
}

/// Every order, newest first (at most 1000).
#[utoipa::path(get, path = "/orders", tag = "store", responses(
    (status = 200, description = "The orders", body = [Order]),
    (status = 503, description = "Redis unreachable", body = ErrorBody),
))]
pub(crate) async fn list_orders(State(state): State<AppState>) -> Result<Json<Vec<Order>>, ApiError> {
    Ok(Json(state.shop.orders().await?))
}

/// One order, with its current status.
#[utoipa::path(get, path = "/orders/{id}", tag = "store", params(("id" = String, Path, description = "Order id (ULID)")), responses(
    (status = 200, description = "The order", body = Order),
    (status = 404, description = "No such order", body = ErrorBody),
    (status = 503, description = "Redis unreachable", body = ErrorBody),
))]
pub(crate) async fn get_order(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Order>, ApiError> {
    Ok(Json(state.shop.order(&id).await?))
}

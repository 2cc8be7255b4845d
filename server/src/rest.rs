//! The REST API, compatible with the original: same paths, same JSON field
//! names, prices as decimal numbers. Every handler calls the shop's service
//! layer, as the UI's server functions do.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::{Cents, NewProduct, Order, Page, PageRequest, Product, Quantity, Restock};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::auth::Admin;
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// The REST routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/product", post(create_product))
        .route("/product/{id}", get(get_product).delete(delete_product))
        .route("/product/{id}/restock", post(restock_product))
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
    #[schema(value_type = f64, example = 19.99, minimum = 0, maximum = 1000000, multiple_of = 0.01)]
    price: Cents,
    /// Units in stock, 0 to 1000000.
    #[schema(example = 10, minimum = 0, maximum = 1000000)]
    quantity: u64,
}

/// Adds a product to the warehouse. With an `Idempotency-Key`, a retry
/// within the window returns the product the first attempt created instead
/// of creating another.
#[utoipa::path(post, path = "/product", tag = "warehouse", request_body = NewProductBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: 1 to 200 visible ASCII characters")),
    security((), ("admin_token" = [])),
    responses(
        (status = 201, description = "Created, or found again by its Idempotency-Key", body = Product,
            headers(("Idempotency-Replayed" = String, description = "true when an earlier request with this key created it"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "ADMIN_TOKEN is set and the bearer token is missing or wrong", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule (the message names it), or a key reused for a different product", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody),
    ))]
pub(crate) async fn create_product(
    State(state): State<AppState>,
    _admin: Admin,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewProductBody>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewProduct::new(&body.name, body.price, body.quantity).map_err(store::StoreError::from)?;
    let created = state.shop.create_product_once(new, idempotency_key(&headers)?).await?;
    Ok((StatusCode::CREATED, replayed_header(created.replayed), Json(created.product)))
}

/// `POST /product/{id}/restock` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct RestockBody {
    /// Units to add to the stock, 1 to 1000000; the stock never passes 1000000.
    #[schema(example = 5, minimum = 1, maximum = 1000000)]
    quantity: u64,
}

/// Adds units to a product's stock, atomically with the orders taking it.
#[utoipa::path(post, path = "/product/{id}/restock", tag = "warehouse", request_body = RestockBody,
    params(("id" = String, Path, description = "Product id (ULID)")),
    security((), ("admin_token" = [])),
    responses(
        (status = 200, description = "Restocked; the product with its new stock", body = Product),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "ADMIN_TOKEN is set and the bearer token is missing or wrong", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Quantity out of range, or the stock would pass 1000000", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody),
    ))]
pub(crate) async fn restock_product(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RestockBody>,
) -> Result<Json<Product>, ApiError> {
    let restock = Restock::new(body.quantity).map_err(store::StoreError::from)?;
    Ok(Json(state.shop.restock(&id, restock).await?))
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

/// Products, oldest first, a page at a time: a JSON array as the original
/// returned, with `Next-Cursor` and a `Link` to the next page when there is one.
#[utoipa::path(get, path = "/products", tag = "warehouse", params(ListQuery), responses(
    (status = 200, description = "One page of products", body = [Product], headers(
        ("Next-Cursor" = String, description = "Pass as `cursor` for the next page; absent on the last page"),
        ("Link" = String, description = "The next page's URL with rel=\"next\"; absent on the last page"))),
    (status = 400, description = "Malformed query string", body = ErrorBody),
    (status = 422, description = "Bad limit or cursor; the message names it", body = ErrorBody),
    (status = 503, description = "Redis unreachable", body = ErrorBody),
))]
pub(crate) async fn list_products(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let request = page_request(query)?;
    let page = state.shop.products_page(&request).await?;
    Ok(paged("/products", &request, page))
}

/// Removes a product; orders for it still in flight are refunded.
#[utoipa::path(delete, path = "/product/{id}", tag = "warehouse", params(("id" = String, Path, description = "Product id (ULID)")),
    security((), ("admin_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "ADMIN_TOKEN is set and the bearer token is missing or wrong", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody),
    ))]
pub(crate) async fn delete_product(
    State(state): State<AppState>,
    _admin: Admin,
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

/// Header that makes `POST /orders` and `POST /product` safe to retry.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The client's idempotency key, if it sent one.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    headers
        .get(IDEMPOTENCY_KEY)
        .map(|value| {
            value.to_str().map_err(|_| ApiError::Unprocessable("Idempotency-Key: must be visible ASCII".to_string()))
        })
        .transpose()
}

/// Tells the client whether its request was answered from an earlier one.
fn replayed_header(replayed: bool) -> [(&'static str, &'static str); 1] {
    [("idempotency-replayed", if replayed { "true" } else { "false" })]
}

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
    let placed = state.shop.place_order_once(&body.product_id, body.quantity, idempotency_key(&headers)?).await?;
    Ok((StatusCode::CREATED, replayed_header(placed.replayed), Json(placed.order)))
}

/// Orders, newest first, a page at a time: a JSON array as the original
/// returned, with `Next-Cursor` and a `Link` to the next page when there is one.
#[utoipa::path(get, path = "/orders", tag = "store", params(ListQuery), responses(
    (status = 200, description = "One page of orders", body = [Order], headers(
        ("Next-Cursor" = String, description = "Pass as `cursor` for the next page; absent on the last page"),
        ("Link" = String, description = "The next page's URL with rel=\"next\"; absent on the last page"))),
    (status = 400, description = "Malformed query string", body = ErrorBody),
    (status = 422, description = "Bad limit or cursor; the message names it", body = ErrorBody),
    (status = 503, description = "Redis unreachable", body = ErrorBody),
))]
pub(crate) async fn list_orders(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let request = page_request(query)?;
    let page = state.shop.orders_page(&request).await?;
    Ok(paged("/orders", &request, page))
}

/// The pagination parameters of the list endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Items per page, 1 to 1000; 100 when absent.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// The `Next-Cursor` of the previous page; absent for the first page.
    cursor: Option<String>,
}

fn page_request(query: Result<Query<ListQuery>, QueryRejection>) -> Result<PageRequest, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest(rejection.status(), rejection.body_text()))?;
    PageRequest::parse(query.limit.as_deref(), query.cursor.as_deref())
        .map_err(|error| ApiError::Unprocessable(error.to_string()))
}

/// A page as the original's JSON array, the way on in its headers.
fn paged<T: serde::Serialize>(path: &str, request: &PageRequest, page: Page<T>) -> impl IntoResponse {
    let mut headers = HeaderMap::new();
    if let Some(cursor) = &page.next_cursor {
        let link = format!("<{path}?limit={}&cursor={cursor}>; rel=\"next\"", request.limit);
        // Cursors are ids (base32), so both values are always valid header text.
        if let (Ok(cursor), Ok(link)) = (HeaderValue::from_str(cursor), HeaderValue::from_str(&link)) {
            headers.insert(NEXT_CURSOR, cursor);
            headers.insert(header::LINK, link);
        }
    }
    (headers, Json(page.items))
}

/// Where the next page starts.
pub const NEXT_CURSOR: HeaderName = HeaderName::from_static("next-cursor");

/// One order, with its current status.
#[utoipa::path(get, path = "/orders/{id}", tag = "store", params(("id" = String, Path, description = "Order id (ULID)")), responses(
    (status = 200, description = "The order", body = Order),
    (status = 404, description = "No such order", body = ErrorBody),
    (status = 503, description = "Redis unreachable", body = ErrorBody),
))]
pub(crate) async fn get_order(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Order>, ApiError> {
    Ok(Json(state.shop.order(&id).await?))
}

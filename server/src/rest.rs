//! The REST API, compatible with the original: same paths, same JSON field
//! names, prices as decimal numbers. Every handler calls the shop's service
//! layer, as the UI's server functions do.
//!
//! The original's clients keep working unchanged: number fields also take a
//! string holding exactly the number (as FastAPI coerced them), and the
//! objects the original answered with `pk` carry `pk` beside `id`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Extension;
use axum::Json;
use domain::{Id, NewProduct, NumberInput, Order, Page, PageRequest, Product, Quantity, Restock};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use store::limits::ClientAddr;
use tracing::Instrument;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Admin;
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// The REST routes, each with its OpenAPI operation: this one list makes
/// both the router and `/openapi.json` (paths in this order).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create_product))
        .routes(routes!(get_product, delete_product))
        .routes(routes!(list_products))
        .routes(routes!(restock_product))
        .routes(routes!(place_order, list_orders))
        .routes(routes!(get_order))
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
    #[schema(schema_with = price_schema)]
    price: NumberInput,
    #[schema(schema_with = stock_schema)]
    quantity: NumberInput,
}

/// A number field that also takes a JSON string holding exactly the number
/// (`"19.99"`), as the original's clients send it.
fn number_or_string(description: &str, number: ObjectBuilder, pattern: &str) -> Schema {
    OneOfBuilder::new()
        .item(number)
        .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)))
        .description(Some(description))
        .into()
}

fn price_schema() -> Schema {
    number_or_string(
        "A decimal number from 0 to 1000000 with at most 2 decimals, or a string holding exactly one (`\"19.99\"`).",
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(0))
            .maximum(Some(1_000_000))
            .multiple_of(Some(0.01))
            .examples([19.99]),
        r"^(0|[1-9][0-9]*)(\.[0-9]{1,2}0*)?$",
    )
}

fn stock_schema() -> Schema {
    number_or_string(
        "Units in stock, a whole number from 0 to 1000000, or a string holding exactly one (`\"10\"`).",
        ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).maximum(Some(1_000_000)).examples([10]),
        "^(0|[1-9][0-9]*)$",
    )
}

fn order_quantity_schema() -> Schema {
    number_or_string(
        "Units to order, a whole number from 1 to 10000, or a string holding exactly one (`\"2\"`).",
        ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(10_000)).examples([2]),
        "^[1-9][0-9]*$",
    )
}

/// A product as `POST /product` and `GET /product/{id}` answer it: with
/// `pk`, the original's name for the id, beside `id`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ProductWithPk {
    #[serde(flatten)]
    product: Product,
    /// The same as `id`, under the original's name.
    pk: Id,
}

impl From<Product> for ProductWithPk {
    fn from(product: Product) -> ProductWithPk {
        ProductWithPk { pk: product.id.clone(), product }
    }
}

/// An order as `POST /orders` answers it: with `pk`, the original's name
/// for the id, beside `id`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OrderWithPk {
    #[serde(flatten)]
    order: Order,
    /// The same as `id`, under the original's name.
    pk: Id,
}

impl From<Order> for OrderWithPk {
    fn from(order: Order) -> OrderWithPk {
        OrderWithPk { pk: order.id.clone(), order }
    }
}

/// Adds a product to the warehouse.
///
/// With an `Idempotency-Key`, a retry within the window returns the product
/// the first attempt created instead of creating another.
#[utoipa::path(post, path = "/product", tag = "warehouse", request_body = NewProductBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: 1 to 200 visible ASCII characters")),
    security((), ("admin_token" = [])),
    responses(
        (status = 201, description = "Created, or found again by its Idempotency-Key", body = ProductWithPk,
            headers(("Idempotency-Replayed" = String, description = "true when an earlier request with this key created it"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "ADMIN_TOKEN is set and the bearer token is missing or wrong", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this client address; retry after the wait", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying a token again"))),
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
    let new = NewProduct::from_json(&body.name, &body.price, &body.quantity).map_err(store::StoreError::from)?;
    let created = state.shop.create_product_once(new, idempotency_key(&headers)?).await?;
    Ok((StatusCode::CREATED, replayed_header(created.replayed), Json(ProductWithPk::from(created.product))))
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
        (status = 429, description = "Too many wrong admin tokens from this client address; retry after the wait", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying a token again"))),
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
    let id = store::parse_id("product", &id)?;
    let restock = Restock::new(body.quantity).map_err(store::StoreError::from)?;
    Ok(Json(state.shop.restock(&id, restock).await?))
}

/// One product.
#[utoipa::path(get, path = "/product/{id}", tag = "warehouse", params(("id" = String, Path, description = "Product id (ULID)")), responses(
    (status = 200, description = "The product", body = ProductWithPk),
    (status = 404, description = "No such product", body = ErrorBody),
    (status = 503, description = "Redis unreachable", body = ErrorBody),
))]
pub(crate) async fn get_product(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ProductWithPk>, ApiError> {
    Ok(Json(state.shop.product(&store::parse_id("product", &id)?).await?.into()))
}

/// Products, oldest first, a page at a time.
///
/// A JSON array as the original returned, with `Next-Cursor` and a `Link` to
/// the next page when there is one.
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
        (status = 429, description = "Too many wrong admin tokens from this client address; retry after the wait", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying a token again"))),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody),
    ))]
pub(crate) async fn delete_product(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.shop.delete_product(&store::parse_id("product", &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /orders` body, as the original took it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct NewOrderBody {
    product_id: String,
    #[schema(schema_with = order_quantity_schema)]
    quantity: NumberInput,
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

/// Places an order: prices it and saves it pending.
///
/// The price includes the 20% fee on the whole order; payment, stock and
/// refunds follow asynchronously (the order moves `pending → completed →
/// fulfilled | refunded`). With an `Idempotency-Key`, a retry within the
/// window returns the order the first attempt created instead of creating
/// another.
#[utoipa::path(post, path = "/orders", tag = "store", request_body = NewOrderBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: 1 to 200 visible ASCII characters")),
    responses(
        (status = 201, description = "Placed (status pending), or found again by its Idempotency-Key", body = OrderWithPk,
            headers(("Idempotency-Replayed" = String, description = "true when an earlier request with this key created it"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Bad quantity, or a key reused for a different order", body = ErrorBody),
        (status = 429, description = "Too many orders from this client address (ORDER_RATE_PER_CLIENT); retry after the wait", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before placing another order"))),
        (status = 503, description = "Redis unreachable", body = ErrorBody),
    ))]
pub(crate) async fn place_order(
    State(state): State<AppState>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewOrderBody>,
) -> Result<impl IntoResponse, ApiError> {
    state.limits.order(client).map_err(|wait| ApiError::TooManyRequests { what: "orders", wait })?;
    let quantity =
        Quantity::try_from(&body.quantity).map_err(|error| ApiError::Unprocessable(format!("quantity: {error}")))?;
    // The order's trace joins the caller's, when it sends a W3C `traceparent`.
    let traceparent = headers.get("traceparent").and_then(|value| value.to_str().ok());
    let span = store::telemetry::step_span("POST /orders", traceparent);
    let product_id = store::parse_id("product", &body.product_id)?;
    let placing = state.shop.place_order_once(&product_id, quantity, idempotency_key(&headers)?);
    let placed = placing.instrument(span).await?;
    Ok((StatusCode::CREATED, replayed_header(placed.replayed), Json(OrderWithPk::from(placed.order))))
}

/// Orders, newest first, a page at a time.
///
/// A JSON array as the original returned, with `Next-Cursor` and a `Link` to
/// the next page when there is one.
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
    Ok(Json(state.shop.order(&store::parse_id("order", &id)?).await?))
}

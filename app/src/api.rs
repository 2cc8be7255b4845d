//! Server functions: the UI's calls into the shop.
//!
//! Each one is a thin edge over the same service layer the REST API uses
//! ([`store::Shop`]): parse the form fields with the domain's rules, call the
//! shop, and turn its errors into messages a person can act on. Failures of
//! the infrastructure are logged, never shown. Each has a stable path,
//! `/api/<function name>`.

use domain::{Id, Order, OrderStatus, Page, Product};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

pub use crate::error::ShopError;

/// Whether warehouse changes need an admin, and whether this browser is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminAccess {
    /// `ADMIN_TOKEN` is set on the server.
    pub required: bool,
    /// This browser holds an open admin session.
    pub signed_in: bool,
}

/// An order with its product's name: a row of the order list, and the
/// order page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDetail {
    pub order: Order,
    /// The product's name, while the product exists.
    pub product_name: Option<String>,
}

/// One dead letter, as the dead-letters view lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterRow {
    /// Its id (`<partition>.<stream>.<entry id>`), for retry and discard.
    pub id: String,
    pub stream: String,
    /// When it was given up on, in milliseconds since the Unix epoch.
    pub at: u64,
    pub error: String,
    pub deliveries: u64,
    pub order_id: Option<String>,
}

/// A page of dead letters, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterPage {
    pub items: Vec<DeadLetterRow>,
    /// The cursor of the next page, when there is more.
    pub next_cursor: Option<String>,
}

/// Dead letters per page of the dead-letters view.
pub const DEAD_LETTER_PAGE: usize = 20;

/// Orders per page of the order list.
pub const ORDER_PAGE: usize = 50;

/// Products per page of the warehouse table.
pub const PRODUCT_PAGE: usize = 20;

/// The server functions that are searches (their cost depends on what is
/// asked): each counts against the client's `SEARCH_RATE_PER_CLIENT`, as a
/// page render does.
pub const SEARCHES: [&str; 3] = ["orders_page", "products_page", "orders_with_ids"];

/// The most orders one [`orders_with_ids`] call fetches.
pub const MAX_ORDERS_BY_ID: usize = 100;

/// Which orders a search of the order list stands for, so that the page
/// can tell whether an order it learns of from the feed belongs in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Matched {
    /// No search: every order.
    All,
    /// The search was an order id: that order only.
    Order(Id),
    /// The search was the start of an order id (upper case): the orders whose id starts so.
    IdStart(String),
    /// The orders of the products whose name contains the search.
    Products(Vec<Id>),
}

impl Matched {
    /// Whether an order of `product_id` with id `order_id` is one of these.
    pub fn admits(&self, order_id: &Id, product_id: &Id) -> bool {
        match self {
            Matched::All => true,
            Matched::Order(id) => id == order_id,
            Matched::IdStart(start) => order_id.starts_with(start.as_str()),
            Matched::Products(ids) => ids.contains(product_id),
        }
    }
}

/// A page of the order list, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPage {
    pub rows: Vec<OrderDetail>,
    /// The cursor of the next page, when there is more.
    pub next_cursor: Option<String>,
    pub matched: Matched,
    /// Whether the search matched more products than a list covers
    /// ([`domain::search::MAX_MATCHED_PRODUCTS`]): the orders of the newest of them are shown.
    pub narrowed: bool,
}

/// How many orders are in each status, and since when that holds: changes
/// the feed reports after `at` come on top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCounts {
    /// When the counting began, in milliseconds since the Unix epoch.
    pub at: u64,
    pub counts: Vec<(OrderStatus, u64)>,
}

#[cfg(feature = "ssr")]
mod ssr {
    use leptos::prelude::*;

    use super::ShopError;
    use domain::Id;
    use store::{Shop, StoreError};

    /// The shop provided by the server as context.
    pub fn shop() -> Result<Shop, ShopError> {
        use_context::<Shop>().ok_or(ShopError::Unavailable)
    }

    /// A message for the person at the keyboard, answered with the matching
    /// 4xx or 503 status; infrastructure detail stays in the log.
    pub fn to_message(error: StoreError) -> ShopError {
        use http::StatusCode;
        error.log("server function failed");
        let (status, message) = match error {
            StoreError::NotFound { kind, .. } => (StatusCode::NOT_FOUND, format!("That {kind} no longer exists.")),
            StoreError::Invalid { field, message } => {
                (StatusCode::UNPROCESSABLE_ENTITY, format!("{}: {message}", field.replace('_', " ")))
            }
            // The same two cases REST tells apart, in words for a person.
            StoreError::NotReplicated { .. } => {
                let message = "Saved, but not yet confirmed by enough Redis replicas, so it may not survive a failover: check the lists before you do it again.";
                (StatusCode::SERVICE_UNAVAILABLE, message.to_string())
            }
            StoreError::TooFewReplicas { .. } => {
                let message = "Not saved: too few Redis replicas are online (a failover may be under way). Try again in a few seconds.";
                (StatusCode::SERVICE_UNAVAILABLE, message.to_string())
            }
            _ => return unavailable(),
        };
        refuse(status, &message)
    }

    /// Answers with `status` and `message`.
    pub fn refuse(status: http::StatusCode, message: &str) -> ShopError {
        answer(status, ShopError::Refused(message.to_string()))
    }

    /// 503: the shop is unavailable (its cause is logged, or needs no log).
    pub fn unavailable() -> ShopError {
        answer(http::StatusCode::SERVICE_UNAVAILABLE, ShopError::Unavailable)
    }

    /// Answers `error` with `status`.
    fn answer(status: http::StatusCode, error: ShopError) -> ShopError {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(status);
        }
        error
    }

    fn header(name: http::HeaderName) -> Option<String> {
        let parts = use_context::<http::request::Parts>()?;
        parts.headers.get(name)?.to_str().ok().map(str::to_string)
    }

    /// The client the server identified the request as (its address).
    pub fn client() -> store::limits::ClientAddr {
        use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<store::limits::ClientAddr>().copied())
            .unwrap_or(store::limits::ClientAddr::UNKNOWN)
    }

    /// Whether the request reached the site over HTTPS.
    pub fn over_https() -> bool {
        use_context::<http::request::Parts>()
            .is_some_and(|parts| parts.extensions.get::<store::admin::Https>().is_some())
    }

    /// The per-client limits provided by the server as context.
    pub fn limits() -> Result<store::limits::ClientLimits, ShopError> {
        use_context::<store::limits::ClientLimits>().ok_or(ShopError::Unavailable)
    }

    /// 429 with `Retry-After` and a message that says how long to wait.
    pub fn too_many(wait: std::time::Duration, message: &str) -> ShopError {
        let seconds = store::limits::retry_after_secs(wait);
        set_header(http::header::RETRY_AFTER, &seconds.to_string());
        refuse(http::StatusCode::TOO_MANY_REQUESTS, &format!("{message} Try again in {seconds} s."))
    }

    /// Whether this is a server function's request (`/api/...`), rather than a page render.
    fn is_server_fn_call() -> bool {
        use_context::<http::request::Parts>().is_some_and(|parts| parts.uri.path().starts_with("/api/"))
    }

    /// The admin session id in the request's cookie, if any.
    pub fn session_id() -> Option<String> {
        header(http::header::COOKIE).and_then(|c| store::admin::session_from_cookies(&c).map(str::to_string))
    }

    /// Whether the request may change the warehouse: no `ADMIN_TOKEN` is set,
    /// or it carries an open admin session (or, for scripts calling server
    /// functions directly, the token as a bearer header, which the server
    /// counts against the client's wrong-token limit before the function
    /// runs). A page render ignores a bearer header: nothing counts its
    /// guesses there, and a browser never sends one.
    pub async fn is_admin(shop: &Shop) -> Result<bool, ShopError> {
        let gate = shop.admin();
        if !gate.required() {
            return Ok(true);
        }
        if is_server_fn_call() {
            let bearer = header(http::header::AUTHORIZATION);
            if bearer.as_deref().and_then(store::admin::bearer_token).is_some_and(|t| gate.token_matches(t)) {
                return Ok(true);
            }
        }
        match session_id() {
            Some(id) => gate.session_is_open(&id).await.map_err(to_message),
            None => Ok(false),
        }
    }

    /// The shop, for a warehouse change: 401 unless [`is_admin`].
    pub async fn shop_for_admin() -> Result<Shop, ShopError> {
        shop_for_admin_or("Sign in as admin to change products.").await
    }

    /// The shop, for an admin: 401 with `message` unless [`is_admin`].
    pub async fn shop_for_admin_or(message: &str) -> Result<Shop, ShopError> {
        let shop = shop()?;
        if is_admin(&shop).await? {
            Ok(shop)
        } else {
            Err(unauthorized(message))
        }
    }

    /// A dead letter id from a form: 404 when it names nothing that can exist.
    pub fn dead_letter_id(shop: &Shop, text: &str) -> Result<store::dead_letters::DeadLetterId, ShopError> {
        store::dead_letters::DeadLetterId::parse(text.trim(), shop.layout())
            .map_err(|_| refuse(http::StatusCode::NOT_FOUND, "No such dead letter."))
    }

    /// For a dead letter that is gone: says so with 404.
    pub fn dead_letter_message(error: StoreError) -> ShopError {
        match error {
            StoreError::NotFound { .. } => {
                refuse(http::StatusCode::NOT_FOUND, "That dead letter was retried or discarded already.")
            }
            other => to_message(other),
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

    pub fn unauthorized(message: &str) -> ShopError {
        refuse(http::StatusCode::UNAUTHORIZED, message)
    }

    /// A page request from a list's cursor (a page's `next_cursor`): 422 for
    /// anything else.
    pub fn page_request(limit: usize, cursor: Option<&str>) -> Result<domain::PageRequest, ShopError> {
        let cursor = cursor.map(str::trim).filter(|c| !c.is_empty());
        let mut request = domain::PageRequest::parse(None, cursor)
            .map_err(|e| refuse(http::StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()))?;
        request.limit = limit;
        Ok(request)
    }

    /// The orders with their products' names (a name is missing only when
    /// the product was deleted).
    pub async fn with_names(shop: &Shop, orders: Vec<domain::Order>) -> Result<Vec<super::OrderDetail>, ShopError> {
        let mut ids: Vec<Id> = orders.iter().map(|o| o.product_id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        let products = shop.products_with_ids(&ids).await.map_err(to_message)?;
        let name_of = |id: &Id| products.iter().find(|p| p.id == *id).map(|p| p.name.clone());
        Ok(orders
            .into_iter()
            .map(|order| super::OrderDetail { product_name: name_of(&order.product_id), order })
            .collect())
    }
}

/// Adds a product from the add-product form.
#[server(endpoint = "add_product")]
pub async fn add_product(name: String, price: String, quantity: String) -> Result<Product, ShopError> {
    let shop = ssr::shop_for_admin().await?;
    let new = domain::NewProduct::parse(&name, &price, &quantity).map_err(|e| ssr::to_message(e.into()))?;
    shop.create_product(new).await.map_err(ssr::to_message)
}

/// Removes a product.
#[server(endpoint = "delete_product")]
pub async fn delete_product(id: String) -> Result<(), ShopError> {
    let shop = ssr::shop_for_admin().await?;
    let id = store::parse_id("product", &id).map_err(ssr::to_message)?;
    shop.delete_product(&id).await.map_err(ssr::to_message)
}

/// Adds units to a product's stock.
#[server(endpoint = "restock_product")]
pub async fn restock_product(id: String, quantity: String) -> Result<Product, ShopError> {
    let shop = ssr::shop_for_admin().await?;
    let id = store::parse_id("product", &id).map_err(ssr::to_message)?;
    let restock = domain::Restock::parse(&quantity).map_err(|e| ssr::to_message(e.into()))?;
    shop.restock(&id, restock).await.map_err(ssr::to_message)
}

/// Whether this browser must sign in to change products, and whether it has.
#[server(endpoint = "admin_status")]
pub async fn admin_status() -> Result<AdminAccess, ShopError> {
    let shop = ssr::shop()?;
    let required = shop.admin().required();
    Ok(AdminAccess { required, signed_in: required && ssr::is_admin(&shop).await? })
}

/// Opens an admin session for whoever knows `ADMIN_TOKEN`, kept in an
/// HttpOnly, SameSite=Strict cookie. Wrong tokens are limited per client
/// address, together with those sent over REST: past the limit, 429 with
/// `Retry-After` and a message saying how long to wait.
#[server(endpoint = "sign_in")]
pub async fn sign_in(token: String) -> Result<(), ShopError> {
    let gate = ssr::shop()?.admin().clone();
    if !gate.required() {
        return Ok(());
    }
    let client = ssr::client();
    match ssr::limits()?.admin_guesses.attempt(client, || gate.token_matches(token.trim())) {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(client = %client.0, "admin sign-in with a wrong token");
            return Err(ssr::unauthorized("That admin token is wrong."));
        }
        Err(wait) => {
            tracing::warn!(client = %client.0, "admin sign-in refused: too many wrong tokens");
            return Err(ssr::too_many(wait, "Too many wrong admin tokens from this address."));
        }
    }
    let session = gate.open_session().await.map_err(ssr::to_message)?;
    ssr::set_header(http::header::SET_COOKIE, &store::admin::session_cookie(&session, ssr::over_https()));
    tracing::info!("admin signed in");
    Ok(())
}

/// Ends this browser's admin session.
#[server(endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), ShopError> {
    if let Some(session) = ssr::session_id() {
        ssr::shop()?.admin().close_session(&session).await.map_err(ssr::to_message)?;
    }
    ssr::set_header(http::header::SET_COOKIE, &store::admin::expired_session_cookie(ssr::over_https()));
    Ok(())
}

/// Places an order from the order form. The form sends one idempotency key
/// per attempt, so a double click or a retried request creates one order.
#[server(endpoint = "place_order")]
pub async fn place_order(
    product_id: String,
    quantity: String,
    idempotency_key: Option<String>,
) -> Result<Order, ShopError> {
    if product_id.trim().is_empty() {
        return Err(ssr::to_message(store::StoreError::invalid("product", "choose a product")));
    }
    if let Err(wait) = ssr::limits()?.order(ssr::client()) {
        return Err(ssr::too_many(wait, "Too many orders from this address."));
    }
    let quantity = domain::Quantity::parse(&quantity)
        .map_err(|e| ssr::to_message(store::StoreError::invalid("quantity", e.to_string())))?;
    let product_id = store::parse_id("product", &product_id).map_err(ssr::to_message)?;
    let key = idempotency_key.as_deref().map(str::trim).filter(|k| !k.is_empty());
    let placed = ssr::shop()?.place_order_once(&product_id, quantity, key).await.map_err(ssr::to_message)?;
    Ok(placed.order)
}

/// One order with its product's name, for the order page; 404 "No such
/// order" for an unknown or malformed id.
#[server(endpoint = "get_order")]
pub async fn get_order(id: String) -> Result<OrderDetail, ShopError> {
    let shop = ssr::shop()?;
    let order = match store::parse_id("order", &id) {
        Ok(id) => shop.order(&id).await,
        Err(not_found) => Err(not_found),
    };
    let order = match order {
        Ok(order) => order,
        Err(store::StoreError::NotFound { .. }) => {
            return Err(ssr::refuse(http::StatusCode::NOT_FOUND, "No such order."));
        }
        Err(other) => return Err(ssr::to_message(other)),
    };
    let product_name = match shop.product(&order.product_id).await {
        Ok(product) => Some(product.name),
        Err(store::StoreError::NotFound { .. }) => None,
        Err(other) => return Err(ssr::to_message(other)),
    };
    Ok(OrderDetail { order, product_name })
}

/// The number of dead letters, or `None` when this browser may not see them.
#[server(endpoint = "dead_letter_count")]
pub async fn dead_letter_count() -> Result<Option<u64>, ShopError> {
    let shop = ssr::shop()?;
    if !ssr::is_admin(&shop).await? {
        return Ok(None);
    }
    store::dead_letters::count(&shop.connection(), shop.layout()).await.map(Some).map_err(ssr::to_message)
}

/// A page of dead letters, newest first, after `cursor` (a page's `next_cursor`).
#[server(endpoint = "dead_letters")]
pub async fn dead_letters(cursor: Option<String>) -> Result<DeadLetterPage, ShopError> {
    let shop = ssr::shop_for_admin_or("Sign in as admin to see dead letters.").await?;
    let after = match cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(cursor) => Some(
            store::dead_letters::DeadLetterId::parse(cursor, shop.layout())
                .map_err(|_| ssr::refuse(http::StatusCode::UNPROCESSABLE_ENTITY, "cursor: not a dead letter id"))?,
        ),
        None => None,
    };
    let page = store::dead_letters::page(&shop.connection(), shop.layout(), DEAD_LETTER_PAGE, after)
        .await
        .map_err(ssr::to_message)?;
    let items = page
        .items
        .into_iter()
        .map(|letter| DeadLetterRow {
            id: letter.id,
            stream: letter.stream.to_string(),
            at: letter.at,
            error: letter.error,
            deliveries: letter.deliveries,
            order_id: letter.order_id,
        })
        .collect();
    Ok(DeadLetterPage { items, next_cursor: page.next_cursor })
}

/// Puts a dead letter back on its stream, to be processed once more.
#[server(endpoint = "retry_dead_letter")]
pub async fn retry_dead_letter(id: String) -> Result<(), ShopError> {
    let shop = ssr::shop_for_admin_or("Sign in as admin to retry dead letters.").await?;
    let id = ssr::dead_letter_id(&shop, &id)?;
    store::dead_letters::retry(&shop.connection(), shop.layout(), id).await.map_err(ssr::dead_letter_message)?;
    Ok(())
}

/// Removes a dead letter for good.
#[server(endpoint = "discard_dead_letter")]
pub async fn discard_dead_letter(id: String) -> Result<(), ShopError> {
    let shop = ssr::shop_for_admin_or("Sign in as admin to discard dead letters.").await?;
    let id = ssr::dead_letter_id(&shop, &id)?;
    store::dead_letters::discard(&shop.connection(), shop.layout(), id).await.map_err(ssr::dead_letter_message)
}

/// A page of the order list, newest first: every order, or those in
/// `status`, and those `search` finds (an order by its id, the orders whose
/// id starts with it when it is 8 characters of an id or more, or else the
/// orders of the products whose name contains it), after `cursor`.
#[server(endpoint = "orders_page")]
pub async fn orders_page(
    status: Option<String>,
    search: Option<String>,
    cursor: Option<String>,
) -> Result<OrderPage, ShopError> {
    let shop = ssr::shop()?;
    let status = match status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => Some(
            text.parse::<OrderStatus>()
                .map_err(|e| ssr::refuse(http::StatusCode::UNPROCESSABLE_ENTITY, &format!("status: {e}")))?,
        ),
        None => None,
    };
    let request = ssr::page_request(ORDER_PAGE, cursor.as_deref())?;
    let search = search.as_deref().map(str::trim).unwrap_or_default();
    let mut narrowed = false;
    let (page, matched) = if search.is_empty() {
        let filter = store::OrderFilter { status, ..Default::default() };
        (shop.orders_page_where(&request, &filter).await.map_err(ssr::to_message)?, Matched::All)
    } else if let Ok(id) = Id::parse(search) {
        let found = match shop.order(&id).await {
            Ok(order) => Some(order).filter(|o| status.is_none_or(|s| o.status == s) && request.after.is_none()),
            Err(store::StoreError::NotFound { .. }) => None,
            Err(other) => return Err(ssr::to_message(other)),
        };
        (Page { items: found.into_iter().collect(), next_cursor: None }, Matched::Order(id))
    } else {
        let by_id = match domain::id::is_id_prefix(search) {
            true => {
                let start = search.to_ascii_uppercase();
                let filter = store::OrderFilter { status, id_start: Some(start.clone()), ..Default::default() };
                let page = shop.orders_page_where(&request, &filter).await.map_err(ssr::to_message)?;
                // No order starts so: it may be a word of a product's name.
                (!page.items.is_empty()).then_some((page, Matched::IdStart(start)))
            }
            false => None,
        };
        match by_id {
            Some(found) => found,
            None => {
                let (products, more) = shop
                    .matching_products(search, domain::search::MAX_MATCHED_PRODUCTS)
                    .await
                    .map_err(ssr::to_message)?;
                narrowed = more;
                let page = if products.is_empty() {
                    Page { items: Vec::new(), next_cursor: None }
                } else {
                    let filter = store::OrderFilter { status, products: Some(products.clone()), id_start: None };
                    shop.orders_page_where(&request, &filter).await.map_err(ssr::to_message)?
                };
                (page, Matched::Products(products))
            }
        }
    };
    let rows = ssr::with_names(&shop, page.items).await?;
    Ok(OrderPage { rows, next_cursor: page.next_cursor, matched, narrowed })
}

/// The orders with these ids, with their products' names (at most
/// [`MAX_ORDERS_BY_ID`]): those the feed reported that belong in the list.
#[server(endpoint = "orders_with_ids")]
pub async fn orders_with_ids(ids: Vec<Id>) -> Result<Vec<OrderDetail>, ShopError> {
    if ids.len() > MAX_ORDERS_BY_ID {
        let message = format!("ids: at most {MAX_ORDERS_BY_ID}");
        return Err(ssr::refuse(http::StatusCode::UNPROCESSABLE_ENTITY, &message));
    }
    let shop = ssr::shop()?;
    let orders = shop.orders_with_ids(&ids).await.map_err(ssr::to_message)?;
    ssr::with_names(&shop, orders).await
}

/// How many orders are in each status.
#[server(endpoint = "status_counts")]
pub async fn status_counts() -> Result<OrderCounts, ShopError> {
    let at = store::now_ms();
    let counts = ssr::shop()?.status_counts().await.map_err(ssr::to_message)?;
    Ok(OrderCounts { at, counts })
}

/// A page of the warehouse table, newest first: every product, or those
/// whose name contains `search`, after `cursor`.
#[server(endpoint = "products_page")]
pub async fn products_page(search: Option<String>, cursor: Option<String>) -> Result<Page<Product>, ShopError> {
    let request = ssr::page_request(PRODUCT_PAGE, cursor.as_deref())?;
    let search = search.unwrap_or_default();
    ssr::shop()?.search_products(&search, &request, true).await.map_err(ssr::to_message)
}

/// Whether the shop answers (Redis reachable for every partition): what a
/// page that saw it unavailable asks until it is back.
#[server(endpoint = "shop_ready")]
pub async fn shop_ready() -> Result<(), ShopError> {
    // Asked every second during an outage: refused without a log line each time.
    match ssr::shop()?.ping().await {
        Ok(()) => Ok(()),
        Err(_) => Err(ssr::unavailable()),
    }
}

//! The shop's service layer: products and orders.
//!
//! The REST API and the Leptos server functions both call these methods, so
//! validation, pricing and storage rules exist once.

use std::collections::HashMap;

use domain::page::MAX_LIMIT;
use domain::product::MAX_STOCK;
use domain::{quote, Cents, NewProduct, Order, OrderStatus, Page, PageRequest, Product, Quantity, Restock};
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use crate::admin::AdminGate;
use crate::config::Config;
use crate::error::{StoreError, StoreResult};
use crate::ids::{is_id, new_id};
use crate::{connection, keys, now_ms, scripts};

/// Handle to the shop's state in Redis; cheap to clone.
#[derive(Clone)]
pub struct Shop {
    conn: ConnectionManager,
    /// How long the `order-status` feed is kept (approximately), in entries.
    status_maxlen: u64,
    /// How long an idempotency key is remembered, in seconds.
    idempotency_window_secs: u64,
    admin: AdminGate,
}

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// An order placed, or found again by its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub order: Order,
    /// Whether an earlier request with the same idempotency key created it.
    pub replayed: bool,
}

/// A product created, or found again by its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedProduct {
    pub product: Product,
    /// Whether an earlier request with the same idempotency key created it.
    pub replayed: bool,
}

type Fields = HashMap<String, String>;

impl Shop {
    /// A shop on the Redis of `config`; connects lazily, so Redis may still be down.
    pub fn new(config: &Config) -> StoreResult<Shop> {
        let conn = connection::connect(&config.redis_url)?;
        Ok(Shop {
            admin: AdminGate::new(config.admin_token.as_ref(), conn.clone()),
            conn,
            status_maxlen: config.stream_maxlen,
            idempotency_window_secs: config.idempotency_window.as_secs(),
        })
    }

    /// The shared connection, for callers that need raw access (health checks, feeds).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The check warehouse changes pass; the edges (REST, server functions) ask it.
    pub fn admin(&self) -> &AdminGate {
        &self.admin
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> StoreResult<()> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Adds a product to the warehouse.
    pub async fn create_product(&self, new: NewProduct) -> StoreResult<Product> {
        Ok(self.create_product_once(new, None).await?.product)
    }

    /// [`Shop::create_product`] that creates at most one product per
    /// idempotency key within the idempotency window: a retry (even one
    /// racing the first attempt) gets the product the first attempt created,
    /// as it was then.
    pub async fn create_product_once(
        &self,
        new: NewProduct,
        idempotency_key: Option<&str>,
    ) -> StoreResult<CreatedProduct> {
        if let Some(key) = idempotency_key {
            validate_idempotency_key(key)?;
        }
        let product = Product { id: new_id(), name: new.name, price: new.price, quantity: new.quantity };
        let snapshot = serde_json::to_string(&product)
            .map_err(|e| StoreError::Corrupt { key: keys::product(&product.id), detail: e.to_string() })?;
        let idempotency = idempotency_key.map(|key| (key, self.idempotency_window_secs));
        let outcome: Vec<String> =
            scripts::invoke(&mut self.conn.clone(), &scripts::create_product(&product, &snapshot, idempotency)).await?;
        if let (Some("replayed"), Some(earlier)) = (outcome.first().map(String::as_str), outcome.get(1)) {
            let key = keys::product_idempotency(idempotency_key.unwrap_or_default());
            let earlier: Product = serde_json::from_str(earlier)
                .map_err(|e| StoreError::Corrupt { key: key.clone(), detail: e.to_string() })?;
            if (&earlier.name, earlier.price, earlier.quantity) != (&product.name, product.price, product.quantity) {
                return Err(StoreError::invalid(
                    "Idempotency-Key",
                    "this key was already used for a different product; use a new key for a new product",
                ));
            }
            tracing::info!(product_id = %earlier.id, "product request replayed by idempotency key");
            return Ok(CreatedProduct { product: earlier, replayed: true });
        }
        tracing::info!(product_id = %product.id, name = %product.name, "product created");
        Ok(CreatedProduct { product, replayed: false })
    }

    /// Adds units to a product's stock, atomically and never past
    /// [`domain::product::MAX_STOCK`]; returns the product as it is now.
    pub async fn restock(&self, id: &str, restock: Restock) -> StoreResult<Product> {
        let not_found = || StoreError::NotFound { kind: "product", id: id.to_string() };
        if !is_id(id) {
            return Err(not_found());
        }
        let outcome: Vec<String> =
            scripts::invoke(&mut self.conn.clone(), &scripts::restock(id, restock.units(), MAX_STOCK)).await?;
        match (outcome.first().map(String::as_str), outcome.get(1)) {
            (Some("restocked"), Some(stock)) => {
                tracing::info!(product_id = %id, units = restock.units(), stock = %stock, "product restocked");
                self.product(id).await
            }
            (Some("ceiling"), Some(stock)) => {
                let stock = stock.parse().unwrap_or(MAX_STOCK);
                Err(restock
                    .apply(stock)
                    .err()
                    .map(StoreError::from)
                    .unwrap_or_else(|| StoreError::invalid("quantity", format!("stock would pass {MAX_STOCK}"))))
            }
            _ => Err(not_found()),
        }
    }

    /// One product, or [`StoreError::NotFound`].
    pub async fn product(&self, id: &str) -> StoreResult<Product> {
        let (key, fields) = self.hash("product", id, keys::product).await?;
        parse_product(&key, &fields)
    }

    /// All products, oldest first (at most [`MAX_LIMIT`]).
    pub async fn products(&self) -> StoreResult<Vec<Product>> {
        Ok(self.products_page(&PageRequest::first(MAX_LIMIT)).await?.items)
    }

    /// One page of products, oldest first.
    pub async fn products_page(&self, request: &PageRequest) -> StoreResult<Page<Product>> {
        let ids = self.ids_by_lex(keys::PRODUCTS, request, false).await?;
        let hashes = self.hashes(ids.iter().map(|id| keys::product(id))).await?;
        let products = hashes.iter().map(|(key, fields)| parse_product(key, fields)).collect::<StoreResult<_>>()?;
        Ok(Page::from_fetched(products, request.limit, |p: &Product| &p.id))
    }

    /// Removes a product. Orders for it still in flight are refunded by the warehouse.
    pub async fn delete_product(&self, id: &str) -> StoreResult<()> {
        let key = keys::product(id);
        let (deleted,): (u32,) = redis::pipe()
            .atomic()
            .del(&key)
            .zrem(keys::PRODUCTS, id)
            .ignore()
            .query_async(&mut self.conn.clone())
            .await?;
        if deleted == 0 {
            return Err(StoreError::NotFound { kind: "product", id: id.to_string() });
        }
        tracing::info!(product_id = %id, "product deleted");
        Ok(())
    }

    /// Prices and saves an order as `pending`, with its outbox entry, in one
    /// atomic step; the workers take it from there.
    pub async fn place_order(&self, product_id: &str, quantity: Quantity) -> StoreResult<Order> {
        Ok(self.place_order_once(product_id, quantity, None).await?.order)
    }

    /// [`Shop::place_order`] that creates at most one order per idempotency
    /// key within the idempotency window: a retry (even one racing the first
    /// attempt) gets the order the first attempt created.
    pub async fn place_order_once(
        &self,
        product_id: &str,
        quantity: Quantity,
        idempotency_key: Option<&str>,
    ) -> StoreResult<Placed> {
        if let Some(key) = idempotency_key {
            validate_idempotency_key(key)?;
        }
        // The price may change between reading and saving (a product deleted
        // and re-created never reuses an id, but prices may become editable);
        // the script refuses a stale price and we price again.
        for _ in 0..3 {
            let product = match self.product(product_id).await {
                Ok(product) => product,
                // The product may be gone while the order made for this key lives on.
                Err(StoreError::NotFound { .. }) if idempotency_key.is_some() => {
                    return match self.earlier_order(idempotency_key.unwrap_or_default()).await? {
                        Some(order) => self.replayed(order, product_id, quantity),
                        None => Err(StoreError::NotFound { kind: "product", id: product_id.to_string() }),
                    };
                }
                Err(error) => return Err(error),
            };
            let quote = quote(product.price, quantity)
                .ok_or_else(|| StoreError::invalid("quantity", "the order's total is too large"))?;
            let now = now_ms();
            let order = Order {
                id: new_id(),
                product_id: product.id.clone(),
                price: quote.unit_price,
                fee: quote.fee,
                total: quote.total,
                quantity,
                status: OrderStatus::Pending,
                refund_reason: None,
                created_at: now,
                updated_at: now,
            };
            let placed = scripts::PlacedOrder {
                order_id: &order.id,
                product_id: &order.product_id,
                unit_price: order.price.0,
                quantity: quantity.get(),
                fee: order.fee.0,
                total: order.total.0,
                now,
                idempotency: idempotency_key.map(|key| (key, self.idempotency_window_secs)),
            };
            let outcome: Vec<String> =
                scripts::invoke(&mut self.conn.clone(), &scripts::place_order(&placed, self.status_maxlen)).await?;
            match outcome.first().map(String::as_str) {
                Some("placed") => {
                    tracing::info!(order_id = %order.id, product_id = %order.product_id, quantity = quantity.get(), total = %order.total, "order placed");
                    return Ok(Placed { order, replayed: false });
                }
                Some("replayed") => {
                    let earlier = self.order(outcome.get(1).map(String::as_str).unwrap_or_default()).await?;
                    return self.replayed(earlier, product_id, quantity);
                }
                Some("no_product") => return Err(StoreError::NotFound { kind: "product", id: product_id.to_string() }),
                _ => continue,
            }
        }
        Err(StoreError::invalid("product_id", "the product's price keeps changing; try again"))
    }

    async fn earlier_order(&self, idempotency_key: &str) -> StoreResult<Option<Order>> {
        let earlier: Option<String> = self.conn.clone().get(keys::order_idempotency(idempotency_key)).await?;
        match earlier {
            Some(id) => Ok(Some(self.order(&id).await?)),
            None => Ok(None),
        }
    }

    /// The earlier order for a key, provided the retry asks for the same thing.
    fn replayed(&self, order: Order, product_id: &str, quantity: Quantity) -> StoreResult<Placed> {
        if order.product_id != product_id || order.quantity != quantity {
            return Err(StoreError::invalid(
                "Idempotency-Key",
                "this key was already used for a different order; use a new key for a new order",
            ));
        }
        tracing::info!(order_id = %order.id, "order request replayed by idempotency key");
        Ok(Placed { order, replayed: true })
    }

    /// One order, or [`StoreError::NotFound`].
    pub async fn order(&self, id: &str) -> StoreResult<Order> {
        let (key, fields) = self.hash("order", id, keys::order).await?;
        parse_order(&key, &fields)
    }

    /// The hash of the `kind` with `id`, or [`StoreError::NotFound`]; an id
    /// that is not one of ours is not looked up at all.
    async fn hash(&self, kind: &'static str, id: &str, key_of: fn(&str) -> String) -> StoreResult<(String, Fields)> {
        let not_found = || StoreError::NotFound { kind, id: id.to_string() };
        if !is_id(id) {
            return Err(not_found());
        }
        let key = key_of(id);
        let fields: Fields = self.conn.clone().hgetall(&key).await?;
        if fields.is_empty() {
            return Err(not_found());
        }
        Ok((key, fields))
    }

    /// All orders, newest first (at most [`MAX_LIMIT`]).
    pub async fn orders(&self) -> StoreResult<Vec<Order>> {
        self.newest_orders(MAX_LIMIT).await
    }

    /// The newest `limit` orders, newest first.
    pub async fn newest_orders(&self, limit: usize) -> StoreResult<Vec<Order>> {
        let stop = isize::try_from(limit).unwrap_or(isize::MAX).saturating_sub(1);
        let ids: Vec<String> = self.conn.clone().zrevrange(keys::ORDERS, 0, stop).await?;
        let hashes = self.hashes(ids.iter().map(|id| keys::order(id))).await?;
        hashes.iter().map(|(key, fields)| parse_order(key, fields)).collect()
    }

    /// One page of orders, newest first.
    pub async fn orders_page(&self, request: &PageRequest) -> StoreResult<Page<Order>> {
        let ids = self.ids_by_lex(keys::ORDERS, request, true).await?;
        let hashes = self.hashes(ids.iter().map(|id| keys::order(id))).await?;
        let orders = hashes.iter().map(|(key, fields)| parse_order(key, fields)).collect::<StoreResult<_>>()?;
        Ok(Page::from_fetched(orders, request.limit, |o: &Order| &o.id))
    }

    /// The ids of one page of an index, plus one more when there is a next
    /// page: after `request.after` (exclusive), oldest first or newest first.
    /// Every member has score 0, so the index sorts by id: by creation time.
    async fn ids_by_lex(&self, index: &str, request: &PageRequest, newest_first: bool) -> StoreResult<Vec<String>> {
        let (beginning, end) = if newest_first { ("+", "-") } else { ("-", "+") };
        let start = request.after.as_ref().map(|id| format!("({id}")).unwrap_or_else(|| beginning.to_string());
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(index).arg(start).arg(end).arg("BYLEX");
        if newest_first {
            cmd.arg("REV");
        }
        Ok(cmd.arg("LIMIT").arg(0).arg(request.limit + 1).query_async(&mut self.conn.clone()).await?)
    }

    /// HGETALL of many keys in one round trip; keys that vanished meanwhile are left out.
    async fn hashes(&self, keys: impl Iterator<Item = String>) -> StoreResult<Vec<(String, Fields)>> {
        let keys: Vec<String> = keys.collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.hgetall(key);
        }
        let hashes: Vec<Fields> = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(keys.into_iter().zip(hashes).filter(|(_, fields)| !fields.is_empty()).collect())
    }
}

/// Idempotency keys: 1 to 200 visible ASCII characters (a UUID, a ULID, ...).
fn validate_idempotency_key(key: &str) -> StoreResult<()> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StoreError::invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters"),
        ));
    }
    Ok(())
}

fn get<'a>(key: &str, fields: &'a Fields, name: &str) -> StoreResult<&'a str> {
    fields
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt { key: key.to_string(), detail: format!("no field {name}") })
}

fn number<T: std::str::FromStr>(key: &str, fields: &Fields, name: &str) -> StoreResult<T> {
    let text = get(key, fields, name)?;
    text.parse().map_err(|_| StoreError::Corrupt { key: key.to_string(), detail: format!("{name} = {text:?}") })
}

fn parse_product(key: &str, fields: &Fields) -> StoreResult<Product> {
    Ok(Product {
        id: get(key, fields, "id")?.to_string(),
        name: get(key, fields, "name")?.to_string(),
        price: Cents(number(key, fields, "price")?),
        quantity: number(key, fields, "quantity")?,
    })
}

fn parse_order(key: &str, fields: &Fields) -> StoreResult<Order> {
    let corrupt = |detail: String| StoreError::Corrupt { key: key.to_string(), detail };
    Ok(Order {
        id: get(key, fields, "id")?.to_string(),
        product_id: get(key, fields, "product_id")?.to_string(),
        price: Cents(number(key, fields, "price")?),
        fee: Cents(number(key, fields, "fee")?),
        total: Cents(number(key, fields, "total")?),
        quantity: Quantity::new(number(key, fields, "quantity")?).map_err(|e| corrupt(e.to_string()))?,
        status: get(key, fields, "status")?
            .parse()
            .map_err(|e: domain::order::UnknownStatus| corrupt(e.to_string()))?,
        refund_reason: fields
            .get("refund_reason")
            .filter(|_| fields.get("status").map(String::as_str) == Some("refunded"))
            .cloned(),
        created_at: number(key, fields, "created_at")?,
        updated_at: number(key, fields, "updated_at")?,
    })
}

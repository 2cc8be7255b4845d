//! Every request's work in Redis is bounded, whatever it asks for: the
//! worst searches and filters anyone can send, on a shop of 100,000 products
//! and 1,000,000 orders, each held under a fixed number of Redis commands
//! (counted by Redis itself, `INFO commandstats`, Lua's commands included).

mod common;

use std::time::Instant;

use common::{config_for, start_serving};
use domain::{NewProduct, OrderStatus};
use reqwest::StatusCode;
use store::Shop;
use testkit::Backend;

const PRODUCTS: usize = 100_000;
const ORDERS: usize = 1_000_000;

/// A page render's bound: its lists (a page of orders with their products'
/// names, a page of products, the counts by status) and an order search's
/// products.
const PAGE_BOUND: u64 = 1_500;
/// A search's bound (a server function, without the rest of the page).
const SEARCH_BOUND: u64 = 1_000;
/// A REST list of 1,000 items: an index range per partition (twice at
/// most) and one read per item.
const LIST_BOUND: u64 = 1_100;

/// Every command Redis has executed so far, but `INFO` itself.
async fn commands(conn: &store::Redis) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn.clone()).await.unwrap();
    info.lines()
        .filter(|line| line.starts_with("cmdstat_") && !line.starts_with("cmdstat_info:"))
        .filter_map(|line| line.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
        .sum()
}

/// A request: its name, path, form (a server function's), and its bound.
type Case = (&'static str, String, Option<Vec<(&'static str, String)>>, u64);

const ADJECTIVES: [&str; 8] = ["Oak", "Walnut", "Teak", "Birch", "Cedar", "Pine", "Maple", "Ash"];
const NOUNS: [&str; 8] = ["chair", "table", "desk", "stool", "bench", "shelf", "lamp", "cabinet"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worst_requests_cost_a_bounded_number_of_redis_commands() {
    let app = start_serving(Backend::Single, |_| {}, |_| {}, |_| {}).await;
    let shop = Shop::new(&config_for(&app.redis)).unwrap();
    let conn = shop.connection();

    // Every name has "classic" (the commonest word); the rest spread over 64 pairs.
    let started = Instant::now();
    let names = (0..PRODUCTS).map(|n| {
        let name = format!("Classic {} {} {n}", ADJECTIVES[n % 8], NOUNS[n / 8 % 8]);
        NewProduct::parse(&name, "1", "1000").unwrap()
    });
    let products = store::bulk::create_products(&conn, shop.layout(), names.collect()).await.unwrap();
    let ids: Vec<domain::Id> = products.iter().map(|p| p.id.clone()).collect();
    let status_of = |n: usize| OrderStatus::ALL[n % 4];
    store::bulk::write_orders(&conn, shop.layout(), &ids, ORDERS, status_of, |_| {}).await.unwrap();
    println!("seeded {PRODUCTS} products and {ORDERS} orders in {:.1} s", started.elapsed().as_secs_f64());

    let one = &products[PRODUCTS / 2];
    let (_, some) = app.get("/orders?limit=1").await;
    let an_order = some[0]["id"].as_str().unwrap().to_string();
    let cases: Vec<Case> = vec![
        // Page renders: no match, one letter, the commonest word, two words of which one
        // matches every product and the other none, every status with a search.
        ("no match", "/?q=zzqqxx".into(), None, PAGE_BOUND),
        ("one letter", "/?q=e".into(), None, PAGE_BOUND),
        ("the commonest word", "/?q=classic".into(), None, PAGE_BOUND),
        ("common and absent", "/?q=classic+zzqq".into(), None, PAGE_BOUND),
        ("a prefix of everything", "/?q=cl&product=cl".into(), None, PAGE_BOUND),
        ("pending, common", "/?status=pending&q=classic".into(), None, PAGE_BOUND),
        ("one product by its name", format!("/?q={}", one.name.replace(' ', "+")), None, PAGE_BOUND),
        ("completed, a rarer word", "/?status=completed&q=walnut+desk".into(), None, PAGE_BOUND),
        ("fulfilled, absent", "/?status=fulfilled&q=zzqqxx".into(), None, PAGE_BOUND),
        ("refunded, no search", "/?status=refunded".into(), None, PAGE_BOUND),
        ("an order's page", format!("/order/{an_order}"), None, PAGE_BOUND),
        // The searches the page calls, alone.
        (
            "orders search",
            "/api/orders_page".into(),
            Some(vec![("status", "pending".into()), ("search", "classic zzqq".into())]),
            SEARCH_BOUND,
        ),
        (
            "orders search, two words",
            "/api/orders_page".into(),
            Some(vec![("status", "completed".into()), ("search", "walnut desk".into())]),
            SEARCH_BOUND,
        ),
        ("products search", "/api/products_page".into(), Some(vec![("search", "classic zzqq".into())]), SEARCH_BOUND),
        (
            "products, two words",
            "/api/products_page".into(),
            Some(vec![("search", "walnut desk".into())]),
            SEARCH_BOUND,
        ),
        ("products prefix", "/api/products_page".into(), Some(vec![("search", "ch".into())]), SEARCH_BOUND),
        // REST lists of the largest page.
        ("1,000 orders", "/orders?limit=1000".into(), None, LIST_BOUND),
        ("1,000 products", "/products?limit=1000".into(), None, LIST_BOUND),
    ];
    let mut worst = Vec::new();
    for (name, path, form, bound) in cases {
        let before = commands(&conn).await;
        let request = match &form {
            Some(form) => app.http.post(app.url(&path)).form(form),
            None => app.http.get(app.url(&path)),
        };
        let started = Instant::now();
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        if name == "one product by its name" {
            assert!(body.contains(&one.name), "a whole name finds its product at once");
        }
        let took = started.elapsed();
        let spent = commands(&conn).await - before;
        println!("{name:<26} {path:<60} {status} {spent:>6} commands {:>7.1} ms", took.as_secs_f64() * 1000.0);
        assert!(status.is_success() || status == StatusCode::UNPROCESSABLE_ENTITY, "{name}: {status} {body}");
        assert!(spent <= bound, "{name} ({path}) cost {spent} Redis commands, over its bound of {bound}");
        worst.push((spent, name));
    }
    // One letter is too short to look up, and says so.
    let page = app.http.get(app.url("/?q=e")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("type at least 2 letters of a word"), "the page says why it found nothing");
    worst.sort();
    println!("the costliest request: {:?}", worst.last());
}

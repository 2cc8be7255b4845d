//! Stockflow's UI: one page to run the shop, rendered on the server and
//! hydrated in the browser.
//!
//! # Layout
//! - [`api`]: server functions, thin edges over the shop's service layer.
//! - [`live`]: the server-sent events feed that updates the page in place.
//! - [`products`]: the warehouse panel (stock, add, restock, delete, admin sign-in).
//! - [`orders`]: the order form with its price preview, and the live order list.

pub mod api;
pub mod live;
pub mod orders;
pub mod products;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::StaticSegment;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/stockflow.css"/>
        <Title text="Stockflow"/>
        <Router>
            <Routes fallback=|| view! { <p class="notice">"Page not found."</p> }>
                <Route path=StaticSegment("") view=ShopPage/>
            </Routes>
        </Router>
    }
}

/// Everything on one page: warehouse, order form and the live order list.
#[component]
fn ShopPage() -> impl IntoView {
    let feed = live::LiveFeed::new();
    provide_context(feed);

    let warehouse = products::WarehouseActions::new();
    let place_order = ServerAction::<api::PlaceOrder>::new();

    let products = Resource::new(move || (warehouse.version(), feed.refresh.get()), |_| api::list_products());
    let orders = Resource::new(move || (place_order.version().get(), feed.refresh.get()), |_| api::list_orders());

    #[cfg(feature = "hydrate")]
    Effect::new(move |started: Option<()>| {
        if started.is_none() {
            live::connect(feed, move |order_id| {
                orders
                    .with_untracked(|orders| matches!(orders, Some(Ok(list)) if list.iter().any(|o| o.id == order_id)))
            });
        }
    });

    view! {
        <header class="topbar">
            <h1>"Stockflow"</h1>
            <p class="tagline">"Orders, stock and refunds, live."</p>
            <span class="live" class:on=move || feed.connected.get() data-testid="live-indicator">
                {move || if feed.connected.get() { "live" } else { "connecting…" }}
            </span>
        </header>
        <main class="grid">
            <products::Warehouse products actions=warehouse/>
            <orders::OrderForm products place_order/>
            <orders::OrderList orders products/>
        </main>
    }
}

//! Stockflow's UI: one page to run the shop, rendered on the server and
//! hydrated in the browser.
//!
//! # Layout
//! - [`api`]: server functions, thin edges over the shop's service layer.
//! - [`live`]: the server-sent events feed that updates the page in place.
//! - [`products`]: the warehouse panel (stock, add, restock, delete, admin sign-in).
//! - [`orders`]: the order form with its price preview, and the live order list.
//! - [`order_detail`]: one order's page, `/order/{id}`, with its live timeline.
//! - [`dead_letters`]: the dead letters, for admins: retry or discard them.
//! - [`util`]: times, ids and idempotency keys for display and forms.

pub mod api;
pub mod dead_letters;
pub mod live;
pub mod order_detail;
pub mod orders;
pub mod products;
pub mod util;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{ParamSegment, StaticSegment};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                // The style file's name carries its hash when the build
                // hashes the bundle's files (see server/src/assets.rs).
                <HashedStylesheet options=options.clone() id="leptos"/>
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

/// Bumped when this browser signs in or out as admin.
#[derive(Clone, Copy)]
pub struct Session {
    pub changed: RwSignal<u64>,
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let feed = live::LiveFeed::new();
    provide_context(feed);
    let session = Session { changed: RwSignal::new(0) };
    provide_context(session);

    // Only in the browser: the server calls `App` outside any page too (to
    // list the routes), and a workspace-wide test build turns `hydrate` on
    // for the server as well.
    #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
    Effect::new(move |started: Option<()>| {
        if started.is_none() {
            live::connect(feed);
        }
    });

    view! {
        <Title text="Stockflow"/>
        <Router>
            <header class="topbar">
                <h1><a href="/">"Stockflow"</a></h1>
                <p class="tagline">"Orders, stock and refunds, live."</p>
                <nav class="nav">
                    <DeadLetterLink/>
                </nav>
                <span class="live" class:on=move || feed.connected.get() data-testid="live-indicator">
                    {move || if feed.connected.get() { "live" } else { "connecting…" }}
                </span>
            </header>
            <Routes fallback=|| view! { <p class="notice">"Page not found."</p> }>
                <Route path=StaticSegment("") view=ShopPage/>
                <Route path=(StaticSegment("order"), ParamSegment("id")) view=order_detail::OrderPage/>
                <Route path=StaticSegment("dead-letters") view=dead_letters::DeadLettersPage/>
            </Routes>
        </Router>
    }
}

/// "Dead letters (N)" in the header, kept up to date: on a dead-lettering
/// the feed reports, after a retry or discard, and on sign-in.
#[component]
fn DeadLetterLink() -> impl IntoView {
    let feed = expect_context::<live::LiveFeed>();
    let session = expect_context::<Session>();
    let count =
        Resource::new(move || (feed.dead_letters_changed.get(), session.changed.get()), |_| api::dead_letter_count());
    view! {
        <a href="/dead-letters" data-testid="dead-letter-link">
            "Dead letters"
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    count.await.ok().flatten().map(|n| view! {
                        " (" <span data-testid="dead-letter-count">{n}</span> ")"
                    })
                })}
            </Transition>
        </a>
    }
}

/// The shop: warehouse, order form and the live order list.
#[component]
fn ShopPage() -> impl IntoView {
    let feed = expect_context::<live::LiveFeed>();

    let warehouse = products::WarehouseActions::new();
    let place_order = ServerAction::<api::PlaceOrder>::new();

    let products = Resource::new(move || (warehouse.version(), feed.refresh.get()), |_| api::list_products());
    let orders = Resource::new(move || (place_order.version().get(), feed.refresh.get()), |_| api::list_orders());

    // Events of orders not in the list make the list refresh.
    Effect::new(move |_| {
        if let Some(Ok(list)) = orders.get() {
            feed.listed.set_value(Some(list.iter().map(|o| o.id.clone()).collect()));
        }
    });
    on_cleanup(move || feed.listed.set_value(None));

    view! {
        <main class="grid">
            <products::Warehouse products actions=warehouse/>
            <orders::OrderForm products place_order/>
            <orders::OrderList orders products/>
        </main>
    }
}

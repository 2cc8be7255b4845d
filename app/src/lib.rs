//! Stockflow's UI: one page to run the shop, rendered on the server and
//! hydrated in the browser.
//!
//! # Layout
//! - [`api`]: server functions, thin edges over the shop's service layer.
//! - [`live`]: the server-sent events feed that updates the page in place,
//!   and the recovery from an outage.
//! - [`announce`]: the live region that tells screen readers what changed.
//! - [`products`]: the warehouse panel (search, pages, live stock, add,
//!   restock, delete, admin sign-in).
//! - [`orders`]: the order form with its price preview and live stock.
//! - [`picker`]: the order form's product picker, a combobox on the product search.
//! - [`order_list`]: the live order list: status filter with live counts,
//!   search, pages.
//! - [`counts`]: the counts per status, a snapshot plus the feed's moves.
//! - [`paging`]: "Load more" on top of a first page rendered on the server.
//! - [`order_detail`]: one order's page, `/order/{id}`, with its live timeline.
//! - [`dead_letters`]: the dead letters, for admins: retry or discard them.
//! - [`util`]: times, ids, counts, query strings and idempotency keys.

pub mod announce;
pub mod api;
pub mod counts;
pub mod dead_letters;
pub mod error;
pub mod live;
pub mod order_detail;
pub mod order_list;
pub mod orders;
pub mod paging;
pub mod picker;
pub mod products;
pub mod util;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{ParamSegment, StaticSegment};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // Taken before the page's lists are read (they are read as `App` is built).
    #[cfg(feature = "ssr")]
    let rendered_at = store::now_ms().to_string();
    #[cfg(not(feature = "ssr"))]
    let rendered_at = String::new();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name=live::RENDERED_AT content=rendered_at/>
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
    let announcer = announce::Announcer::new();
    provide_context(announcer);

    // Only in the browser: the server calls `App` outside any page too (to
    // list the routes), and a workspace-wide test build turns `hydrate` on
    // for the server as well.
    #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
    {
        Effect::new(move |started: Option<()>| {
            if started.is_none() {
                // Effects run once the page is hydrated: it answers from now on.
                util::mark("stockflow:interactive");
                live::connect(feed);
            }
        });
        live::watch_outages(feed);
    }

    view! {
        <Title text="Stockflow"/>
        <Router>
            <a class="skip" href="#place-order" rel="external">"Skip to the order form"</a>
            <a class="skip" href="#orders" rel="external">"Skip to the orders"</a>
            <header class="topbar">
                <h1><a href="/">"Stockflow"</a></h1>
                <p class="tagline">"Orders, stock and refunds, live."</p>
                <nav class="nav">
                    <DeadLetterLink/>
                </nav>
                <span class="live" class:on=move || feed.link.get() == live::Link::Live data-testid="live-indicator">
                    {move || feed.link.get().label()}
                </span>
            </header>
            <announce::LiveRegion announcer/>
            {move || feed.outage.get().then(|| view! {
                <p class="outage" role="alert" data-testid="outage">
                    "The shop is unavailable right now. This page will catch up by itself as soon as it is back."
                </p>
            })}
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
    let warehouse = products::WarehouseActions::new();
    let place_order = ServerAction::<api::PlaceOrder>::new();

    view! {
        <main class="grid">
            <products::Warehouse actions=warehouse/>
            <orders::OrderForm place_order/>
            <order_list::OrderList place_order/>
        </main>
    }
}

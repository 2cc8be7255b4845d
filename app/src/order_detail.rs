//! One order's page, `/order/{id}`: what was ordered, what it costs, and
//! every step of its life with its time, growing live from the feed.
//! Rendered on the server, so a reload or a shared link shows the same.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::{get_order, OrderDetail};
use crate::live::{is_dead_lettered, LiveFeed};
use crate::util::{short_id, Time};

#[component]
pub fn OrderPage() -> impl IntoView {
    let feed = expect_context::<LiveFeed>();
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    // The feed's reconnects refetch it too: whatever it missed meanwhile.
    let detail = Resource::new(move || (id(), feed.refresh.get()), |(id, _)| get_order(id));

    view! {
        <main class="page">
            <p class="back"><a href="/">"← All orders"</a></p>
            <Transition fallback=|| view! { <p class="muted">"Loading the order…"</p> }>
                {move || Suspend::new(async move {
                    match detail.await {
                        Ok(detail) => view! { <OrderView detail/> }.into_any(),
                        Err(error) => view! {
                            <section class="panel" aria-labelledby="order-title">
                                <h2 id="order-title">"No such order"</h2>
                                <p class="error" role="alert" data-testid="order-missing">
                                    {error.to_string()} " Check the link, or pick an order from the list."
                                </p>
                            </section>
                        }.into_any(),
                    }
                })}
            </Transition>
        </main>
    }
}

#[component]
fn OrderView(detail: OrderDetail) -> AnyView {
    let feed = expect_context::<LiveFeed>();
    let OrderDetail { order, product_name } = detail;
    let (id, listed_status, listed_reason, listed_steps) =
        (order.id.clone(), order.status, order.refund_reason.clone(), order.timeline.clone());
    let status = {
        let id = id.clone();
        Signal::derive(move || feed.status_of(&id, listed_status))
    };
    // Each new step is announced, once the page shows the order.
    let announcer = expect_context::<crate::announce::Announcer>();
    let short = short_id(&id);
    Effect::new(move |seen: Option<domain::OrderStatus>| {
        let now = status.get();
        if seen.is_some_and(|seen| seen != now) {
            announcer.say(format!("Order {short} {now}."));
        }
        now
    });
    let reason = {
        let id = id.clone();
        move || feed.refund_reason_of(&id, listed_reason.as_deref())
    };
    let steps = {
        let id = id.clone();
        move || feed.timeline_of(&id, &listed_steps)
    };
    let subtotal = order.total.0.saturating_sub(order.fee.0);
    let product = match product_name {
        Some(name) => view! { <span data-testid="order-product">{name}</span> }.into_any(),
        None => view! {
            <span class="muted" data-testid="order-product">"deleted product " <code>{short_id(&order.product_id)}</code></span>
        }
        .into_any(),
    };

    let title = view! {
        <h2 id="order-title">
            "Order " <code title=id.to_string()>{short_id(&id)}</code> " "
            <span class=move || format!("status {}", status.get()) data-testid="order-status">
                {move || status.get().to_string()}
            </span>
        </h2>
    }
    .into_any();
    let facts = view! {
        <dl class="facts">
            <dt>"Order id"</dt><dd><code>{id.to_string()}</code></dd>
            <dt>"Product"</dt><dd>{product}</dd>
            <dt>"Quantity"</dt><dd class="num" data-testid="order-quantity">{order.quantity.get()}</dd>
            <dt>"Unit price"</dt><dd class="num" data-testid="order-price">{order.price.to_string()}</dd>
            <dt>"Subtotal"</dt><dd class="num" data-testid="order-subtotal">{domain::Cents(subtotal).to_string()}</dd>
            <dt>"Fee (20%)"</dt><dd class="num" data-testid="order-fee">{order.fee.to_string()}</dd>
            <dt>"Total"</dt><dd class="num total" data-testid="order-total">{order.total.to_string()}</dd>
        </dl>
    }
    .into_any();
    let refund = move || {
        reason().map(|r| {
            let dead = is_dead_lettered(&r);
            view! {
                <p class="refund" data-testid="order-refund-reason">
                    <strong>"Refund reason: "</strong>
                    {r}
                    {dead.then(|| view! { " " <a href="/dead-letters">"(see dead letters)"</a> })}
                </p>
            }
        })
    };
    let timeline = view! {
        <ol class="timeline" data-testid="timeline">
            {move || steps().into_iter().map(|step| view! {
                <li data-step=step.step.clone()>
                    <span class=format!("step {}", step.step)>{step.step.replace('_', " ")}</span>
                    <Time at=step.at/>
                </li>
            }).collect_view()}
        </ol>
    }
    .into_any();

    view! {
        <section class="panel" aria-labelledby="order-title" data-testid="order-detail">
            {title}
            {facts}
            {refund}
            <h3>"Timeline"</h3>
            {timeline}
        </section>
    }
    .into_any()
}

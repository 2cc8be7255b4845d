//! The order form: a product picked by name ([`crate::picker`]), with a
//! price preview computed by the same pricing function the server charges
//! with, and its stock as the feed reports it.

use domain::{quote, Product, Quantity};
use leptos::prelude::*;

use crate::announce::Announcer;
use crate::api::PlaceOrder;
use crate::live::LiveFeed;
use crate::picker::ProductPicker;
use crate::util::{new_idempotency_key, short_id};

/// How long after an order is placed another click on "Place order" is
/// still the same attempt (the second click of a double click).
#[cfg(feature = "hydrate")]
const SAME_ATTEMPT: std::time::Duration = std::time::Duration::from_millis(1000);

#[component]
pub fn OrderForm(place_order: ServerAction<PlaceOrder>) -> impl IntoView {
    let feed = expect_context::<LiveFeed>();
    let announcer = expect_context::<Announcer>();
    let chosen = RwSignal::new(None::<Product>);
    let quantity = RwSignal::new("1".to_string());
    let order_error = move || place_order.value().get().and_then(|r| r.err()).and_then(|e| feed.error_to_show(&e));
    let placed = move || place_order.value().get().and_then(|r| r.ok());
    // One idempotency key per attempt, so that a double click or a retried
    // request places one order. A new attempt begins when the order changes,
    // or a moment after an order was placed: the server answers faster than
    // a person double-clicks, and the second click is the same attempt.
    let key = RwSignal::new(new_idempotency_key());
    let renew_key = move || key.set(new_idempotency_key());
    Effect::new(move |_| match place_order.value().get() {
        Some(Ok(order)) => {
            #[cfg(feature = "hydrate")]
            set_timeout(renew_key, SAME_ATTEMPT);
            #[cfg(not(feature = "hydrate"))]
            renew_key();
            announcer.say(format!("Order {} placed: {} total.", short_id(&order.id), order.total));
        }
        Some(Err(error)) => feed.note(&error),
        None => {}
    });

    view! {
        <section class="panel" id="place-order" tabindex="-1" aria-labelledby="order-title">
            <h2 id="order-title">"Place an order"</h2>
            <ActionForm action=place_order attr:class="stack" attr:data-testid="order-form">
                <input type="hidden" name="idempotency_key" prop:value=move || key.get()/>
                <ProductPicker chosen on_change=move |()| renew_key()/>
                <label>
                    "Quantity"
                    <input type="number" name="quantity" min="1" max="10000" step="1" required
                        prop:value=move || quantity.get()
                        on:input=move |ev| {
                            quantity.set(event_target_value(&ev));
                            renew_key();
                        }/>
                </label>
                <PricePreview chosen quantity/>
                <button type="submit" disabled=move || place_order.pending().get()>"Place order"</button>
                {move || order_error().map(|e| view! { <p class="error" role="alert" data-testid="order-error">{e}</p> })}
                {move || placed().map(|o| view! {
                    <p class="ok" data-testid="order-placed">"Order " <a href=format!("/order/{}", o.id)><code>{short_id(&o.id)}</code></a> " placed: " {o.total.to_string()} " total."</p>
                })}
            </ActionForm>
        </section>
    }
}

/// Unit price, subtotal, the 20% fee and the total of what is being ordered,
/// and a warning when it is more than the stock the feed last reported.
#[component]
fn PricePreview(chosen: RwSignal<Option<Product>>, quantity: RwSignal<String>) -> impl IntoView {
    let feed = expect_context::<LiveFeed>();
    let preview = move || {
        let product = chosen.get()?;
        let quantity = quantity.with(|q| Quantity::parse(q));
        Some((product, quantity))
    };
    move || match preview() {
        None => view! { <p class="muted preview">"Choose a product to see the price."</p> }.into_any(),
        Some((_, Err(error))) => {
            view! { <p class="error preview" role="alert">{format!("quantity: {error}")}</p> }.into_any()
        }
        Some((product, Ok(quantity))) => match quote(product.price, quantity) {
            None => view! { <p class="error preview">"That order is too large."</p> }.into_any(),
            Some(q) => {
                let (id, listed) = (product.id.clone(), product.quantity);
                let short = move || quantity.get() > feed.stock_of(&id, listed);
                view! {
                    <dl class="preview" data-testid="price-preview">
                        <dt>"Unit price"</dt><dd>{q.unit_price.to_string()}</dd>
                        <dt>"Subtotal"</dt><dd>{q.subtotal.to_string()}</dd>
                        <dt>"Fee (20%)"</dt><dd data-testid="preview-fee">{q.fee.to_string()}</dd>
                        <dt>"Total"</dt><dd class="total" data-testid="preview-total">{q.total.to_string()}</dd>
                    </dl>
                    {move || short().then(|| view! {
                        <p class="warning" data-testid="stock-warning">"More than in stock: this order will be refunded unless stock arrives."</p>
                    })}
                }
                .into_any()
            }
        },
    }
}

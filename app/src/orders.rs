//! The order form, with a price preview computed by the same pricing function
//! the server charges with, and the live order list.

use domain::{quote, Order, OrderStatus, Product, Quantity};
use leptos::prelude::*;

use crate::api::{error_text, PlaceOrder};
use crate::live::LiveFeed;
use crate::util::{new_idempotency_key, short_id};

type Products = Resource<Result<Vec<Product>, ServerFnError>>;
type Orders = Resource<Result<Vec<Order>, ServerFnError>>;

#[component]
pub fn OrderForm(products: Products, place_order: ServerAction<PlaceOrder>) -> impl IntoView {
    let selected = RwSignal::new(String::new());
    let quantity = RwSignal::new("1".to_string());
    let order_error = move || place_order.value().get().and_then(|r| r.err()).map(|e| error_text(&e));
    let placed = move || place_order.value().get().and_then(|r| r.ok());
    // One idempotency key per attempt: kept until an order is placed, so a
    // double click or a retried request places one order.
    let key = RwSignal::new(new_idempotency_key());
    Effect::new(move |_| {
        if let Some(Ok(_)) = place_order.value().get() {
            key.set(new_idempotency_key());
        }
    });

    view! {
        <section class="panel" aria-labelledby="order-title">
            <h2 id="order-title">"Place an order"</h2>
            <ActionForm action=place_order attr:class="stack" attr:data-testid="order-form">
                <input type="hidden" name="idempotency_key" prop:value=move || key.get()/>
                <label>
                    "Product"
                    <select name="product_id" required on:change=move |ev| selected.set(event_target_value(&ev)) prop:value=move || selected.get()>
                        <option value="">"Choose a product…"</option>
                        <Transition fallback=|| ()>
                            {move || Suspend::new(async move {
                                products.await.unwrap_or_default().into_iter().map(|p| {
                                    let label = format!("{} ({} in stock)", p.name, p.quantity);
                                    view! { <option value=p.id.clone() selected=move || selected.get() == p.id>{label}</option> }
                                }).collect_view()
                            })}
                        </Transition>
                    </select>
                </label>
                <label>
                    "Quantity"
                    <input type="number" name="quantity" min="1" max="10000" step="1" required
                        prop:value=move || quantity.get()
                        on:input=move |ev| quantity.set(event_target_value(&ev))/>
                </label>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let list = products.await.unwrap_or_default();
                        view! { <PricePreview products=list selected quantity/> }
                    })}
                </Transition>
                <button type="submit" disabled=move || place_order.pending().get()>"Place order"</button>
                {move || order_error().map(|e| view! { <p class="error" role="alert" data-testid="order-error">{e}</p> })}
                {move || placed().map(|o| view! {
                    <p class="ok" data-testid="order-placed">"Order " <a href=format!("/order/{}", o.id)><code>{short_id(&o.id)}</code></a> " placed: " {o.total.to_string()} " total."</p>
                })}
            </ActionForm>
        </section>
    }
}

/// Unit price, subtotal, the 20% fee and the total of what is being ordered.
#[component]
fn PricePreview(products: Vec<Product>, selected: RwSignal<String>, quantity: RwSignal<String>) -> impl IntoView {
    let preview = move || {
        let product = selected.with(|id| products.iter().find(|p| &p.id == id).cloned())?;
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
            Some(q) => view! {
                <dl class="preview" data-testid="price-preview">
                    <dt>"Unit price"</dt><dd>{q.unit_price.to_string()}</dd>
                    <dt>"Subtotal"</dt><dd>{q.subtotal.to_string()}</dd>
                    <dt>"Fee (20%)"</dt><dd data-testid="preview-fee">{q.fee.to_string()}</dd>
                    <dt>"Total"</dt><dd class="total" data-testid="preview-total">{q.total.to_string()}</dd>
                </dl>
                {(quantity.get() > product.quantity).then(|| view! {
                    <p class="warning">"More than in stock: this order will be refunded unless stock arrives."</p>
                })}
            }
            .into_any(),
        },
    }
}

#[component]
pub fn OrderList(orders: Orders, products: Products) -> impl IntoView {
    let feed = expect_context::<LiveFeed>();
    view! {
        <section class="panel wide" aria-labelledby="orders-title">
            <h2 id="orders-title">"Orders"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading orders…"</p> }>
                {move || Suspend::new(async move {
                    let names = products.await.unwrap_or_default();
                    match orders.await {
                        Err(error) => view! { <p class="error" role="alert">{error_text(&error)}</p> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="muted">"No orders yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <table class="orders" data-testid="orders">
                                <thead><tr>
                                    <th>"Order"</th><th>"Product"</th><th class="num">"Qty"</th>
                                    <th class="num">"Price"</th><th class="num">"Fee"</th><th class="num">"Total"</th><th>"Status"</th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|order| {
                                        let name = names.iter().find(|p| p.id == order.product_id)
                                            .map(|p| p.name.clone())
                                            .unwrap_or_else(|| format!("deleted product {}", short_id(&order.product_id)));
                                        let (id, listed) = (order.id.clone(), order.status);
                                        let (reason_id, listed_reason) = (order.id.clone(), order.refund_reason.clone());
                                        let status = Signal::derive(move || feed.status_of(&id, listed));
                                        let (href, link_label, short) =
                                            (format!("/order/{}", order.id), format!("Order {}", order.id), short_id(&order.id));
                                        let refund_reason = move || {
                                            (status.get() == OrderStatus::Refunded)
                                                .then(|| feed.refund_reason_of(&reason_id, listed_reason.as_deref()))
                                                .flatten()
                                        };
                                        view! {
                                            <tr data-order-id=order.id.clone()>
                                                <td><a href=href title=order.id.clone() aria-label=link_label><code>{short}</code></a></td>
                                                <td>{name}</td>
                                                <td class="num">{order.quantity.get()}</td>
                                                <td class="num">{order.price.to_string()}</td>
                                                <td class="num">{order.fee.to_string()}</td>
                                                <td class="num">{order.total.to_string()}</td>
                                                <td>
                                                    <span class=move || format!("status {}", status.get()) data-testid="order-status">
                                                        {move || status.get().to_string()}
                                                    </span>
                                                    {move || refund_reason().map(|r| view! { <small class="reason" data-testid="refund-reason">{r}</small> })}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

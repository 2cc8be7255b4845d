//! The warehouse panel: products newest first, a page at a time, searched by
//! name, with their live stock; the add-product form, restock and delete;
//! and the admin sign-in that guards them when the server has an
//! `ADMIN_TOKEN`.

use domain::Product;
use leptos::html;
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use crate::api::{products_page, AddProduct, AdminAccess, DeleteProduct, RestockProduct, ShopError, SignIn, SignOut};
use crate::live::LiveFeed;
use crate::paging::{merged, LoadMore, More};
use crate::util::{focus_follows_confirm, query_string};

/// The actions that change the warehouse.
#[derive(Clone, Copy)]
pub struct WarehouseActions {
    pub add: ServerAction<AddProduct>,
    pub delete: ServerAction<DeleteProduct>,
    pub restock: ServerAction<RestockProduct>,
}

impl WarehouseActions {
    pub fn new() -> WarehouseActions {
        WarehouseActions { add: ServerAction::new(), delete: ServerAction::new(), restock: ServerAction::new() }
    }

    /// Changes whenever a product is added or deleted, for refetching lists of products.
    pub fn version(&self) -> (usize, usize) {
        (self.add.version().get(), self.delete.version().get())
    }
}

impl Default for WarehouseActions {
    fn default() -> Self {
        WarehouseActions::new()
    }
}

/// Sign-in to change products, shown only when the server requires it.
#[component]
pub fn AdminSignIn() -> impl IntoView {
    let sign_in = ServerAction::<SignIn>::new();
    let sign_out = ServerAction::<SignOut>::new();
    // The rest of the page (the dead-letter count, the dead letters) follows.
    if let Some(session) = use_context::<crate::Session>() {
        Effect::new(move |seen: Option<(usize, usize)>| {
            let now = (sign_in.version().get(), sign_out.version().get());
            if seen.is_some_and(|seen| seen != now) {
                session.changed.update(|n| *n += 1);
            }
            now
        });
    }
    let access =
        Resource::new(move || (sign_in.version().get(), sign_out.version().get()), |_| crate::api::admin_status());
    let sign_in_error = move || sign_in.value().get().and_then(|r| r.err()).map(|e| e.to_string());

    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match access.await {
                    Ok(AdminAccess { required: false, .. }) | Err(_) => ().into_any(),
                    Ok(AdminAccess { signed_in: true, .. }) => view! {
                        <ActionForm action=sign_out attr:class="admin signed-in" attr:data-testid="admin-signed-in">
                            <span>"Signed in as admin."</span>
                            <button type="submit" class="link">"Sign out"</button>
                        </ActionForm>
                    }.into_any(),
                    Ok(_) => view! {
                        <ActionForm action=sign_in attr:class="admin row" attr:data-testid="admin-sign-in">
                            <label>"Admin token"
                                <input type="password" name="token" required autocomplete="current-password"/>
                            </label>
                            <button type="submit" disabled=move || sign_in.pending().get()>"Sign in"</button>
                        </ActionForm>
                        <p class="muted">"Sign in to add, restock or delete products."</p>
                    }.into_any(),
                }
            })}
        </Transition>
        {move || sign_in_error().map(|e| view! { <p class="error" role="alert" data-testid="sign-in-error">{e}</p> })}
    }
}

/// What the warehouse table lists: the products whose name contains the
/// search, as of the last product added or deleted. The pages loaded stay
/// with it when its first page is fetched again (the feed reconnected).
type Listing = (String, (usize, usize));

#[component]
pub fn Warehouse(actions: WarehouseActions) -> impl IntoView {
    let feed = expect_context::<LiveFeed>();
    let WarehouseActions { add: add_product, delete: delete_product, restock } = actions;
    let query = use_query_map();
    let search = Memo::new(move |_| query.with(|q| q.get("product").unwrap_or_default().trim().to_string()));
    // A new or deleted product reloads the table (a restock only moves the stock).
    let listing = Resource::new(
        move || ((search.get(), actions.version()), feed.refresh.get()),
        |(listing, _): (Listing, u64)| async move {
            let page = products_page(Some(listing.0.clone()), None).await;
            (listing, page)
        },
    );
    // A product created or deleted in any page (the feed tells) fetches the
    // first page again into `fresh`, which the table merges in place: rows
    // keep what a person was doing in them (units typed, a delete being
    // confirmed), where reloading `listing` would build them anew.
    let fresh = RwSignal::new(None::<(Listing, Vec<Product>)>);
    let refetch = Action::new(move |listing: &Listing| {
        let listing = listing.clone();
        async move {
            let page = products_page(Some(listing.0.clone()), None).await;
            (listing, page)
        }
    });
    Effect::new(move |seen: Option<u64>| {
        let now = feed.catalogue.get();
        if seen.is_some_and(|seen| seen != now) {
            refetch.dispatch(untrack(|| (search.get(), actions.version())));
        }
        now
    });
    Effect::new(move |_| match refetch.value().get() {
        // An empty table is a message, not rows to merge into: load it anew.
        Some((_, Ok(_))) if listing.with_untracked(|l| matches!(l, Some((_, Ok(p))) if p.items.is_empty())) => {
            listing.refetch()
        }
        Some((shown, Ok(page))) => fresh.set(Some((shown, page.items))),
        Some((_, Err(error))) => feed.note(&error),
        None => {}
    });
    // A listing loaded anew is newer than any refetch before it.
    Effect::new(move |_| {
        listing.track();
        fresh.set(None);
    });
    let more = RwSignal::new(More::<Listing, Product>::default());
    let load_more = Action::new(move |(listing, cursor): &(Listing, String)| {
        let (listing, cursor) = (listing.clone(), cursor.clone());
        async move {
            let page = products_page(Some(listing.0.clone()), Some(cursor)).await;
            (listing, page)
        }
    });
    Effect::new(move |_| match load_more.value().get() {
        Some((listing, Ok(page))) => more.update(|m| m.add_page(&listing, page.items, page.next_cursor)),
        Some((_, Err(error))) => feed.note(&error),
        None => {}
    });
    Effect::new(move |_| {
        if let Some((_, Err(error))) = listing.get() {
            feed.note(&error);
        }
    });
    let action_error = |error: Option<Result<_, ShopError>>| error.and_then(|r| r.err());
    let add_error =
        move || action_error(add_product.value().get().map(|r| r.map(|_| ()))).and_then(|e| feed.error_to_show(&e));
    let delete_error = move || action_error(delete_product.value().get()).and_then(|e| feed.error_to_show(&e));
    let restock_error =
        move || action_error(restock.value().get().map(|r| r.map(|_| ()))).and_then(|e| feed.error_to_show(&e));
    let more_error = move || load_more.value().get().and_then(|(_, r)| r.err()).and_then(|e| feed.error_to_show(&e));
    Effect::new(move |_| {
        let failed = [
            action_error(add_product.value().get().map(|r| r.map(|_| ()))),
            action_error(delete_product.value().get()),
            action_error(restock.value().get().map(|r| r.map(|_| ()))),
        ];
        failed.iter().flatten().for_each(|e| feed.note(e));
    });
    // A restock is newer than whatever stock the feed reported for that product.
    Effect::new(move |_| {
        if let Some(Ok(product)) = restock.value().get() {
            feed.set_stock(&product.id, product.quantity);
        }
    });
    // The search form keeps the order list's filter and search, and the other way round.
    let kept = move |name: &'static str| move || query.with(|q| q.get(name).unwrap_or_default());

    view! {
        <section class="panel" aria-labelledby="warehouse-title" data-testid="products-panel">
            <h2 id="warehouse-title">"Warehouse"</h2>
            <AdminSignIn/>
            <Form method="GET" action="/" noscroll=true attr:class="search" attr:role="search" attr:aria-label="Products">
                <input type="hidden" name="status" prop:value=kept("status")/>
                <input type="hidden" name="q" prop:value=kept("q")/>
                <label>"Find products"
                    <input type="search" name="product" placeholder="Words of a name (or their start)" prop:value=move || search.get()/>
                </label>
                <button type="submit" class="secondary" aria-label="Search products">"Search"</button>
                {move || (!search.get().is_empty()).then(|| {
                    let href = format!("/{}", query_string(&[("status", &kept("status")()), ("q", &kept("q")())]));
                    view! { <a href=href data-noscroll="true" class="clear">"Show all products"</a> }
                })}
            </Form>
            <Transition fallback=|| view! { <p class="muted">"Loading products…"</p> }>
                {move || Suspend::new(async move {
                    let (shown, page) = listing.await;
                    match page {
                        Err(error) => view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any(),
                        Ok(page) if page.items.is_empty() && page.next_cursor.is_none() && shown.0.is_empty() => view! {
                            <p class="muted" data-testid="no-products">"No products yet. Add one below."</p>
                        }.into_any(),
                        // (A search that checked its share of names without a match yet
                        // shows an empty table and "Load more products".)
                        Ok(page) if page.items.is_empty() && page.next_cursor.is_none() => view! {
                            <p class="muted" data-testid="no-products">
                                {format!("No product matches “{}”: each word searched must start a word of the name.", shown.0)}
                            </p>
                        }.into_any(),
                        Ok(page) => {
                            let first_next = page.next_cursor.clone();
                            let rows = {
                                let shown = shown.clone();
                                move || {
                                    let first = fresh.with(|fresh| match fresh {
                                        Some((listing, items)) if *listing == shown => items.clone(),
                                        _ => page.items.clone(),
                                    });
                                    let rows = more.with(|m| merged(&first, m.rows(&shown), |p: &Product| &p.id));
                                    rows.into_iter().filter(|p| !feed.is_deleted(&p.id)).collect::<Vec<_>>()
                                }
                            };
                            let next = {
                                let shown = shown.clone();
                                move || more.with(|m| m.next_cursor(&shown, first_next.as_ref()))
                            };
                            let next = Memo::new(move |_| next());
                            view! {
                                <table class="products" data-testid="products">
                                    <thead><tr><th>"Product"</th><th class="num">"Price"</th><th class="num">"Stock"</th><th><span class="visually-hidden">"Actions"</span></th></tr></thead>
                                    <tbody>
                                        <For each=rows key=|p| p.id.clone() let:product>
                                            <ProductRow product restock delete_product/>
                                        </For>
                                    </tbody>
                                </table>
                                <LoadMore label="Load more products" next pending=load_more.pending()
                                    load=move |cursor| { load_more.dispatch((shown.clone(), cursor)); }/>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
            {move || more_error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {move || delete_error().map(|e| view! { <p class="error" role="alert" data-testid="delete-error">{e}</p> })}
            {move || restock_error().map(|e| view! { <p class="error" role="alert" data-testid="restock-error">{e}</p> })}

            <h3>"Add a product"</h3>
            <ActionForm action=add_product attr:class="stack" attr:data-testid="add-product">
                <label>"Name" <input type="text" name="name" required maxlength="200" placeholder="Oak chair"/></label>
                <div class="row">
                    <label>"Price" <input type="text" name="price" inputmode="decimal" required placeholder="19.99"/></label>
                    <label>"Stock" <input type="number" name="quantity" min="0" step="1" required placeholder="10"/></label>
                </div>
                <button type="submit" disabled=move || add_product.pending().get()>"Add product"</button>
                {move || add_error().map(|e| view! { <p class="error" role="alert" data-testid="add-product-error">{e}</p> })}
            </ActionForm>
        </section>
    }
}

/// One product: its live stock, restock and delete, each named after it.
#[component]
fn ProductRow(
    product: Product,
    restock: ServerAction<RestockProduct>,
    delete_product: ServerAction<DeleteProduct>,
) -> impl IntoView {
    let feed = expect_context::<LiveFeed>();
    let Product { id, name, price, quantity: listed } = product;
    let live_id = id.clone();
    let stock = Signal::derive(move || feed.stock_of(&live_id, listed));
    let (restock_label, restock_button) = (format!("Units of {name} to add"), format!("Restock {name}"));
    let (row_id, restock_id) = (id.to_string(), id.to_string());
    view! {
        <tr data-product-id=row_id>
            <td class="name">{name.clone()}</td>
            <td class="num" data-label="Price">{price.to_string()}</td>
            <td class="num stock" data-label="Stock" class:out=move || stock.get() == 0>{stock}</td>
            <td class="actions">
                <ActionForm action=restock attr:class="restock">
                    <input type="hidden" name="id" value=restock_id/>
                    <input type="number" name="quantity" min="1" max="1000000" step="1" required
                        value="10" aria-label=restock_label/>
                    <button type="submit" aria-label=restock_button>"Restock"</button>
                </ActionForm>
                <ConfirmDelete id=id.to_string() name action=delete_product/>
            </td>
        </tr>
    }
}

/// Delete, with a confirm step: the button turns into "Really delete?" and
/// "Cancel", and the keyboard's focus follows to the button that replaced
/// the one pressed.
#[component]
fn ConfirmDelete(id: String, name: String, action: ServerAction<DeleteProduct>) -> impl IntoView {
    let confirming = RwSignal::new(false);
    let (label, really, cancel) =
        (format!("Delete {name}"), format!("Really delete {name}?"), format!("Cancel deleting {name}"));
    let (delete_button, really_button) = (NodeRef::<html::Button>::new(), NodeRef::<html::Button>::new());
    let pressed = focus_follows_confirm(confirming.into(), delete_button, really_button);
    let choose = move |confirm: bool| {
        pressed.set_value(true);
        confirming.set(confirm);
    };
    move || {
        if confirming.get() {
            let (id, really, cancel) = (id.clone(), really.clone(), cancel.clone());
            view! {
                <ActionForm action>
                    <input type="hidden" name="id" value=id/>
                    <button type="submit" class="danger strong" aria-label=really node_ref=really_button>"Really delete?"</button>
                    <button type="button" class="link" aria-label=cancel
                        on:click=move |_| choose(false)>"Cancel"</button>
                </ActionForm>
            }
            .into_any()
        } else {
            view! {
                <button type="button" class="danger" aria-label=label.clone() node_ref=delete_button
                    on:click=move |_| choose(true)>"Delete"</button>
            }
            .into_any()
        }
    }
}

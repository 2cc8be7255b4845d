//! The warehouse panel: products with their stock, the add-product form,
//! restock and delete, and the admin sign-in that guards them when the
//! server has an `ADMIN_TOKEN`.

use domain::Product;
use leptos::prelude::*;

use crate::api::{error_text, AddProduct, AdminAccess, DeleteProduct, RestockProduct, SignIn, SignOut};
use crate::live::LiveFeed;

type Products = Resource<Result<Vec<Product>, ServerFnError>>;

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

    /// Changes whenever any of them succeeds, for refetching the list.
    pub fn version(&self) -> (usize, usize, usize) {
        (self.add.version().get(), self.delete.version().get(), self.restock.version().get())
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
    let sign_in_error = move || sign_in.value().get().and_then(|r| r.err()).map(|e| error_text(&e));

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

#[component]
pub fn Warehouse(products: Products, actions: WarehouseActions) -> impl IntoView {
    let feed = expect_context::<LiveFeed>();
    let WarehouseActions { add: add_product, delete: delete_product, restock } = actions;
    let add_error = move || add_product.value().get().and_then(|r| r.err()).map(|e| error_text(&e));
    let delete_error = move || delete_product.value().get().and_then(|r| r.err()).map(|e| error_text(&e));
    let restock_error = move || restock.value().get().and_then(|r| r.err()).map(|e| error_text(&e));
    // A restock is newer than whatever stock the feed reported for that product.
    Effect::new(move |_| {
        if let Some(Ok(product)) = restock.value().get() {
            feed.stock.update(|s| {
                s.insert(product.id, product.quantity);
            });
        }
    });

    view! {
        <section class="panel" aria-labelledby="warehouse-title">
            <h2 id="warehouse-title">"Warehouse"</h2>
            <AdminSignIn/>
            <Transition fallback=|| view! { <p class="muted">"Loading products…"</p> }>
                {move || Suspend::new(async move {
                    match products.await {
                        Err(error) => view! { <p class="error" role="alert">{error_text(&error)}</p> }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <p class="muted" data-testid="no-products">"No products yet. Add one below."</p>
                        }.into_any(),
                        Ok(list) => view! {
                            <table class="products" data-testid="products">
                                <thead><tr><th>"Product"</th><th class="num">"Price"</th><th class="num">"Stock"</th><th><span class="visually-hidden">"Actions"</span></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|product| {
                                        let Product { id, name, price, quantity: listed } = product;
                                        let (live_id, row_id) = (id.clone(), id.clone());
                                        let (restock_id, restock_label) = (id.clone(), format!("Units of {name} to add"));
                                        let restock_button = format!("Restock {name}");
                                        let stock = Signal::derive(move || feed.stock.with(|s| s.get(&live_id).copied()).unwrap_or(listed));
                                        view! {
                                            <tr data-product-id=row_id>
                                                <td class="name">{name.clone()}</td>
                                                <td class="num">{price.to_string()}</td>
                                                <td class="num stock" class:out=move || stock.get() == 0>{stock}</td>
                                                <td class="actions">
                                                    <ActionForm action=restock attr:class="restock">
                                                        <input type="hidden" name="id" value=restock_id/>
                                                        <input type="number" name="quantity" min="1" max="1000000" step="1" required
                                                            value="10" aria-label=restock_label/>
                                                        <button type="submit" aria-label=restock_button>"Restock"</button>
                                                    </ActionForm>
                                                    <ConfirmDelete id name action=delete_product/>
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

/// Delete, with a confirm step: the button turns into "Really delete?" and "Cancel".
#[component]
fn ConfirmDelete(id: String, name: String, action: ServerAction<DeleteProduct>) -> impl IntoView {
    let confirming = RwSignal::new(false);
    let (label, really, cancel) =
        (format!("Delete {name}"), format!("Really delete {name}?"), format!("Cancel deleting {name}"));
    move || {
        if confirming.get() {
            let (id, really, cancel) = (id.clone(), really.clone(), cancel.clone());
            view! {
                <ActionForm action>
                    <input type="hidden" name="id" value=id/>
                    <button type="submit" class="danger strong" aria-label=really>"Really delete?"</button>
                    <button type="button" class="link" aria-label=cancel
                        on:click=move |_| confirming.set(false)>"Cancel"</button>
                </ActionForm>
            }
            .into_any()
        } else {
            view! {
                <button type="button" class="danger" aria-label=label.clone()
                    on:click=move |_| confirming.set(true)>"Delete"</button>
            }
            .into_any()
        }
    }
}

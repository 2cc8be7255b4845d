//! The warehouse panel: products with their stock, the add-product form and delete.

use domain::Product;
use leptos::prelude::*;

use crate::api::{error_text, AddProduct, DeleteProduct};
use crate::live::LiveFeed;

type Products = Resource<Result<Vec<Product>, ServerFnError>>;

#[component]
pub fn Warehouse(
    products: Products,
    add_product: ServerAction<AddProduct>,
    delete_product: ServerAction<DeleteProduct>,
) -> impl IntoView {
    let feed = expect_context::<LiveFeed>();
    let add_error = move || add_product.value().get().and_then(|r| r.err()).map(|e| error_text(&e));
    let delete_error = move || delete_product.value().get().and_then(|r| r.err()).map(|e| error_text(&e));

    view! {
        <section class="panel" aria-labelledby="warehouse-title">
            <h2 id="warehouse-title">"Warehouse"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading products…"</p> }>
                {move || Suspend::new(async move {
                    match products.await {
                        Err(error) => view! { <p class="error" role="alert">{error_text(&error)}</p> }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <p class="muted" data-testid="no-products">"No products yet. Add one below."</p>
                        }.into_any(),
                        Ok(list) => view! {
                            <table class="products" data-testid="products">
                                <thead><tr><th>"Product"</th><th class="num">"Price"</th><th class="num">"Stock"</th><th></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|product| {
                                        let Product { id, name, price, quantity: listed } = product;
                                        let (live_id, row_id, label) = (id.clone(), id.clone(), format!("Delete {name}"));
                                        let stock = Signal::derive(move || feed.stock.with(|s| s.get(&live_id).copied()).unwrap_or(listed));
                                        view! {
                                            <tr data-product-id=row_id>
                                                <td class="name">{name}</td>
                                                <td class="num">{price.to_string()}</td>
                                                <td class="num stock" class:out=move || stock.get() == 0>{stock}</td>
                                                <td class="actions">
                                                    <ActionForm action=delete_product>
                                                        <input type="hidden" name="id" value=id/>
                                                        <button type="submit" class="danger" aria-label=label>"Delete"</button>
                                                    </ActionForm>
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
            {move || delete_error().map(|e| view! { <p class="error" role="alert">{e}</p> })}

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

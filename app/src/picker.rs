//! The order form's product picker: a combobox (the WAI-ARIA pattern) that
//! finds products by the words of their names as you type, for a catalogue
//! of any size.
//!
//! Typing asks the product search (the same indexed search as the
//! warehouse's): at once when the typing starts after a pause with text
//! that can be searched, else a moment after the typing stops, so a name
//! typed or pasted in one go is searched without waiting, while a burst of
//! keystrokes asks once or twice, not once per key. The arrows move through
//! what it found, Enter chooses, Escape closes the list. Each choice shows
//! its stock as the live feed reports it. Nothing is fetched until the page
//! is hydrated and someone types: a page render never lists the catalogue.

use domain::Product;
use leptos::prelude::*;

use crate::api::products_page;
use crate::live::LiveFeed;

/// How long typing must pause before the picker searches (when it did not
/// search at the burst's first keystroke).
const SETTLE_MS: f64 = 150.0;
#[cfg(feature = "hydrate")]
const SETTLE: std::time::Duration = std::time::Duration::from_millis(SETTLE_MS as u64);

const LISTBOX: &str = "product-options";

fn option_id(n: usize) -> String {
    format!("product-option-{n}")
}

/// The product picker; `chosen` is the product chosen (`None` until one
/// is), `on_change` runs when the choice changes.
#[component]
pub fn ProductPicker(chosen: RwSignal<Option<Product>>, #[prop(into)] on_change: Callback<()>) -> impl IntoView {
    let feed = expect_context::<LiveFeed>();
    let text = RwSignal::new(String::new());
    // What was searched for, once the typing paused (`None`: nothing yet).
    let query = RwSignal::new(None::<String>);
    let open = RwSignal::new(false);
    let active = RwSignal::new(None::<usize>);
    // When the last keystroke came (milliseconds since the page loaded).
    let typed_at = StoredValue::new(f64::NEG_INFINITY);
    let results = LocalResource::new(move || {
        let query = query.get();
        async move {
            match query {
                Some(text) => Some(products_page(Some(text), None).await),
                None => None,
            }
        }
    });
    // A search that found the shop unavailable: the page says so, and recovers.
    Effect::new(move |_| {
        if let Some(Some(Err(error))) = results.get() {
            feed.note(&error);
        }
    });
    // A product deleted meanwhile (the feed tells) is no longer offered.
    let found = Memo::new(move |_| match results.get().flatten() {
        Some(Ok(page)) => page.items.into_iter().filter(|p| !feed.is_deleted(&p.id)).collect(),
        _ => Vec::new(),
    });
    let choose = move |product: Product| {
        text.set(product.name.clone());
        chosen.set(Some(product));
        open.set(false);
        active.set(None);
        on_change.run(());
    };
    let on_input = move |ev| {
        let typed = event_target_value(&ev);
        text.set(typed.clone());
        if chosen.with_untracked(|c| c.as_ref().is_some_and(|p| p.name != typed)) {
            chosen.set(None);
            on_change.run(());
        }
        open.set(true);
        active.set(None);
        let now = crate::util::elapsed_ms();
        let after_a_pause = now - typed_at.get_value() >= SETTLE_MS;
        typed_at.set_value(now);
        if after_a_pause && matches!(domain::search::Query::parse(&typed), Ok(Some(_))) {
            query.set(Some(typed));
            return;
        }
        #[cfg(feature = "hydrate")]
        set_timeout(
            move || {
                if text.with_untracked(|now| *now == typed) {
                    query.set(Some(typed));
                }
            },
            SETTLE,
        );
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        let count = found.with_untracked(Vec::len);
        match ev.key().as_str() {
            "ArrowDown" => {
                ev.prevent_default();
                if !open.get_untracked() {
                    open.set(true);
                    if query.get_untracked().is_none() {
                        query.set(Some(text.get_untracked()));
                    }
                } else if count > 0 {
                    active.update(|a| *a = Some(a.map_or(0, |n| (n + 1).min(count - 1))));
                }
            }
            "ArrowUp" => {
                ev.prevent_default();
                active.update(|a| *a = a.and_then(|n| n.checked_sub(1)));
            }
            "Enter" if open.get_untracked() => {
                // Enter chooses (the only match, or the one moved to); it never submits a half-chosen form.
                ev.prevent_default();
                let pick = active.get_untracked().or((count == 1).then_some(0));
                if let Some(product) = pick.and_then(|n| found.with_untracked(|f| f.get(n).cloned())) {
                    choose(product);
                }
            }
            "Escape" if open.get_untracked() => {
                ev.prevent_default();
                open.set(false);
                active.set(None);
            }
            _ => {}
        }
    };
    let stock = move |product: &Product| feed.stock_of(&product.id, product.quantity);

    view! {
        <div class="picker">
            <label for="product-search">"Product"</label>
            <input id="product-search" type="text" role="combobox" autocomplete="off" spellcheck="false"
                aria-autocomplete="list" aria-controls=LISTBOX
                aria-expanded=move || open.get().to_string()
                aria-activedescendant=move || active.get().map(option_id)
                placeholder="Type a product's name…"
                prop:value=move || text.get()
                on:input=on_input
                on:keydown=on_keydown
                on:blur=move |_| open.set(false)/>
            <input type="hidden" name="product_id" prop:value=move || chosen.with(|c| c.as_ref().map(|p| p.id.to_string()).unwrap_or_default())/>
            <ul id=LISTBOX role="listbox" aria-label="Products" class="options" class:hidden=move || !open.get()>
                {move || match results.get().flatten() {
                    None => view! { <li role="presentation" class="muted">"Type to find a product."</li> }.into_any(),
                    Some(Err(error)) => view! { <li role="presentation" class="error">{error.to_string()}</li> }.into_any(),
                    Some(Ok(page)) if page.items.is_empty() => {
                        view! { <li role="presentation" class="muted">"No product matches."</li> }.into_any()
                    }
                    Some(Ok(page)) => page.items.into_iter().enumerate().map(|(n, product)| {
                        let label = {
                            let product = product.clone();
                            move || format!("{} ({} in stock)", product.name, stock(&product))
                        };
                        view! {
                            <li role="option" id=option_id(n)
                                aria-selected=move || (active.get() == Some(n)).to_string()
                                class:active=move || active.get() == Some(n)
                                on:mousedown=move |ev| {
                                    // Before the input's blur closes the list.
                                    ev.prevent_default();
                                    choose(product.clone());
                                }>
                                {label}
                            </li>
                        }
                    }).collect_view().into_any(),
                }}
            </ul>
            {move || chosen.get().map(|product| view! {
                <p class="muted chosen" data-testid="chosen-stock">{move || format!("{} in stock", stock(&product))}</p>
            })}
        </div>
    }
}

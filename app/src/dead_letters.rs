//! The dead letters, for admins: stream entries the workers gave up on,
//! newest first, a page at a time, each retried (put back on its stream) or
//! discarded (after a confirmation).

use leptos::html;
use leptos::prelude::*;

use crate::api::{admin_status, dead_letters, AdminAccess, DeadLetterRow, DiscardDeadLetter, RetryDeadLetter};
use crate::live::LiveFeed;
use crate::products::AdminSignIn;
use crate::util::{focus_follows_confirm, Time};
use crate::Session;

/// What the rows share: the actions and the signal that reloads the pages.
#[derive(Clone, Copy)]
struct Letters {
    retry: ServerAction<RetryDeadLetter>,
    discard: ServerAction<DiscardDeadLetter>,
    reload: RwSignal<u64>,
    /// The dead letter whose discard awaits confirmation; kept here so that
    /// a reload of the rows does not forget it.
    confirming: RwSignal<Option<String>>,
}

#[component]
pub fn DeadLettersPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let access = Resource::new(move || session.changed.get(), |_| admin_status());
    view! {
        <main class="page">
            <section class="panel" aria-labelledby="dead-letters-title">
                <h2 id="dead-letters-title">"Dead letters"</h2>
                <p class="muted">"Stream entries the workers gave up on. Retry puts one back on its stream; discard removes it for good."</p>
                <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match access.await {
                            Ok(AdminAccess { required: true, signed_in: false }) => view! {
                                <div data-testid="dead-letters-sign-in"><AdminSignIn/></div>
                            }.into_any(),
                            Err(error) => view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any(),
                            Ok(_) => view! { <DeadLetterTable/> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        </main>
    }
}

#[component]
fn DeadLetterTable() -> AnyView {
    let feed = expect_context::<LiveFeed>();
    let letters = Letters {
        retry: ServerAction::new(),
        discard: ServerAction::new(),
        reload: RwSignal::new(0),
        confirming: RwSignal::new(None),
    };
    // The cursors of the pages shown: the first page, then one per "Load more".
    let cursors = RwSignal::new(vec![None::<String>]);
    // After a change, the count and the rows follow.
    let changed = move || feed.dead_letters_changed.update(|n| *n += 1);
    Effect::new(move |seen: Option<usize>| {
        let now = letters.discard.version().get();
        if seen.is_some_and(|seen| seen != now) {
            changed();
        }
        now
    });
    // A retried entry that fails again comes back as a new dead letter a
    // moment later, with no order to report on the feed: look again shortly after.
    Effect::new(move |seen: Option<usize>| {
        let now = letters.retry.version().get();
        if seen.is_some_and(|seen| seen != now) {
            changed();
            #[cfg(feature = "hydrate")]
            for delay in [1000, 3000] {
                set_timeout(changed, std::time::Duration::from_millis(delay));
            }
        }
        now
    });
    // A dead-lettering the feed reported shows up here too.
    Effect::new(move |seen: Option<u64>| {
        let now = feed.dead_letters_changed.get();
        if seen.is_some_and(|seen| seen != now) {
            letters.reload.update(|n| *n += 1);
        }
        now
    });
    let error = move || {
        let retry = letters.retry.value().get().and_then(|r| r.err());
        let discard = letters.discard.value().get().and_then(|r| r.err());
        retry.or(discard).map(|e| e.to_string())
    };

    view! {
        {move || error().map(|e| view! { <p class="error" role="alert" data-testid="dead-letter-error">{e}</p> })}
        <table class="dead-letters" data-testid="dead-letters">
            <thead><tr>
                <th>"Time"</th><th>"Stream"</th><th>"Error"</th><th class="num">"Deliveries"</th><th>"Order"</th><th><span class="visually-hidden">"Actions"</span></th>
            </tr></thead>
            {move || {
                let shown = cursors.get();
                let last = shown.len() - 1;
                shown.into_iter().enumerate().map(|(index, cursor)| {
                    view! { <LetterPage cursor letters cursors last=index == last/> }
                }).collect_view()
            }}
        </table>
    }
    .into_any()
}

/// One page of rows; the last page shown offers "Load more" when there is more.
#[component]
fn LetterPage(cursor: Option<String>, letters: Letters, cursors: RwSignal<Vec<Option<String>>>, last: bool) -> AnyView {
    let first = cursor.is_none();
    let page = Resource::new(move || (cursor.clone(), letters.reload.get()), |(cursor, _)| dead_letters(cursor));
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match page.await {
                    Err(error) => view! {
                        <tbody><tr><td colspan="6" class="error" role="alert">{error.to_string()}</td></tr></tbody>
                    }.into_any(),
                    Ok(page) => {
                        let empty = first && page.items.is_empty();
                        let more = page.next_cursor.clone().filter(|_| last);
                        view! {
                            <tbody>
                                {empty.then(|| view! {
                                    <tr><td colspan="6" class="muted" data-testid="no-dead-letters">"No dead letters: every entry was processed."</td></tr>
                                })}
                                {page.items.into_iter().map(|row| view! { <LetterRow row letters/> }).collect_view()}
                                {more.map(|next| view! {
                                    <tr class="more"><td colspan="6">
                                        <button type="button" class="secondary"
                                            on:click=move |_| cursors.update(|c| c.push(Some(next.clone())))>
                                            "Load more dead letters"
                                        </button>
                                    </td></tr>
                                })}
                            </tbody>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn LetterRow(row: DeadLetterRow, letters: Letters) -> AnyView {
    let confirm_id = row.id.clone();
    let confirming = Memo::new(move |_| letters.confirming.with(|c| c.as_deref() == Some(confirm_id.as_str())));
    let what = match &row.order_id {
        Some(order) => format!("dead letter of order {order}"),
        None => format!("dead letter {}", row.id),
    };
    let (retry_label, discard_label, really_label, cancel_label) = (
        format!("Retry {what}"),
        format!("Discard {what}"),
        format!("Really discard {what}?"),
        format!("Cancel discarding {what}"),
    );
    let order = row.order_id.clone().map(|order| {
        let href = format!("/order/{order}");
        view! { <a href=href><code>{order}</code></a> }
    });
    let (retry_id, discard_id, row_id) = (row.id.clone(), row.id.clone(), row.id.clone());
    let (discard_button, really_button) = (NodeRef::<html::Button>::new(), NodeRef::<html::Button>::new());
    let pressed = focus_follows_confirm(confirming.into(), discard_button, really_button);
    view! {
        <tr data-dead-letter-id=row.id.clone()>
            <td class="nowrap"><Time at=row.at/></td>
            <td><code>{row.stream}</code></td>
            <td class="error-text">{row.error}</td>
            <td class="num">{row.deliveries}</td>
            <td>{order}</td>
            <td class="actions">
                <ActionForm action=letters.retry>
                    <input type="hidden" name="id" value=retry_id/>
                    <button type="submit" class="secondary" aria-label=retry_label>"Retry"</button>
                </ActionForm>
                {move || if confirming.get() {
                    let (id, really, cancel) = (discard_id.clone(), really_label.clone(), cancel_label.clone());
                    view! {
                        <ActionForm action=letters.discard>
                            <input type="hidden" name="id" value=id/>
                            <button type="submit" class="danger strong" aria-label=really node_ref=really_button>"Really discard?"</button>
                            <button type="button" class="link" aria-label=cancel
                                on:click=move |_| {
                                    pressed.set_value(true);
                                    letters.confirming.set(None);
                                }>"Cancel"</button>
                        </ActionForm>
                    }.into_any()
                } else {
                    view! {
                        <button type="button" class="danger" aria-label=discard_label.clone() node_ref=discard_button
                            on:click={
                                let id = row_id.clone();
                                move |_| {
                                    pressed.set_value(true);
                                    letters.confirming.set(Some(id.clone()));
                                }
                            }>"Discard"</button>
                    }.into_any()
                }}
            </td>
        </tr>
    }
    .into_any()
}

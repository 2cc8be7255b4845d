//! Lists a page at a time: the first page is a resource (rendered on the
//! server), and "Load more" adds the pages after it in the browser. What it
//! added belongs to one listing (one search, as of one change to the list):
//! rows of another listing are never mixed in.

use leptos::prelude::*;

/// The rows a list shows beyond its first page, and where the next page starts.
#[derive(Debug, Clone)]
pub struct More<K, T> {
    /// The listing these rows belong to.
    of: Option<K>,
    rows: Vec<T>,
    /// The next page's cursor, once a page was added (`Some(None)`: the end).
    next: Option<Option<String>>,
}

impl<K, T> Default for More<K, T> {
    fn default() -> Self {
        More { of: None, rows: Vec::new(), next: None }
    }
}

impl<K: PartialEq + Clone, T: Clone> More<K, T> {
    /// The rows added to `listing`.
    pub fn rows(&self, listing: &K) -> &[T] {
        if self.of.as_ref() == Some(listing) {
            &self.rows
        } else {
            &[]
        }
    }

    /// Where the page after what `listing` shows starts, given its first
    /// page's cursor; `None` at the end.
    pub fn next_cursor(&self, listing: &K, first: Option<&String>) -> Option<String> {
        match (&self.next, self.of.as_ref() == Some(listing)) {
            (Some(next), true) => next.clone(),
            _ => first.cloned(),
        }
    }

    /// Adds a page fetched for `listing`.
    pub fn add_page(&mut self, listing: &K, rows: Vec<T>, next: Option<String>) {
        self.add_rows(listing, rows);
        self.next = Some(next);
    }

    /// Adds rows (a page, or rows the feed brought) to `listing`.
    pub fn add_rows(&mut self, listing: &K, rows: Vec<T>) {
        if self.of.as_ref() != Some(listing) {
            *self = More { of: Some(listing.clone()), rows: Vec::new(), next: None };
        }
        self.rows.extend(rows);
    }

    /// How many rows were added to `listing`.
    pub fn len(&self, listing: &K) -> usize {
        self.rows(listing).len()
    }
}

/// The first page's rows and the added ones, newest (greatest id) first, each once.
pub fn merged<T: Clone>(first: &[T], more: &[T], id: impl Fn(&T) -> &str) -> Vec<T> {
    let mut rows: Vec<T> = first.iter().chain(more).cloned().collect();
    rows.sort_by(|a, b| id(b).cmp(id(a)));
    rows.dedup_by(|a, b| id(a) == id(b));
    rows
}

/// The "Load more" button under a list: hidden at the end, disabled while a
/// page loads, and the same button for every page, so that the keyboard's
/// focus stays on it. `load` fetches the page that starts at the cursor.
#[component]
pub fn LoadMore(
    /// What the button says ("Load more orders").
    label: &'static str,
    /// The next page's cursor; `None` at the end.
    next: Memo<Option<String>>,
    /// Whether a page is loading.
    #[prop(into)]
    pending: Signal<bool>,
    load: impl Fn(String) + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <p class="more" class:hidden=move || next.with(Option::is_none)>
            <button type="button" class="secondary" disabled=move || pending.get()
                on:click=move |_| {
                    if let Some(cursor) = next.get_untracked() {
                        load(cursor);
                    }
                }>
                {label}
            </button>
        </p>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_rows_belong_to_their_listing() {
        let mut more = More::<u32, String>::default();
        assert_eq!(more.next_cursor(&1, Some(&"c1".to_string())), Some("c1".to_string()));
        more.add_page(&1, vec!["b".into()], Some("b".into()));
        assert_eq!(more.rows(&1), ["b".to_string()]);
        assert_eq!(more.next_cursor(&1, Some(&"c1".to_string())), Some("b".to_string()));
        more.add_page(&1, vec!["a".into()], None);
        assert_eq!(more.next_cursor(&1, Some(&"c1".to_string())), None);
        // Another listing starts afresh.
        assert!(more.rows(&2).is_empty());
        assert_eq!(more.next_cursor(&2, None), None);
        more.add_rows(&2, vec!["z".into()]);
        assert_eq!(more.len(&2), 1);
        assert_eq!(more.len(&1), 0);
    }

    #[test]
    fn rows_merge_newest_first_once_each() {
        let rows = merged(&["c", "b"], &["d", "b", "a"], |s| s);
        assert_eq!(rows, ["d", "c", "b", "a"]);
    }
}

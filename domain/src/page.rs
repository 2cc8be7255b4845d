//! Pagination of lists: a page of items and the cursor to the next one.
//!
//! Lists are ordered by id (ULIDs sort by creation time), so the cursor is
//! simply the last id of the page: stable while items are added or removed,
//! unlike an offset.

use serde::{Deserialize, Serialize};

use crate::id::Id;

/// Items per page when the client does not say: every list of a small shop fits in one.
pub const DEFAULT_LIMIT: usize = 100;
/// The most items one page holds.
pub const MAX_LIMIT: usize = 1000;

/// A validated request for one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    /// Start after this id (exclusive); `None` starts at the beginning.
    pub after: Option<Id>,
}

/// Why a page request was refused, naming the parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PageError {
    pub field: &'static str,
    pub message: String,
}

impl PageRequest {
    /// The first page, at most `limit` items (clamped to 1..=[`MAX_LIMIT`]).
    pub fn first(limit: usize) -> PageRequest {
        PageRequest { limit: limit.clamp(1, MAX_LIMIT), after: None }
    }

    /// Validates the `limit` and `cursor` query parameters as sent. A cursor
    /// must look like an id: it is the last id of the previous page.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<PageRequest, PageError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(text) => {
                text.trim().parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| PageError {
                    field: "limit",
                    message: format!("must be a whole number from 1 to {MAX_LIMIT}"),
                })?
            }
        };
        let after = match cursor {
            None => None,
            Some(text) => Some(Id::parse(text).map_err(|_| PageError {
                field: "cursor",
                message: "must be the next_cursor of a previous page".to_string(),
            })?),
        };
        Ok(PageRequest { limit, after })
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page. Opaque to
    /// clients: the last id of an order or product list, a dead letter's own id.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from up to `limit + 1` fetched items: the extra one only says
    /// that there is more, so no client ever fetches an empty last page.
    pub fn from_fetched(mut fetched: Vec<T>, limit: usize, id_of: impl Fn(&T) -> &str) -> Page<T> {
        let more = fetched.len() > limit;
        fetched.truncate(limit);
        let next_cursor = if more { fetched.last().map(|item| id_of(item).to_string()) } else { None };
        Page { items: fetched, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01JD3V6Q8ZK0M9X4W2T7Y5B1CE";

    #[test]
    fn defaults_suit_a_small_shop_and_limits_are_bounded() {
        assert_eq!(PageRequest::parse(None, None), Ok(PageRequest { limit: DEFAULT_LIMIT, after: None }));
        assert_eq!(
            PageRequest::parse(Some("1"), Some(ID)).unwrap(),
            PageRequest { limit: 1, after: Some(Id::parse(ID).unwrap()) }
        );
        assert_eq!(PageRequest::parse(Some("1000"), None).unwrap().limit, MAX_LIMIT);
        for bad in ["0", "1001", "-1", "ten", "", "1.5"] {
            assert_eq!(PageRequest::parse(Some(bad), None).unwrap_err().field, "limit", "{bad}");
        }
        assert_eq!(PageRequest::first(0).limit, 1);
        assert_eq!(PageRequest::first(5000).limit, MAX_LIMIT);
    }

    #[test]
    fn a_cursor_must_look_like_an_id() {
        assert_eq!(PageRequest::parse(None, Some(&ID.to_lowercase())).unwrap().after.as_deref(), Some(ID));
        for bad in
            ["", "abc", "01JD3V6Q8ZK0M9X4W2T7Y5B1C!", "81JD3V6Q8ZK0M9X4W2T7Y5B1CE", "01JD3V6Q8ZK0M9X4W2T7Y5B1CEX"]
        {
            assert_eq!(PageRequest::parse(None, Some(bad)).unwrap_err().field, "cursor", "{bad}");
        }
    }

    #[test]
    fn the_extra_item_fetched_only_signals_a_next_page() {
        let ids = |n: usize| (0..n).map(|i| format!("{i}")).collect::<Vec<_>>();
        let page = Page::from_fetched(ids(3), 2, |s| s);
        assert_eq!(page, Page { items: ids(2), next_cursor: Some("1".into()) });
        assert_eq!(Page::from_fetched(ids(2), 2, |s| s).next_cursor, None);
        assert_eq!(Page::from_fetched(Vec::<String>::new(), 2, |s| s).next_cursor, None);
    }
}

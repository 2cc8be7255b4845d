//! One page of ids from several indexes at once: every partition's index of
//! orders, or the indexes of some products' orders, merged by id.
//!
//! Every index is a sorted set of score 0, so it sorts by member; members
//! are ids (ULIDs, which sort by creation time across indexes too), or
//! `<prefix><id>` where one index holds several sources (the orders of each
//! product in one status: `<product id>:<order id>`). Reading a whole page
//! from every source would move `sources × page` ids for one page; instead
//! each gives about twice its share first, and only a source whose share all
//! made it into the page (so it may hold more of it) is asked for the rest.
//! So a page costs at most two reads per source, whatever the data.

use domain::{Id, PageRequest};

use crate::connection::Redis;
use crate::partition::Partition;

/// The ids of one index, or the range of an index whose members start with a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub partition: Partition,
    pub key: String,
    /// What the source's members start with before the id (empty: the members are ids).
    pub prefix: String,
    /// Only the ids that start with this (empty: every id): an order search
    /// by the start of its id.
    pub id_start: String,
}

/// An id, with the partition whose index listed it.
pub type Listed = (Id, Partition);

impl Source {
    /// Every member of the index at `key`.
    pub fn index(partition: Partition, key: String) -> Source {
        Source { partition, key, prefix: String::new(), id_start: String::new() }
    }

    /// The members of the index at `key` that start with `prefix` (which
    /// ends in an ASCII character, as `<product id>:` does).
    pub fn range(partition: Partition, key: String, prefix: String) -> Source {
        Source { partition, key, prefix, id_start: String::new() }
    }

    /// Only the ids of this source that start with `id_start` (ASCII, as ids are).
    pub fn starting_with(self, id_start: &str) -> Source {
        Source { id_start: id_start.to_string(), ..self }
    }

    /// The `ZRANGE … BYLEX` bounds of the members after `after` (exclusive),
    /// in the order read: `(start, stop)`.
    fn bounds(&self, after: Option<&str>, newest_first: bool) -> (String, String) {
        let after = after.map(|id| format!("({}{id}", self.prefix));
        let start = format!("{}{}", self.prefix, self.id_start);
        if start.is_empty() {
            return match newest_first {
                true => (after.unwrap_or_else(|| "+".into()), "-".into()),
                false => (after.unwrap_or_else(|| "-".into()), "+".into()),
            };
        }
        // Every member that starts so sorts before that start with its last
        // character raised by one.
        let mut beyond = start.clone().into_bytes();
        if let Some(last) = beyond.last_mut() {
            *last += 1;
        }
        let beyond = format!("({}", String::from_utf8_lossy(&beyond));
        let first = format!("[{start}");
        match newest_first {
            true => (after.unwrap_or(beyond), first),
            false => (after.unwrap_or(first), beyond),
        }
    }

    /// Up to `count` ids of this source after `after` (exclusive).
    async fn read(
        &self,
        conn: &Redis,
        after: Option<&str>,
        count: usize,
        newest_first: bool,
    ) -> redis::RedisResult<Vec<Listed>> {
        let (start, stop) = self.bounds(after, newest_first);
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(&self.key).arg(start).arg(stop).arg("BYLEX");
        if newest_first {
            cmd.arg("REV");
        }
        cmd.arg("LIMIT").arg(0).arg(count);
        let members: Vec<String> = cmd.query_async(&mut conn.clone()).await?;
        Ok(members
            .into_iter()
            .filter_map(|member| Id::parse(member.strip_prefix(self.prefix.as_str())?).ok())
            .map(|id| (id, self.partition))
            .collect())
    }
}

/// The ids of one page of `sources` merged, plus one more when there is a
/// next page: after `request.after` (exclusive), oldest first or newest first.
pub async fn page_of_ids(
    conn: &Redis,
    sources: &[Source],
    request: &PageRequest,
    newest_first: bool,
) -> redis::RedisResult<Vec<Listed>> {
    let wanted = request.limit + 1;
    let share = share(wanted, sources.len());
    let after = request.after.as_deref();
    let first =
        futures::future::try_join_all(sources.iter().map(|source| source.read(conn, after, share, newest_first)))
            .await?;
    let rest = unfinished(&first, share, wanted, newest_first);
    let second = futures::future::try_join_all(
        rest.iter().map(|(n, last)| sources[*n].read(conn, Some(last), wanted, newest_first)),
    )
    .await?;
    Ok(merge(first.into_iter().chain(second), wanted, newest_first))
}

/// How many ids each of `sources` sources gives first for a page of `wanted`:
/// about twice an even share, never more than the page.
fn share(wanted: usize, sources: usize) -> usize {
    ((wanted / sources.max(1) + 1) * 2).min(wanted)
}

/// The sources (by position in `parts`, with the last id each gave) whose
/// whole share made it into the page so far: each may hold more of it.
fn unfinished(parts: &[Vec<Listed>], share: usize, wanted: usize, newest_first: bool) -> Vec<(usize, Id)> {
    let so_far = merge(parts.iter().cloned(), wanted, newest_first);
    // The last id of the page so far: a source whose share ends before it is done.
    let boundary = (so_far.len() == wanted).then(|| so_far[wanted - 1].0.clone());
    parts
        .iter()
        .enumerate()
        .filter(|(_, part)| part.len() == share)
        .filter_map(|(n, part)| {
            let (last, _) = part.last()?;
            let may_hold_more = match &boundary {
                None => true,
                Some(boundary) if newest_first => last >= boundary,
                Some(boundary) => last <= boundary,
            };
            may_hold_more.then(|| (n, last.clone()))
        })
        .collect()
}

/// The first `wanted` ids of `parts` together, in order, each once.
fn merge(parts: impl IntoIterator<Item = Vec<Listed>>, wanted: usize, newest_first: bool) -> Vec<Listed> {
    let mut ids: Vec<Listed> = parts.into_iter().flatten().collect();
    if newest_first {
        ids.sort_unstable_by(|a, b| b.cmp(a));
    } else {
        ids.sort_unstable();
    }
    ids.dedup();
    ids.truncate(wanted);
    ids
}

#[cfg(test)]
mod tests {
    use crate::Partitions;

    use super::*;

    /// An id whose last character is `last`, so they sort as their last characters do.
    fn id(last: &str) -> Id {
        Id::parse(&format!("01JD3V6Q8ZK0M9X4W2T7Y5B1C{last}")).unwrap()
    }

    fn listed(lasts: &[&str]) -> Vec<Listed> {
        let partition = Partitions::default().nth(0);
        lasts.iter().map(|last| (id(last), partition)).collect()
    }

    fn ids(listed: &[Listed]) -> Vec<&str> {
        listed.iter().map(|(id, _)| &id[25..]).collect()
    }

    #[test]
    fn a_source_reads_its_range_of_an_index() {
        let partition = Partitions::default().nth(3);
        let all = Source::index(partition, "k".into());
        assert_eq!(all.bounds(None, true), ("+".into(), "-".into()));
        assert_eq!(all.bounds(Some("B"), false), ("(B".into(), "+".into()));
        let product = Source::range(partition, "k".into(), "P1:".into());
        assert_eq!(product.bounds(None, true), ("(P1;".into(), "[P1:".into()));
        assert_eq!(product.bounds(Some("O9"), true), ("(P1:O9".into(), "[P1:".into()));
        assert_eq!(product.bounds(None, false), ("[P1:".into(), "(P1;".into()));
        let by_id = Source::index(partition, "k".into()).starting_with("01AB");
        assert_eq!(by_id.bounds(None, true), ("(01AC".into(), "[01AB".into()));
        assert_eq!(by_id.bounds(Some("01ABX"), true), ("(01ABX".into(), "[01AB".into()));
        let product_by_id = Source::range(partition, "k".into(), "P1:".into()).starting_with("01AB");
        assert_eq!(product_by_id.bounds(None, false), ("[P1:01AB".into(), "(P1:01AC".into()));
    }

    #[test]
    fn each_source_first_gives_about_twice_its_share() {
        assert_eq!(share(51, 16), 8);
        assert_eq!(share(51, 1), 51, "never more than the page");
        assert_eq!(share(21, 50), 2);
        assert_eq!(share(5, 0), 5);
    }

    #[test]
    fn only_a_source_whose_whole_share_made_the_page_is_asked_again() {
        // Newest first, a page of 3 (wanted 4), shares of 2.
        let parts = [listed(&["Z", "Y"]), listed(&["X", "A"]), listed(&["W"])];
        let merged = merge(parts.iter().cloned(), 4, true);
        assert_eq!(ids(&merged), ["Z", "Y", "X", "W"]);
        // The first gave its whole share and all of it is in the page: it may
        // hold more (between Y and W). The second's share ends past the page.
        // The third gave less than its share: it is done.
        assert_eq!(unfinished(&parts, 2, 4, true), [(0, id("Y"))]);
        // Before the page is full, every source that gave its whole share may hold more.
        assert_eq!(unfinished(&parts, 2, 9, true).len(), 2);
    }

    #[test]
    fn the_merge_keeps_order_drops_repeats_and_stops_at_the_page() {
        let merged = merge([listed(&["A", "C"]), listed(&["B", "C", "D"])], 3, false);
        assert_eq!(ids(&merged), ["A", "B", "C"]);
    }
}

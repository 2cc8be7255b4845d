//! Product search by name: the prefixes a name is indexed under, and what a
//! query asks for.
//!
//! A name's words are its runs of letters and digits, in lower case. A
//! product is indexed under the first 2 to [`MAX_PREFIX_CHARS`] characters
//! of each of its first [`MAX_INDEXED_WORDS`] words, so that a search looks
//! up one prefix instead of reading every name. A query finds the products
//! that have, for each of its words, a word starting with it: `oak ch` finds
//! "Oak chair" and "Oaken chest", not "Cloak". A query needs a word of at
//! least [`MIN_QUERY_CHARS`] characters: one letter matches nearly everything
//! and tells nothing.

/// The shortest query word worth looking up.
pub const MIN_QUERY_CHARS: usize = 2;
/// The longest prefix indexed; a longer query word is looked up by its
/// first this many characters, then checked against the names found.
pub const MAX_PREFIX_CHARS: usize = 10;
/// Words of a name indexed at most (names may hold 200 characters).
pub const MAX_INDEXED_WORDS: usize = 16;
/// Words of a query used at most (a whole long name pasted in).
pub const MAX_QUERY_WORDS: usize = 32;
/// Words of a query whose index is asked how many products it holds (its
/// longest), to read the rarest.
pub const MAX_LOOKUPS: usize = 5;
/// Products an order search by product name covers at most: the newest
/// this many that match (a list merges one index per product).
pub const MAX_MATCHED_PRODUCTS: usize = 50;

/// The words of `text`: its runs of letters and digits, in lower case, each once.
pub fn words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = word.to_lowercase();
        if !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

/// The first `n` characters of `word` (all of it when shorter).
fn first_chars(word: &str, n: usize) -> &str {
    word.char_indices().nth(n).map_or(word, |(at, _)| &word[..at])
}

/// The prefixes a product named `name` is indexed under, sorted, each once.
pub fn index_prefixes(name: &str) -> Vec<String> {
    let mut prefixes: Vec<String> = words(name)
        .iter()
        .take(MAX_INDEXED_WORDS)
        .flat_map(|word| {
            let chars = word.chars().count().min(MAX_PREFIX_CHARS);
            (MIN_QUERY_CHARS..=chars).map(move |n| first_chars(word, n).to_string())
        })
        .collect();
    prefixes.sort_unstable();
    prefixes.dedup();
    prefixes
}

/// A search of products by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Its words, longest first.
    words: Vec<String>,
}

/// Why a query cannot be looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("type at least {MIN_QUERY_CHARS} letters of a word")]
    TooShort,
}

impl Query {
    /// The query `text` stands for: `Ok(None)` when it is blank (every
    /// product), [`QueryError::TooShort`] when no word of it has
    /// [`MIN_QUERY_CHARS`] characters.
    pub fn parse(text: &str) -> Result<Option<Query>, QueryError> {
        let mut words = words(text);
        if words.is_empty() {
            return Ok(None);
        }
        words.sort_by_key(|word| std::cmp::Reverse(word.chars().count()));
        words.truncate(MAX_QUERY_WORDS);
        if words[0].chars().count() < MIN_QUERY_CHARS {
            return Err(QueryError::TooShort);
        }
        Ok(Some(Query { words }))
    }

    /// The indexed prefixes that could be looked up: one per word of at
    /// least [`MIN_QUERY_CHARS`], cut to [`MAX_PREFIX_CHARS`], longest
    /// first, at most [`MAX_LOOKUPS`]. Each holds every match; the one that
    /// holds the fewest products is the one to read.
    pub fn lookups(&self) -> Vec<&str> {
        let mut lookups: Vec<&str> = self
            .words
            .iter()
            .filter(|word| word.chars().count() >= MIN_QUERY_CHARS)
            .map(|word| first_chars(word, MAX_PREFIX_CHARS))
            .collect();
        lookups.dedup();
        lookups.truncate(MAX_LOOKUPS);
        lookups
    }

    /// Whether everything the looked-up prefix finds matches (no other word
    /// to check, and the looked-up word is whole): then no name needs reading.
    pub fn is_lookup_exact(&self) -> bool {
        self.words.len() == 1 && self.words[0].chars().count() <= MAX_PREFIX_CHARS
    }

    /// Whether a product named `name` matches: each word of the query starts
    /// a word of the name.
    pub fn matches(&self, name: &str) -> bool {
        let name_words = words(name);
        self.words.iter().all(|wanted| name_words.iter().any(|word| word.starts_with(wanted.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_names_words_are_its_runs_of_letters_and_digits_in_lower_case() {
        assert_eq!(words("Oak chair, 2-seat (OAK)"), ["oak", "chair", "2", "seat"]);
        assert_eq!(words("Ærø Straße Ω"), ["ærø", "straße", "ω"]);
        assert!(words(" -- ").is_empty());
    }

    #[test]
    fn a_name_is_indexed_under_each_words_first_two_to_ten_characters() {
        assert_eq!(index_prefixes("Oak chair"), ["ch", "cha", "chai", "chair", "oa", "oak"]);
        assert_eq!(index_prefixes("A4 x"), ["a4"], "one-letter words are not indexed");
        let long = index_prefixes("Extraordinarily");
        assert_eq!(long.last().map(String::as_str), Some("extraordin"), "{long:?}");
        assert_eq!(long.len(), MAX_PREFIX_CHARS - 1);
        assert_eq!(index_prefixes("Ærø"), ["ær", "ærø"], "prefixes are cut at characters, not bytes");
        let many = (0..40).map(|n| format!("w{n}")).collect::<Vec<_>>().join(" ");
        assert_eq!(index_prefixes(&many).len(), MAX_INDEXED_WORDS);
    }

    #[test]
    fn a_query_looks_up_its_longest_word_and_matches_every_word_as_a_prefix() {
        let query = Query::parse("ch OAK").unwrap().unwrap();
        assert_eq!(query.lookups(), ["oak", "ch"]);
        assert!(!query.is_lookup_exact());
        assert!(query.matches("Oak chair") && query.matches("Oaken chest"));
        assert!(!query.matches("Oak table") && !query.matches("Cloak chair"));
        let single = Query::parse("Chair").unwrap().unwrap();
        assert!(single.is_lookup_exact());
        let long = Query::parse("extraordinarily").unwrap().unwrap();
        assert_eq!(long.lookups(), ["extraordin"]);
        assert!(!long.is_lookup_exact() && !long.matches("Extraordinary lamp"));
    }

    #[test]
    fn only_words_long_enough_are_looked_up_and_every_word_must_match() {
        assert_eq!(Query::parse("oak c").unwrap().unwrap().lookups(), ["oak"]);
        // A whole long name: its five longest words are looked up, all of them checked.
        let name = "Layout x7q 7 extraordinarily comfortable reclining armchair upholstered in wool";
        let query = Query::parse(name).unwrap().unwrap();
        assert_eq!(query.lookups().len(), MAX_LOOKUPS);
        assert!(query.matches(name));
        assert!(!query.matches(&name.replace(" 7 ", " 8 ")), "the short words count too");
    }

    #[test]
    fn a_query_too_short_to_be_useful_says_so() {
        assert_eq!(Query::parse("  "), Ok(None));
        assert_eq!(Query::parse("e"), Err(QueryError::TooShort));
        assert_eq!(Query::parse("a b -"), Err(QueryError::TooShort));
        assert!(Query::parse("oak c").unwrap().unwrap().matches("Oak chair"), "a short word still narrows");
        assert_eq!(QueryError::TooShort.to_string(), "type at least 2 letters of a word");
    }
}

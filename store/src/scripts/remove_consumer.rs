//! Removing an idle consumer: `remove_consumer.lua` and its call.

use std::sync::LazyLock;

use redis::Script;

use super::Call;

/// The script as Redis runs it.
pub(super) const SOURCE: &str = include_str!("remove_consumer.lua");
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SOURCE));

/// Removes `consumer` from `group` of `stream` if it holds no pending entry
/// (see `remove_consumer.lua`). Replies whether it was removed.
pub fn remove_consumer(stream: &str, group: &str, consumer: &str) -> Call<bool> {
    Call::new(&SCRIPT, &[stream.to_string()]).arg(group).arg(consumer)
}

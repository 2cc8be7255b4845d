//! Moving an entry of the layout before partitions: `migrate_entry.lua` and its call.

use std::sync::LazyLock;

use redis::Script;

use super::{ArgLayout, Call};
use crate::keys::PartitionKeys;

/// The script as Redis runs it.
pub(super) const SOURCE: &str = include_str!("migrate_entry.lua");
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SOURCE));
/// Its arguments: 1 first, then 2 per field; `migrate_entry.lua` declares the same.
pub(super) const ARGS: ArgLayout = ArgLayout { head: 1, each: 2 };

/// Copies one stream entry of the layout before partitions into `stream`
/// (a partition's stream, or its dead letters), once (see `migrate_entry.lua`).
/// Replies whether it was copied now.
pub fn migrate_entry(keys: &PartitionKeys, stream: &str, legacy_id: &str, fields: &[(String, String)]) -> Call<bool> {
    let mut call = Call::new(&SCRIPT, &[stream.to_string(), keys.migrated_entries()]).arg(legacy_id);
    for (field, value) in fields {
        call = call.arg(field).arg(value);
    }
    call.laid_out(ARGS, fields.len())
}

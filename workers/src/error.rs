//! Errors of the workers: what stops a consumer loop or fails one batch.
//!
//! A failed batch is tried again (every change is idempotent), so these are
//! for the log and for `main`'s exit; none is shown to a person.

use store::StoreError;

/// What went wrong in a consumer loop or the trimmer.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A command of the loop's own (a read, a group, a claim) failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A script run through the store's durability (a batch, dead letters) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A batch script answered a different number of replies than it was
    /// given entries: nothing can be said of any entry, so the batch is retried.
    #[error("a batch script answered {replies} replies for {entries} entries")]
    Replies { replies: usize, entries: usize },
    /// A consumer loop panicked; the others are stopped too.
    #[error("a consumer loop panicked: {0}")]
    Panicked(String),
}

pub type WorkerResult<T> = Result<T, WorkerError>;

impl WorkerError {
    /// The Redis error code (`NOGROUP`, say) when Redis itself refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            WorkerError::Redis(error) | WorkerError::Store(StoreError::Redis(error)) => error.code(),
            _ => None,
        }
    }
}

//! Errors of the store layer.

use domain::ProductError;

/// What can go wrong when reading or changing the shop's state.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// No product or order with that id.
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    /// The request itself is wrong; `field` names the culprit.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// Redis could not be reached or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The write is whole on the master but did not reach `REDIS_MIN_REPLICAS`
    /// replicas in time; a retry with the same idempotency key is safe.
    #[error("the write reached {reached} of {wanted} required replicas in time")]
    NotReplicated { wanted: u32, reached: u32 },
    /// Nothing was written: fewer than `REDIS_MIN_REPLICAS` replicas are
    /// online for the partition (a failover may have left a master without
    /// its own replica yet).
    #[error("{online} of {wanted} required replicas are online; nothing was written")]
    TooFewReplicas { wanted: u32, online: u32 },
    /// The task that would have done it stopped first (the process is
    /// shutting down); nothing is known to be written.
    #[error("{0} stopped before it answered; try again")]
    Stopped(&'static str),
    /// Redis holds something this code did not write (a corrupt or foreign key).
    #[error("corrupt data in {key}: {detail}")]
    Corrupt { key: String, detail: String },
}

pub type StoreResult<T, E = StoreError> = Result<T, E>;

impl StoreError {
    /// Logs what an operator should know of this error, at the boundary that
    /// answers it (REST, a server function): a replica shortfall as a
    /// warning, a failure of the infrastructure as an error under `context`,
    /// a client's mistake (not found, invalid) not at all.
    pub fn log(&self, context: &str) {
        match self {
            StoreError::NotFound { .. } | StoreError::Invalid { .. } => {}
            StoreError::NotReplicated { wanted, reached } => {
                tracing::warn!(wanted, reached, "a write did not reach enough replicas in time");
            }
            StoreError::TooFewReplicas { wanted, online } => {
                tracing::warn!(wanted, online, "refused a write: too few replicas online");
            }
            other => tracing::error!(error = %other, "{context}"),
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> StoreError {
        StoreError::Invalid { field, message: message.into() }
    }
}

impl From<ProductError> for StoreError {
    fn from(error: ProductError) -> StoreError {
        StoreError::Invalid { field: error.field, message: error.message }
    }
}

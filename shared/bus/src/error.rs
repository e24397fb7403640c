/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker could not be reached, or the connection dropped: retry later.
    #[error("message broker unavailable: {0}")]
    Unavailable(String),
    /// The broker refused the message (a nack, e.g. under a resource alarm or a full queue).
    #[error("message broker refused the message: {0}")]
    Refused(String),
    /// No queue is bound for the route: a topology error, not worth retrying.
    #[error("no queue is bound for {exchange}/{routing_key}")]
    Unroutable {
        exchange: String,
        routing_key: String,
    },
    #[error("broker protocol error: {0}")]
    Protocol(#[from] lapin::Error),
}

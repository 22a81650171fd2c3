use super::{QuotaSnapshot, QuotaStatus};
use serde::{Deserialize, Serialize};

/// Messages on `/api/quota/ws`, both directions, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WsMessage {
    /// First message after connecting: the current snapshot.
    QuotaInitial { data: QuotaSnapshot },
    /// Sent on every change. `previous_status` is the status this connection last saw.
    QuotaUpdate {
        data: QuotaSnapshot,
        previous_status: QuotaStatus,
    },
    /// Heartbeat; the other side answers with `pong`.
    Ping,
    /// The answer to a `ping`.
    Pong,
}

//! `GET /api/quota/ws`: live snapshots of one workspace.
//!
//! First `quota_initial`, then `quota_update` on every change: a status change
//! is sent at once, pure usage changes at most once per `ws_coalesce_ms` (the
//! newest wins). A JSON `ping` every heartbeat; a client that says nothing for
//! three heartbeats is dropped.

use super::error::ApiError;
use super::extract::{target_workspace, ApiQuery, Credentials, WorkspaceQuery};
use super::openapi::text;
use crate::model::{ApiError as ErrorBody, QuotaSnapshot, QuotaStatus, WsMessage};
use crate::service::{Credential as Presented, QuotaService};
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};

/// Largest frame a client may send; clients only ever send pings and pongs.
const MAX_CLIENT_MESSAGE_BYTES: usize = 4 * 1024;

/// Live snapshots of one workspace over a WebSocket.
///
/// A GET with `Upgrade: websocket`. Browsers cannot set headers on a
/// WebSocket, so besides the bearer key it accepts the session cookie or the
/// key as `?token=`. Every frame is a JSON text frame shaped like `WsMessage`:
/// first `quota_initial` with the current snapshot, then `quota_update` on
/// every change (a status change at once; pure usage changes at most once per
/// `websocket.coalesce_ms`, default 250 ms, newest wins) carrying the status
/// this connection last saw as `previous_status`. The server sends
/// `{"type":"ping"}` every heartbeat (`websocket.heartbeat_s`, default 15 s)
/// and answers a client's ping with `{"type":"pong"}`; a client that
/// says nothing for three heartbeats is dropped. Clients send only `ping` and
/// `pong` (at most 4 KiB): anything else closes with 1003. Revoking or rotating
/// the key closes with 1008; shutting down with 1001.
#[utoipa::path(
    get,
    path = "/api/quota/ws",
    tag = "quota",
    params(
        ("workspace_id" = Option<String>, Query, description = text::WORKSPACE_ID_QUERY),
        ("token" = Option<String>, Query, description = "A workspace or admin key, for clients that cannot set `Authorization` (browsers). Ignored when an `Authorization` header is sent."),
    ),
    responses(
        (status = 101, description = "Switching Protocols. From then on, JSON text frames, each a `WsMessage`.", body = WsMessage),
        (status = 400, description = "`websocket_required` (not an upgrade request), or the query or workspace id is not valid (`invalid_query`, `invalid_workspace_id`, `missing_workspace_id`).", body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = "`forbidden`: a workspace key naming another workspace, or an `Origin` that is neither this server nor in `QUOTA_ALLOWED_ORIGINS`.", body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
    ),
    security(("workspace_key" = []), ("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn quota_ws(
    State(service): State<QuotaService>,
    headers: HeaderMap,
    Credentials(resolved): Credentials,
    ApiQuery(query): ApiQuery<WorkspaceQuery>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // The one resolver (`api::extract::resolve_parts`): the bearer key, the
    // key as `?token=` (browsers cannot set headers on a WebSocket) or the
    // session cookie.
    let resolved = resolved?;
    let caller = resolved.caller;
    let credential = match resolved.credential {
        Presented::Bearer(key) | Presented::Token(key) => Credential::Key(key),
        Presented::Cookie(id) => Credential::Session(id),
    };
    let id = target_workspace(&service, &caller, query.workspace_id.as_deref())?;
    check_origin(&service, &headers)?;
    let upgrade = upgrade.map_err(|_| {
        ApiError::bad_request(
            "websocket_required",
            "This endpoint speaks WebSocket only: send an upgrade request.",
        )
    })?;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| session(socket, service, id, credential)))
}

struct Session {
    last_status: QuotaStatus,
    last_version: u64,
    last_sent_at: Instant,
}

/// Browsers send `Origin` on WebSocket handshakes and CORS does not apply to
/// them: a page elsewhere could otherwise open a socket with the user's session
/// cookie. Same-origin pages and `QUOTA_ALLOWED_ORIGINS` pass; non-browser
/// clients send no `Origin` and are judged by their key alone.
fn check_origin(service: &QuotaService, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = super::csrf::host_header(headers);
    if super::csrf::origin_allowed(origin, host, &service.config().allowed_origins) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Origin {origin} may not open this WebSocket; add it to QUOTA_ALLOWED_ORIGINS."
        )))
    }
}

/// What the connection authenticated with, re-checked when its workspace's
/// keys are rotated or revoked.
enum Credential {
    Key(String),
    Session(String),
}

impl Credential {
    fn still_valid(&self, service: &QuotaService) -> bool {
        match self {
            Credential::Key(key) => service.authenticate(key).is_some(),
            Credential::Session(id) => service.session_caller(id).is_some(),
        }
    }
}

async fn session(socket: WebSocket, service: QuotaService, id: String, credential: Credential) {
    let (mut sink, mut stream) = socket.split();
    let config = service.config().clone();
    let connections = service.metrics().websocket_connections.clone();
    connections.inc();
    // Decremented however the session ends.
    struct Open(prometheus::IntGauge);
    impl Drop for Open {
        fn drop(&mut self) {
            self.0.dec();
        }
    }
    let _open = Open(connections);
    let coalesce = Duration::from_millis(config.ws_coalesce_ms);
    let heartbeat_every = Duration::from_millis(config.ws_heartbeat_ms);

    // Subscribe before taking the first snapshot so no change falls in between.
    let mut updates = service.bus().subscribe(&id);
    let Ok(initial) = service.snapshot(&id) else {
        return;
    };
    let mut state = Session {
        last_status: initial.status,
        last_version: initial.version,
        last_sent_at: Instant::now(),
    };
    if send(&mut sink, &WsMessage::QuotaInitial { data: initial })
        .await
        .is_err()
    {
        return;
    }

    let mut heartbeat = tokio::time::interval_at(Instant::now() + heartbeat_every, heartbeat_every);
    let mut last_heard = Instant::now();
    let mut flush_at: Option<Instant> = None;
    let mut shutdown = service.shutdown_signal();
    let mut revocations = service.revocations();

    loop {
        tokio::select! {
            revoked = revocations.recv() => {
                let affected = match revoked {
                    Ok(workspace) => workspace == id,
                    // Missed some: re-check to be safe.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => false,
                };
                if affected && !credential.still_valid(&service) {
                    close(&mut sink, close_code::POLICY, "key revoked").await;
                    break;
                }
            }
            Ok(()) = shutdown.changed() => {
                let going = *shutdown.borrow_and_update();
                if going {
                    close(&mut sink, close_code::AWAY, "server shutting down").await;
                    break;
                }
            }
            changed = updates.changed() => {
                if changed.is_err() { break; }
                let Some(snapshot) = updates.borrow_and_update().clone() else { continue };
                if snapshot.version < state.last_version { continue; }
                if snapshot.status != state.last_status || state.last_sent_at.elapsed() >= coalesce {
                    if push(&mut sink, &mut state, &snapshot).await.is_err() { break; }
                    flush_at = None;
                } else if flush_at.is_none() {
                    flush_at = Some(state.last_sent_at + coalesce);
                }
            }
            _ = async { sleep_until(flush_at.unwrap_or_else(Instant::now)).await }, if flush_at.is_some() => {
                flush_at = None;
                let latest = updates.borrow().clone();
                if let Some(snapshot) = latest {
                    if push(&mut sink, &mut state, &snapshot).await.is_err() { break; }
                }
            }
            incoming = stream.next() => {
                last_heard = Instant::now();
                match incoming {
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<WsMessage>(&text) {
                        Ok(WsMessage::Ping) => {
                            if send(&mut sink, &WsMessage::Pong).await.is_err() { break; }
                        }
                        Ok(WsMessage::Pong) => {}
                        _ => {
                            close(&mut sink, close_code::UNSUPPORTED, "expected {\"type\":\"ping\"} or {\"type\":\"pong\"}").await;
                            break;
                        }
                    },
                    Some(Ok(Message::Binary(_))) => {
                        close(&mut sink, close_code::UNSUPPORTED, "binary frames are not accepted").await;
                        break;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > heartbeat_every * 3 {
                    close(&mut sink, close_code::AWAY, "no heartbeat answer").await;
                    break;
                }
                if send(&mut sink, &WsMessage::Ping).await.is_err() { break; }
            }
        }
    }
}

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

async fn push(
    sink: &mut Sink,
    state: &mut Session,
    snapshot: &Arc<QuotaSnapshot>,
) -> Result<(), axum::Error> {
    let message = WsMessage::QuotaUpdate {
        data: QuotaSnapshot::clone(snapshot),
        previous_status: state.last_status,
    };
    send(sink, &message).await?;
    state.last_status = snapshot.status;
    state.last_version = snapshot.version;
    state.last_sent_at = Instant::now();
    Ok(())
}

async fn send(sink: &mut Sink, message: &WsMessage) -> Result<(), axum::Error> {
    // Serialising our own types cannot fail; an empty object would be harmless.
    let text = serde_json::to_string(message).unwrap_or_else(|_| "{}".to_string());
    sink.send(Message::Text(text.into())).await
}

async fn close(sink: &mut Sink, code: u16, reason: &'static str) {
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

//! `GET /api/quota/ws`: live snapshots of one workspace.
//!
//! First `quota_initial`, then `quota_update` on every change: a status change
//! is sent at once, pure usage changes at most once per `ws_coalesce_ms` (the
//! newest wins). A JSON `ping` every heartbeat; a client that says nothing for
//! three heartbeats is dropped.
//!
//! Bounds: at most `QUOTA_MAX_WS_PER_WORKSPACE` sockets per caller (429
//! before the upgrade); every frame sent within `QUOTA_WS_SEND_TIMEOUT_S`, or
//! the socket is dropped (a client that stops reading cannot pin its task).
//! A socket opened with a session cookie closes with 1008 as soon as that
//! session ends (signed out, ended by the admin or the cap, revoked, here or
//! on another instance: the index signals every closure) and when it expires
//! (re-checked at its end time and on every heartbeat, without counting as a
//! use, so an open tab does not keep a session alive). Slightly over 400
//! lines: the session loop is one `select!` and reads best whole.

use super::doc_text as text;
use super::error::ApiError;
use super::extract::{target_workspace, ApiQuery, Credentials, WorkspaceQuery};
use crate::auth::key_digest;
use crate::browser_session::SessionDigest;
use crate::service::{ConnectionSlot, Credential as Presented, QuotaService};
use crate::wire::{ErrorBody, QuotaSnapshot, QuotaStatus, WsMessage};
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
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
/// the key closes with 1008, and so does the end of the session a cookie
/// socket was opened with (signed out, expired, ended by the admin); shutting
/// down with 1001. A client that stops reading is dropped once a frame cannot
/// be sent within `QUOTA_WS_SEND_TIMEOUT_S` (default 10 s). At most
/// `QUOTA_MAX_WS_PER_WORKSPACE` (default 256) sockets per workspace key and
/// its sessions (and as many for the admin) are open at once on one instance.
#[utoipa::path(
    get,
    path = "/api/quota/ws",
    tag = "quota",
    params(
        ("workspace_id" = Option<String>, Query, description = text::WORKSPACE_ID_QUERY),
        ("token" = Option<String>, Query, description = "A workspace or admin key, for clients that cannot set `Authorization` (browsers). Sent together with an `Authorization` header or a second `token`, it is refused (401: two credentials)."),
    ),
    responses(
        (status = 101, description = "Switching Protocols. From then on, JSON text frames, each a `WsMessage`.", body = WsMessage),
        (status = 400, description = "`websocket_required` (not an upgrade request), or the query or workspace id is not valid (`invalid_query`, `invalid_workspace_id`, `missing_workspace_id`).", body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = "`forbidden`: a workspace key naming another workspace, or an `Origin` that is neither this server nor in `QUOTA_ALLOWED_ORIGINS`.", body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 429, description = "`too_many_requests` (the API's rate limit, with `retry-after`), or `too_many_connections`: this caller already has `QUOTA_MAX_WS_PER_WORKSPACE` WebSockets open; close one first.", body = ErrorBody,
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
    // Taken before the upgrade, so one caller past its cap is told so in the
    // API's error shape; held by the session, given back when it ends.
    let slot = service.connections().try_acquire(&caller).ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            format!(
                "This key already has {} WebSockets open (QUOTA_MAX_WS_PER_WORKSPACE); close one first.",
                service.connections().max()
            ),
        )
    })?;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| session(socket, service, id, credential, slot)))
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
    /// Whether it still opens the workspace. For a session this is not a
    /// use: it does not push its expiry forward.
    fn still_valid(&self, service: &QuotaService) -> bool {
        match self {
            Credential::Key(key) => service.authenticate(key).is_some(),
            Credential::Session(id) => service.session_ends_at(&key_digest(id)).is_some(),
        }
    }

    fn session_digest(&self) -> Option<SessionDigest> {
        match self {
            Credential::Key(_) => None,
            Credential::Session(id) => Some(key_digest(id)),
        }
    }
}

/// When (on the socket's clock) the session of `digest` ends if unused, or
/// `None` if it is over.
fn session_deadline(service: &QuotaService, digest: &SessionDigest) -> Option<Instant> {
    let ends_at_ms = service.session_ends_at(digest)?;
    let left = ends_at_ms.saturating_sub(service.engine().now_ms());
    // Capped at a day: re-checked then (and on every heartbeat) anyway.
    Some(Instant::now() + Duration::from_millis(left.min(86_400_000)))
}

async fn session(
    socket: WebSocket,
    service: QuotaService,
    id: String,
    credential: Credential,
    _slot: ConnectionSlot,
) {
    let (sink, mut stream) = socket.split();
    let config = service.config().clone();
    let mut out = Outbox {
        sink,
        timeout: Duration::from_millis(config.session_caps.ws_send_timeout_ms),
    };
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

    // Subscribed before the session is checked, so a closure cannot fall in
    // between.
    let session_digest = credential.session_digest();
    let mut closures = session_digest.map(|_| service.session_closures());
    let mut session_ends = match &session_digest {
        Some(digest) => match session_deadline(&service, digest) {
            Some(deadline) => Some(deadline),
            None => {
                out.close(close_code::POLICY, "session ended").await;
                return;
            }
        },
        None => None,
    };

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
    if out
        .send(&WsMessage::QuotaInitial { data: initial })
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
                    out.close(close_code::POLICY, "key revoked").await;
                    break;
                }
            }
            closed = async {
                match closures.as_mut() {
                    Some(closures) => closures.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let affected = match closed {
                    Ok(digest) => Some(digest) == session_digest,
                    // Missed some: re-check to be safe.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        closures = None;
                        false
                    }
                };
                if affected && !credential.still_valid(&service) {
                    out.close(close_code::POLICY, "session ended").await;
                    break;
                }
            }
            _ = async { sleep_until(session_ends.unwrap_or_else(Instant::now)).await }, if session_ends.is_some() => {
                session_ends = session_digest.as_ref().and_then(|d| session_deadline(&service, d));
                if session_ends.is_none() {
                    out.close(close_code::POLICY, "session expired").await;
                    break;
                }
            }
            Ok(()) = shutdown.changed() => {
                let going = *shutdown.borrow_and_update();
                if going {
                    out.close(close_code::AWAY, "server shutting down").await;
                    break;
                }
            }
            changed = updates.changed() => {
                if changed.is_err() { break; }
                let Some(snapshot) = updates.borrow_and_update().clone() else { continue };
                if snapshot.version < state.last_version { continue; }
                if snapshot.status != state.last_status || state.last_sent_at.elapsed() >= coalesce {
                    if out.push(&mut state, &snapshot).await.is_err() { break; }
                    flush_at = None;
                } else if flush_at.is_none() {
                    flush_at = Some(state.last_sent_at + coalesce);
                }
            }
            _ = async { sleep_until(flush_at.unwrap_or_else(Instant::now)).await }, if flush_at.is_some() => {
                flush_at = None;
                let latest = updates.borrow().clone();
                if let Some(snapshot) = latest {
                    if out.push(&mut state, &snapshot).await.is_err() { break; }
                }
            }
            incoming = stream.next() => {
                last_heard = Instant::now();
                match incoming {
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<WsMessage>(&text) {
                        Ok(WsMessage::Ping) => {
                            if out.send(&WsMessage::Pong).await.is_err() { break; }
                        }
                        Ok(WsMessage::Pong) => {}
                        _ => {
                            out.close(close_code::UNSUPPORTED, "expected {\"type\":\"ping\"} or {\"type\":\"pong\"}").await;
                            break;
                        }
                    },
                    Some(Ok(Message::Binary(_))) => {
                        out.close(close_code::UNSUPPORTED, "binary frames are not accepted").await;
                        break;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                }
            }
            _ = heartbeat.tick() => {
                // The session's end is also re-checked here: its deadline is
                // on this socket's clock, the session's on the service's.
                if let Some(digest) = &session_digest {
                    session_ends = session_deadline(&service, digest);
                    if session_ends.is_none() {
                        out.close(close_code::POLICY, "session expired").await;
                        break;
                    }
                }
                if last_heard.elapsed() > heartbeat_every * 3 {
                    out.close(close_code::AWAY, "no heartbeat answer").await;
                    break;
                }
                if out.send(&WsMessage::Ping).await.is_err() { break; }
            }
        }
    }
}

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// The sending half, every frame bounded by the send timeout: a client that
/// stops reading fills the TCP buffers, and without a bound `send` would
/// wait (holding this task, its buffers and its connection slot) forever.
struct Outbox {
    sink: Sink,
    timeout: Duration,
}

/// The frame was not sent: the connection failed or the client stopped
/// reading. Either way the socket is dropped.
struct SendFailed;

impl Outbox {
    async fn send(&mut self, message: &WsMessage) -> Result<(), SendFailed> {
        // Serialising our own types cannot fail; an empty object would be harmless.
        let text = serde_json::to_string(message).unwrap_or_else(|_| "{}".to_string());
        self.send_frame(Message::Text(text.into())).await
    }

    async fn send_frame(&mut self, frame: Message) -> Result<(), SendFailed> {
        match tokio::time::timeout(self.timeout, self.sink.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(SendFailed),
        }
    }

    async fn push(
        &mut self,
        state: &mut Session,
        snapshot: &Arc<QuotaSnapshot>,
    ) -> Result<(), SendFailed> {
        let message = WsMessage::QuotaUpdate {
            data: QuotaSnapshot::clone(snapshot),
            previous_status: state.last_status,
        };
        self.send(&message).await?;
        state.last_status = snapshot.status;
        state.last_version = snapshot.version;
        state.last_sent_at = Instant::now();
        Ok(())
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        let _ = self
            .send_frame(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }
}

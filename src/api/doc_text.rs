//! Descriptions shared by many operations of the OpenAPI document, so one
//! wording covers one behaviour. A leaf: the handlers' `#[utoipa::path]`
//! annotations use it and `openapi.rs` collects those handlers, so the two
//! never import each other.

pub const UNAUTHORIZED: &str = "`unauthorized`: no key or session, a malformed `Authorization` header, more than one credential (two `Authorization` headers, a header and `?token=`, two session cookies), or a key that is not valid. Carries `WWW-Authenticate: Bearer`.";
pub const ADMIN_ONLY: &str =
    "`forbidden`: a workspace key (or its session); this endpoint needs the admin key.";
pub const OTHER_WORKSPACE: &str =
    "`forbidden`: a workspace key naming another workspace with `?workspace_id=`.";
pub const NO_SUCH_WORKSPACE: &str = "`not_found`: the workspace does not exist.";
pub const BAD_WORKSPACE_QUERY: &str = "`invalid_query` (an unknown or malformed query parameter, or one out of range), `invalid_workspace_id`, or `missing_workspace_id` (the admin key must name a workspace).";
pub const BAD_WORKSPACE_ID: &str =
    "`invalid_workspace_id`: not 1 to 64 characters of lowercase letters, digits, `_` and `-`.";
pub const BAD_BODY: &str = "`invalid_json` (not JSON) or `invalid_body` (not an object, an unknown field, or a field of the wrong type or range); the message names the field.";
pub const BAD_BODY_OR_ID: &str =
    "`invalid_json`, `invalid_body` (the message names the field) or `invalid_workspace_id`.";
pub const BAD_RECORD: &str = "`invalid_json`, `invalid_body` (the message names the field, e.g. `tokens_used` or `records[3].error`), `invalid_query`, `invalid_workspace_id` or `missing_workspace_id`.";
pub const PAYLOAD_TOO_LARGE: &str = "`payload_too_large`: the body is over 64 KiB.";
pub const BODY_TIMEOUT: &str = "`request_timeout`: the whole body did not arrive within `QUOTA_HTTP_BODY_TIMEOUT_S` (default 30 s).";
pub const UNSUPPORTED_MEDIA_TYPE: &str =
    "`unsupported_media_type`: send the body with `Content-Type: application/json`.";
pub const API_RATE_LIMITED: &str = "`too_many_requests`: over the API's own rate limit per caller (a workspace, whatever key spelling or session it uses, or the admin: `QUOTA_API_RATE_PER_KEY`) or, without a valid credential, per client address (`QUOTA_API_RATE_PER_IP`). This is about calls to this API, not the workspace's OpenAI quota.";
pub const CROSS_SITE: &str = "`cross_site_request`: sent by another site's page (`Sec-Fetch-Site` `cross-site` or `same-site`, or else an `Origin` that is neither this server nor in `QUOTA_ALLOWED_ORIGINS`). Nothing was changed.";
pub const STORE_UNAVAILABLE: &str = "`store_unavailable`: the usage store could not save the change, so it was not acknowledged; retry.";
pub const WORKSPACE_ID_QUERY: &str = "The workspace to act on. Required with the admin key; a workspace key may only name its own (or leave it out).";
pub const WORKSPACE_ID_PATH: &str =
    "The workspace id: 1 to 64 characters of lowercase letters, digits, `_` and `-`.";

//! Stored objects: refused. OpenAI keeps stored chat completions, responses,
//! conversations, files, vector stores and containers per organisation, and
//! every workspace shares the one organisation of the upstream key, so an
//! object one workspace stores could be read, continued or listed by any other.
//! quota-alert does not tag objects with their owner; it keeps them from being
//! made or referenced through the proxy at all:
//!
//! - `store` other than `false` is refused; `/v1/responses` gets `store: false`
//!   written in when the client did not say (the Responses API stores by
//!   default);
//! - `previous_response_id`, `conversation`, `background` (which needs a stored
//!   response), reusable `prompt`s (`pmpt_...`, kept by the organisation),
//!   `item_reference` inputs and input items that carry nothing but their
//!   `id` (which OpenAI can only resolve from storage), existing containers
//!   and stored audio (`audio.id`) are refused;
//! - `file_id`, `file_ids`, `vector_store_id` and `vector_store_ids` are
//!   refused wherever they are in the body, not only where they are known to
//!   be today: the API keeps adding places that take a file (function call
//!   outputs, image masks, screenshots), and a list of places would miss the
//!   next one. Only a string or a non-empty list counts, so a JSON schema
//!   that merely has a `file_id` property (an object) still passes.
//!
//! Reading or deleting objects by id (`GET /v1/responses/{id}`, `/v1/files`,
//! ...) is outside the endpoint allowlist already.
//!
//! The body forwarded is the JSON value checked here, serialised again, so a
//! duplicate key or an unusual encoding cannot mean one thing to this check and
//! another to the upstream's parser.
//!
//! Just over 400 lines only with its unit tests (the checks themselves are
//! about 215): every refusal sits beside the cases that prove it.

use super::endpoints::BodyPolicy;
use bytes::Bytes;
use serde_json::{Map, Value};

/// A refused body: OpenAI's 400 `invalid_request_error` with `param` naming
/// the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `unsupported_parameter` for a stored-object field, `invalid_body` for a
    /// body that is not a JSON object.
    pub code: &'static str,
    pub param: Option<String>,
    pub message: String,
}

/// The body to forward (`None`: forward it as it came), or why not.
pub fn check_body(policy: BodyPolicy, body: &Bytes) -> Result<Option<Bytes>, Refusal> {
    if policy == BodyPolicy::None {
        return Ok(None);
    }
    // Whatever the content type says: the upstream may parse JSON regardless.
    let mut json =
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(json)) => json,
            _ => return Err(Refusal {
                code: "invalid_body",
                param: None,
                message:
                    "The body must be a JSON object (sent with `Content-Type: application/json`)."
                        .into(),
            }),
        };
    match policy {
        BodyPolicy::ChatCompletions => check_chat(&json)?,
        BodyPolicy::Responses => {
            check_responses(&json)?;
            json.entry("store").or_insert(Value::Bool(false));
            if json.get("store").is_some_and(Value::is_null) {
                json.insert("store".into(), Value::Bool(false));
            }
        }
        BodyPolicy::None => {}
    }
    serde_json::to_vec(&json)
        .map(|bytes| Some(Bytes::from(bytes)))
        .map_err(|e| Refusal {
            code: "invalid_body",
            param: None,
            message: format!("The body could not be re-encoded: {e}"),
        })
}

fn refuse(param: impl Into<String>, what: &str) -> Refusal {
    let param = param.into();
    Refusal {
        code: "unsupported_parameter",
        message: format!(
            "`{param}` is not available through quota-alert: {what} would live in the OpenAI \
             organisation that every workspace here shares, where other workspaces could read it. \
             Keep conversation state on your side and send it with each request."
        ),
        param: Some(param),
    }
}

/// Present and not `false`/`null`.
fn set(json: &Map<String, Value>, key: &str) -> bool {
    !matches!(
        json.get(key),
        None | Some(Value::Null) | Some(Value::Bool(false))
    )
}

/// Present and not `null`.
fn present(json: &Map<String, Value>, key: &str) -> bool {
    !matches!(json.get(key), None | Some(Value::Null))
}

fn check_chat(json: &Map<String, Value>) -> Result<(), Refusal> {
    if set(json, "store") {
        return Err(refuse("store", "a stored chat completion"));
    }
    for (i, message) in array(json, "messages") {
        if message
            .get("audio")
            .and_then(Value::as_object)
            .is_some_and(|a| present(a, "id"))
        {
            return Err(refuse(format!("messages[{i}].audio.id"), "stored audio"));
        }
    }
    stored_ids(json, "")
}

fn check_responses(json: &Map<String, Value>) -> Result<(), Refusal> {
    if set(json, "store") {
        return Err(refuse("store", "a stored response"));
    }
    if present(json, "previous_response_id") {
        return Err(refuse("previous_response_id", "a stored response"));
    }
    if present(json, "conversation") {
        return Err(refuse("conversation", "a stored conversation"));
    }
    if set(json, "background") {
        return Err(refuse(
            "background",
            "a background response (always stored)",
        ));
    }
    if present(json, "prompt") {
        return Err(refuse("prompt", "a stored prompt"));
    }
    for (i, item) in array(json, "input") {
        if item.get("type").and_then(Value::as_str) == Some("item_reference") {
            return Err(refuse(format!("input[{i}]"), "a stored item"));
        }
        // `{"type": "image_generation_call", "id": "ig_1"}` and the like: an
        // item with nothing but its id can only be read from storage.
        let only_an_id = present(item, "id") && item.keys().all(|k| k == "id" || k == "type");
        if only_an_id {
            return Err(refuse(format!("input[{i}].id"), "a stored item"));
        }
    }
    for (i, tool) in array(json, "tools") {
        if let Some(Value::String(_)) = tool.get("container") {
            return Err(refuse(
                format!("tools[{i}].container"),
                "an existing container",
            ));
        }
    }
    stored_ids(json, "")
}

/// Refuses a file or vector-store id anywhere in `json`; `at` is the path of
/// `json` itself (`""` at the top), for `param`.
fn stored_ids(json: &Map<String, Value>, at: &str) -> Result<(), Refusal> {
    for (key, value) in json {
        let here = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        let what = match key.as_str() {
            "file_id" | "file_ids" => Some("an uploaded file"),
            "vector_store_id" | "vector_store_ids" => Some("a vector store"),
            _ => None,
        };
        let is_id = match value {
            Value::String(_) | Value::Number(_) => true,
            Value::Array(items) => !items.is_empty(),
            _ => false,
        };
        if let (Some(what), true) = (what, is_id) {
            return Err(refuse(here, what));
        }
        stored_ids_in(value, &here)?;
    }
    Ok(())
}

fn stored_ids_in(value: &Value, at: &str) -> Result<(), Refusal> {
    match value {
        Value::Object(object) => stored_ids(object, at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| stored_ids_in(item, &format!("{at}[{i}]"))),
        _ => Ok(()),
    }
}

/// The objects of `json[key]` when it is an array, with their indexes.
fn array<'a>(
    json: &'a Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = (usize, &'a Map<String, Value>)> {
    json.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, v)| v.as_object().map(|o| (i, o)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(policy: BodyPolicy, body: Value) -> Result<Value, Refusal> {
        let bytes = Bytes::from(serde_json::to_vec(&body).unwrap());
        check_body(policy, &bytes).map(|out| {
            out.map(|b| serde_json::from_slice(&b).unwrap())
                .unwrap_or(body)
        })
    }

    fn refused_param(policy: BodyPolicy, body: Value) -> String {
        let refusal = check(policy, body).unwrap_err();
        assert_eq!(refusal.code, "unsupported_parameter");
        assert!(
            refusal.message.contains("quota-alert"),
            "{}",
            refusal.message
        );
        refusal.param.unwrap()
    }

    #[test]
    fn responses_are_never_stored_nor_continued() {
        let out = check(BodyPolicy::Responses, json!({"model": "m", "input": "hi"})).unwrap();
        assert_eq!(out["store"], false, "the Responses API stores by default");
        let out = check(BodyPolicy::Responses, json!({"model": "m", "store": null})).unwrap();
        assert_eq!(out["store"], false);
        assert!(check(BodyPolicy::Responses, json!({"store": false})).is_ok());
        use BodyPolicy::Responses as R;
        assert_eq!(refused_param(R, json!({"store": true})), "store");
        assert_eq!(refused_param(R, json!({"store": "yes"})), "store");
        assert_eq!(
            refused_param(R, json!({"previous_response_id": "resp_1"})),
            "previous_response_id"
        );
        assert_eq!(
            refused_param(R, json!({"conversation": "conv_1"})),
            "conversation"
        );
        assert_eq!(refused_param(R, json!({"background": true})), "background");
        assert_eq!(
            refused_param(
                R,
                json!({"input": [{"type": "item_reference", "id": "msg_1"}]})
            ),
            "input[0]"
        );
        assert_eq!(
            refused_param(
                R,
                json!({"input": ["x", {"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]})
            ),
            "input[1].content[0].file_id"
        );
        assert_eq!(
            refused_param(
                R,
                json!({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]})
            ),
            "tools[0].vector_store_ids"
        );
        assert_eq!(
            refused_param(
                R,
                json!({"tools": [{"type": "code_interpreter", "container": "cntr_1"}]})
            ),
            "tools[0].container"
        );
        assert!(check(
            R,
            json!({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]})
        )
        .is_ok());
        assert_eq!(
            refused_param(
                R,
                json!({"tools": [{"type": "code_interpreter", "container": {"type": "auto", "file_ids": ["file-1"]}}]})
            ),
            "tools[0].container.file_ids"
        );
    }

    #[test]
    fn org_objects_are_refused_wherever_they_hide() {
        use BodyPolicy::Responses as R;
        assert_eq!(
            refused_param(R, json!({"prompt": {"id": "pmpt_1", "version": "2"}})),
            "prompt"
        );
        assert_eq!(
            refused_param(
                R,
                json!({"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_file", "file_id": "file-1"}]}]})
            ),
            "input[0].output[0].file_id"
        );
        assert_eq!(
            refused_param(
                R,
                json!({"input": [{"type": "computer_call_output", "call_id": "c", "output": {"type": "computer_screenshot", "file_id": "file-1"}}]})
            ),
            "input[0].output.file_id"
        );
        assert_eq!(
            refused_param(
                R,
                json!({"tools": [{"type": "image_generation", "input_image_mask": {"file_id": "file-1"}}]})
            ),
            "tools[0].input_image_mask.file_id"
        );
        assert_eq!(
            refused_param(
                R,
                json!({"input": [{"type": "image_generation_call", "id": "ig_1"}]})
            ),
            "input[0].id"
        );
        // A schema with a `file_id` property, an empty list and a message
        // item that has an id and its content are not references.
        assert!(check(
            R,
            json!({
                "input": [{"type": "message", "id": "msg_1", "role": "user", "content": "hi"}],
                "tools": [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {"file_id": {"type": "string"}}, "required": ["file_id"]}}],
                "text": {"format": {"type": "json_schema", "name": "s", "schema": {"properties": {"file_ids": {"type": "array"}}}}},
                "file_ids": []
            })
        )
        .is_ok());
        use BodyPolicy::ChatCompletions as C;
        assert_eq!(
            refused_param(
                C,
                json!({"messages": [{"role": "tool", "tool_call_id": "c", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]})
            ),
            "messages[0].content[0].file.file_id"
        );
    }

    #[test]
    fn chat_completions_are_never_stored() {
        use BodyPolicy::ChatCompletions as C;
        assert!(check(C, json!({"model": "m", "messages": [], "store": false})).is_ok());
        let out = check(C, json!({"model": "m", "messages": []})).unwrap();
        assert!(
            out.get("store").is_none(),
            "chat completions are not stored by default"
        );
        assert_eq!(refused_param(C, json!({"store": true})), "store");
        assert_eq!(
            refused_param(
                C,
                json!({"messages": [{"role": "assistant", "audio": {"id": "audio_1"}}]})
            ),
            "messages[0].audio.id"
        );
        assert_eq!(
            refused_param(
                C,
                json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]})
            ),
            "messages[0].content[0].file.file_id"
        );
    }

    #[test]
    fn what_is_checked_is_what_is_forwarded() {
        // serde_json keeps the last of duplicate keys; forwarding the checked
        // value means the upstream sees that one too, whatever its parser does.
        let body = Bytes::from_static(br#"{"store": true, "store": false, "model": "m"}"#);
        let out = check_body(BodyPolicy::Responses, &body).unwrap().unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap()["store"],
            false
        );
        assert_eq!(String::from_utf8_lossy(&out).matches("store").count(), 1);
        for bad in [&b"not json"[..], b"[1]", b"", b"\"x\""] {
            let refusal =
                check_body(BodyPolicy::ChatCompletions, &Bytes::from(bad.to_vec())).unwrap_err();
            assert_eq!(refusal.code, "invalid_body");
        }
        assert_eq!(
            check_body(BodyPolicy::None, &Bytes::from_static(b"x")),
            Ok(None)
        );
    }
}

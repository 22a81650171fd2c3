//! The conversation panel: the quota banner, the transcript and the composer.
//! Messages go through `send_message` (the tracked client), so each one is
//! admitted and counted like any other call. While the workspace is
//! RATE_LIMITED or QUOTA_EXCEEDED the send button is disabled with the reason
//! and a countdown; the transcript stays readable, and sending comes back by
//! itself when the status allows.

use crate::server_fns::chat::send_message;
use crate::ui::components::banner::QuotaBanner;
use crate::ui::components::icon::{Icon, IconName};
use crate::ui::components::status_view::status_label;
use crate::ui::format::{countdown, utc_datetime};
use crate::ui::hooks::use_quota_monitor::use_quota_monitor;
use crate::ui::hooks::use_ticker::use_ticker;
use crate::wire::{ChatMessage, ChatOutcome, ChatRole};
use leptos::html;
use leptos::prelude::*;

/// An error shown in the transcript, never silently dropped.
#[derive(Clone, Debug, PartialEq)]
struct InlineError {
    title: &'static str,
    message: String,
}

/// Readable text for a server function error.
pub fn describe_error(error: &ServerFnError) -> String {
    match error {
        ServerFnError::ServerError(message) => message.clone(),
        ServerFnError::Request(_) => {
            "The server could not be reached. Check the connection and try again.".to_string()
        }
        other => other.to_string(),
    }
}

/// The quota it obeys comes from the page's monitor and clock (context).
#[component]
pub fn ConversationPanel(
    workspace_id: String,
    conversation: String,
    transcript: Vec<ChatMessage>,
) -> impl IntoView {
    let monitor = use_quota_monitor();
    let clock = use_ticker();
    let messages = RwSignal::new(transcript);
    let draft = RwSignal::new(String::new());
    let sending = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<InlineError>);
    let log_ref = NodeRef::<html::Div>::new();

    let status = Memo::new(move |_| monitor.snapshot.with(|s| s.status));
    let blocked = move || status.get().blocks_requests();
    let retry_left = move || {
        monitor
            .snapshot
            .with(|s| s.retry_after_s)
            .map(|s| clock.left(monitor.received_at.get(), s))
    };
    let can_send =
        move || !blocked() && sending.with(Option::is_none) && !draft.with(|d| d.trim().is_empty());

    // Keep the newest message in view.
    Effect::new(move |_| {
        messages.track();
        sending.track();
        error.track();
        if let Some(log) = log_ref.get() {
            log.set_scroll_top(log.scroll_height());
        }
    });

    let send = {
        let workspace_id = workspace_id.clone();
        move || {
            let text = draft.get_untracked().trim().to_string();
            let blocked_now = status.get_untracked().blocks_requests();
            if text.is_empty() || sending.get_untracked().is_some() || blocked_now {
                return;
            }
            sending.set(Some(text.clone()));
            error.set(None);
            let (workspace_id, conversation) = (workspace_id.clone(), conversation.clone());
            leptos::task::spawn_local(async move {
                let outcome = send_message(workspace_id, conversation, text).await;
                sending.try_set(None);
                match outcome {
                    Ok(ChatOutcome::Replied { user, reply }) => {
                        messages.try_update(|m| {
                            m.push(user);
                            m.push(reply);
                        });
                        draft.try_set(String::new());
                    }
                    Ok(ChatOutcome::Blocked {
                        status, message, ..
                    }) => {
                        error.try_set(Some(InlineError {
                            title: status_label(status),
                            message,
                        }));
                    }
                    Ok(ChatOutcome::Failed { message }) => {
                        error.try_set(Some(InlineError {
                            title: "Not sent",
                            message,
                        }));
                    }
                    Err(e) => {
                        error.try_set(Some(InlineError {
                            title: "Not sent",
                            message: describe_error(&e),
                        }));
                    }
                }
            });
        }
    };
    let on_submit = {
        let send = send.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            send();
        }
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        // Enter sends, Shift+Enter starts a new line.
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        }
    };

    let hint = move || {
        if blocked() {
            let when = match retry_left() {
                Some(left) if left > 0.0 => format!("allowed again in {}", countdown(left)),
                Some(_) => "allowed again any moment now".to_string(),
                None => "no retry time is known yet".to_string(),
            };
            format!(
                "Sending is paused: {} — {when}.",
                status_label(status.get()).to_lowercase()
            )
        } else if sending.with(Option::is_some) {
            "Waiting for the reply…".to_string()
        } else {
            "Enter sends · Shift+Enter for a new line · every message counts toward the quota."
                .to_string()
        }
    };

    view! {
        <section class="card conversation" aria-labelledby="conversation-heading">
            <h2 id="conversation-heading">"Conversation"</h2>
            <QuotaBanner/>
            <div class="transcript" node_ref=log_ref data-testid="transcript" role="log" aria-live="polite" aria-label="Transcript">
                <Show when=move || messages.with(Vec::is_empty) && sending.with(Option::is_none)>
                    <p class="transcript-empty">
                        "No messages yet. Ask something below: the reply comes from OpenAI through this workspace's quota."
                    </p>
                </Show>
                <For each=move || messages.get().into_iter().enumerate() key=|(i, m)| (*i, m.at.clone()) let:item>
                    <Message message=item.1/>
                </For>
                {move || sending.get().map(|text| view! {
                    <div class="message message-user message-pending" data-testid="message-pending">
                        <div class="message-meta"><span class="message-role">"You"</span><span>"sending…"</span></div>
                        <p class="message-body">{text}</p>
                    </div>
                })}
                {move || error.get().map(|e| view! {
                    <div class="message message-error" role="alert" data-testid="chat-error">
                        <div class="message-meta"><span class="message-role"><Icon name=IconName::Warning/>" "{e.title}</span></div>
                        <p class="message-body">{e.message}</p>
                        <p class="message-note">"Your text is still in the box below; send it again when ready."</p>
                    </div>
                })}
            </div>
            <form class="composer" on:submit=on_submit>
                <label class="visually-hidden" for="composer-text">"Message"</label>
                <textarea
                    id="composer-text"
                    name="message"
                    rows="3"
                    maxlength="8000"
                    placeholder="Write a message…"
                    data-testid="composer"
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                    on:keydown=on_keydown
                    aria-describedby="send-hint"
                ></textarea>
                <div class="composer-bar">
                    <p
                        id="send-hint"
                        class=move || if blocked() { "send-hint send-hint-blocked" } else { "send-hint" }
                        data-testid="send-hint"
                    >
                        {move || blocked().then_some(view! { <Icon name=IconName::Pause/>" " })}
                        {hint}
                    </p>
                    <button
                        type="submit"
                        data-testid="send"
                        disabled=move || !can_send()
                        aria-describedby="send-hint"
                        title=move || blocked().then(hint)
                    >
                        {move || if sending.with(Option::is_some) { "Sending…" } else { "Send" }}
                    </button>
                </div>
            </form>
        </section>
    }
}

#[component]
fn Message(message: ChatMessage) -> impl IntoView {
    let (class, who) = match message.role {
        ChatRole::User => ("message message-user", "You"),
        ChatRole::Assistant => ("message message-assistant", "Assistant"),
    };
    view! {
        <div class=class data-testid="message" data-role=who.to_lowercase()>
            <div class="message-meta">
                <span class="message-role">{who}</span>
                <time datetime=message.at.clone()>{utc_datetime(&message.at)}</time>
            </div>
            <p class="message-body">{message.content}</p>
        </div>
    }
}

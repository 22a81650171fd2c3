//! Labelled inputs that show a refusal beside themselves. A form keeps one
//! [`FormErrors`]: the field the server (or the form) refused, by the API's
//! name for it (`time_zone`, `budgets[1].anchor`), and why. Every input
//! knows its own name, so the refused one marks itself `aria-invalid`, shows
//! the message under it and points to it with `aria-describedby`.

use crate::wire::AdminRefusal;
use leptos::prelude::*;

/// The refusal a form shows, if any (`Copy`).
#[derive(Clone, Copy)]
pub struct FormErrors(RwSignal<Option<Refused>>);

#[derive(Clone, Debug, PartialEq)]
struct Refused {
    /// The API's name for the field; `None` when the refusal is about none.
    field: Option<String>,
    message: String,
}

impl Default for FormErrors {
    fn default() -> Self {
        Self::new()
    }
}

impl FormErrors {
    pub fn new() -> Self {
        Self(RwSignal::new(None))
    }

    pub fn clear(&self) {
        self.0.set(None);
    }

    pub fn field(&self, field: impl Into<String>, message: impl Into<String>) {
        self.0.set(Some(Refused {
            field: Some(field.into()),
            message: message.into(),
        }));
    }

    /// A refusal about no field in particular (the store, the session).
    pub fn general(&self, message: impl Into<String>) {
        self.0.set(Some(Refused {
            field: None,
            message: message.into(),
        }));
    }

    pub fn refused(&self, refusal: &AdminRefusal) {
        self.0.set(Some(Refused {
            field: refusal.field.clone(),
            message: refusal.message.clone(),
        }));
    }

    /// The message for `field`, when it is the one refused. The server's
    /// message starts with the field's name (`time_zone: …`); beside the
    /// input that is said already, so it is left off.
    pub fn message_for(&self, field: &str) -> Option<String> {
        self.0.with(|r| {
            r.as_ref()
                .filter(|r| r.field.as_deref() == Some(field))
                .map(|r| {
                    r.message
                        .strip_prefix(field)
                        .and_then(|m| m.strip_prefix(": "))
                        .unwrap_or(&r.message)
                        .to_string()
                })
        })
    }

    /// The whole refusal, for the summary beside the submit button.
    pub fn summary(&self) -> Option<String> {
        self.0.with(|r| r.as_ref().map(|r| r.message.clone()))
    }
}

/// What an input holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InputKind {
    #[default]
    Text,
    /// A whole number (`inputmode=numeric`; text, so "abc" reaches the
    /// form's own check instead of being silently emptied by the browser).
    Whole,
    /// A dollar amount.
    Dollars,
    Date,
}

/// An id for an element from any text (row names are typed by people):
/// letters, digits and `-` only.
pub fn dom_id(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A labelled input bound to `value`, showing `errors`' message for `field`.
#[component]
pub fn Field(
    /// Unique on the page, stable across server and browser renders.
    id: String,
    label: &'static str,
    value: RwSignal<String>,
    /// The API's name for this input's value (changes as rows move).
    #[prop(into)]
    field: Signal<String>,
    errors: FormErrors,
    #[prop(optional)] kind: InputKind,
    #[prop(optional)] placeholder: &'static str,
    /// A `<datalist>` id offering suggestions.
    #[prop(optional)]
    list: Option<&'static str>,
    #[prop(optional)] required: bool,
) -> impl IntoView {
    let error = Memo::new(move |_| errors.message_for(&field.get()));
    let error_id = format!("{id}-error");
    let described = error_id.clone();
    let (input_type, inputmode) = match kind {
        InputKind::Text => ("text", None),
        InputKind::Whole => ("text", Some("numeric")),
        InputKind::Dollars => ("text", Some("decimal")),
        InputKind::Date => ("date", None),
    };
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input
                id=id
                type=input_type
                inputmode=inputmode
                list=list
                placeholder=placeholder
                required=required
                spellcheck="false"
                autocomplete="off"
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
                aria-invalid=move || error.get().is_some().then_some("true")
                aria-describedby=move || error.get().is_some().then(|| described.clone())
            />
            {move || error.get().map(|message| view! {
                <p class="field-error" id=error_id.clone()>{message}</p>
            })}
        </div>
    }
}

/// A labelled `<select>` of `(value, text)` options bound to `value`.
#[component]
pub fn Choice(
    id: String,
    label: &'static str,
    value: RwSignal<String>,
    options: &'static [(&'static str, &'static str)],
    #[prop(into)] field: Signal<String>,
    errors: FormErrors,
) -> impl IntoView {
    let error = Memo::new(move |_| errors.message_for(&field.get()));
    let error_id = format!("{id}-error");
    let described = error_id.clone();
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <select
                id=id
                on:change=move |ev| value.set(event_target_value(&ev))
                aria-invalid=move || error.get().is_some().then_some("true")
                aria-describedby=move || error.get().is_some().then(|| described.clone())
            >
                // The attribute for the server's HTML, the property for every
                // change after (an attribute stops counting once a person picks).
                {options.iter().map(|(v, text)| view! {
                    <option
                        value=*v
                        selected=value.get_untracked() == *v
                        prop:selected=move || value.get() == *v
                    >{*text}</option>
                }).collect_view()}
            </select>
            {move || error.get().map(|message| view! {
                <p class="field-error" id=error_id.clone()>{message}</p>
            })}
        </div>
    }
}

//! A workspace key, shown the one time it exists in the clear (created or
//! rotated): read-only, with a copy button (`navigator.clipboard`), and the
//! plain warning that it cannot be shown again: only its digest is kept.

use crate::ui::components::icon::{Icon, IconName};
use leptos::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Copied {
    Not,
    Done,
    /// No clipboard (a page not served over HTTPS or from localhost, or the
    /// browser said no): the key is selected for copying by hand.
    Failed,
}

#[component]
pub fn KeyReveal(
    workspace: String,
    key: String,
    /// What just happened ("The workspace is created.").
    what: &'static str,
    /// Hides the key (the admin has stored it).
    #[prop(into)]
    on_done: Callback<()>,
) -> impl IntoView {
    let copied = RwSignal::new(Copied::Not);
    let input_id = format!("key-{workspace}");
    let heading_id = format!("{input_id}-heading");
    let input = NodeRef::<leptos::html::Input>::new();
    let copy = {
        let key = key.clone();
        move |_| {
            #[cfg(feature = "hydrate")]
            {
                let key = key.clone();
                leptos::task::spawn_local(async move {
                    let ok = clipboard::write(&key).await;
                    copied.try_set(if ok { Copied::Done } else { Copied::Failed });
                    if !ok {
                        if let Some(input) = input.get_untracked() {
                            input.select();
                        }
                    }
                });
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (&key, input);
        }
    };
    view! {
        <section class="key-reveal" aria-labelledby=heading_id.clone() data-testid="key-reveal">
            <h3 id=heading_id.clone()>
                <Icon name=IconName::Key/>" "{format!("New key for {workspace}")}
            </h3>
            <p>{what}</p>
            <p class="key-warning">
                <strong>"Copy it now: you will not see it again."</strong>
                " Only its digest is kept. If it is lost, rotate the key to get a new one."
            </p>
            <div class="key-row">
                <label for=input_id.clone() class="visually-hidden">{format!("API key of {workspace}")}</label>
                <input
                    id=input_id
                    node_ref=input
                    class="key-value"
                    type="text"
                    readonly
                    spellcheck="false"
                    autocomplete="off"
                    value=key
                    data-testid="new-key"
                />
                <button type="button" on:click=copy>
                    {move || if copied.get() == Copied::Done { "Copied" } else { "Copy key" }}
                </button>
            </div>
            <p class="fine-print" role="status">
                {move || match copied.get() {
                    Copied::Not => "",
                    Copied::Done => "The key is on your clipboard.",
                    Copied::Failed => "This browser would not copy it: the key is selected, copy it by hand.",
                }}
            </p>
            <button type="button" class="button-small button-quiet" on:click=move |_| on_done.run(())>
                "I have stored it: hide the key"
            </button>
        </section>
    }
}

#[cfg(feature = "hydrate")]
mod clipboard {
    use wasm_bindgen::JsValue;

    /// Writes `text` to the clipboard; whether it worked.
    pub async fn write(text: &str) -> bool {
        let navigator = leptos::prelude::window().navigator();
        let clipboard = navigator.clipboard();
        // Outside a secure context `navigator.clipboard` is undefined, and
        // calling it would throw.
        if JsValue::from(&clipboard).is_undefined() {
            return false;
        }
        wasm_bindgen_futures::JsFuture::from(clipboard.write_text(text))
            .await
            .is_ok()
    }
}

//! Content-Security-Policy: pages may run the app's own script and WASM and
//! nothing else.
//!
//! Each page render gets a fresh nonce (Leptos puts it on the hydration
//! script and on the scripts that carry resolved resources); the policy allows
//! scripts from this origin and that nonce, WASM compilation, and connections
//! back to this origin only (server functions and the WebSocket).

use leptos::prelude::use_context;

/// The policy for a page whose inline scripts carry `nonce`.
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
         manifest-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; \
         frame-ancestors 'none'"
    )
}

/// Everything else (JSON, the API docs page, static files): nothing runs, and
/// nothing may frame it.
pub const DEFAULT_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Called in a page request's context before it renders (leptos_axum's
/// additional-context hook, for routes and for the not-found page), so the
/// nonce exists before the first script is written: makes a nonce for
/// Leptos's scripts and sets the matching policy header.
pub fn provide_for_page() {
    leptos::nonce::provide_nonce();
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    if let Ok(value) = axum::http::HeaderValue::from_str(&page_policy(&nonce)) {
        response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_policy_allows_only_own_scripts_and_no_framing() {
        let policy = page_policy("abc123");
        assert!(policy.contains("script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval';"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(!policy.contains("unsafe-inline"));
        assert!(!policy.contains(" 'unsafe-eval'"), "only wasm-unsafe-eval");
        assert!(!policy.contains('*'));
    }
}

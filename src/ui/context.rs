//! What a whole page shares, provided once through Leptos context rather than
//! passed down as props:
//!
//! - [`SignedIn`]: who is signed in (the top bar shows it), on the pages that
//!   need a session;
//! - the page's clock ([`Ticker::provide`](crate::ui::hooks::use_ticker::Ticker::provide),
//!   read with [`use_ticker`](crate::ui::hooks::use_ticker::use_ticker));
//! - on the conversation page, the quota monitor
//!   ([`provide_quota_monitor`](crate::ui::hooks::use_quota_monitor::provide_quota_monitor),
//!   read with [`use_quota_monitor`](crate::ui::hooks::use_quota_monitor::use_quota_monitor)).
//!
//! Context follows the reactive owner tree, not the component tree (a
//! component makes no owner of its own), and a value stays on its owner until
//! the owner is dropped. So a page that signs someone in renders inside
//! `<Provider value=SignedIn(..)>`, which makes a fresh owner for that page
//! alone; the clock and the monitor the page then provides land on that owner
//! too. The error branch of the same route, rendered instead of the page,
//! sees none of them. Every value is provided during the render itself, from
//! the server function's answer, so the server and the hydrating browser build
//! the same context.

use crate::wire::Caller;
use leptos::prelude::*;

/// The signed-in caller of the page being rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedIn(pub Caller);

/// Who is signed in, if the page was rendered for someone.
pub fn signed_in() -> Option<Caller> {
    use_context::<SignedIn>().map(|SignedIn(caller)| caller)
}

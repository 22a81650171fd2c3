//! A ticking clock for countdowns. It starts only in the browser, after
//! hydration, so the server and the first browser render agree (both show the
//! durations as received); the interval stops when the page unmounts.
//!
//! Each page starts one clock and provides it as context ([`Ticker::provide`]);
//! whatever counts down reads it with [`use_ticker`].

use leptos::prelude::*;

#[derive(Clone, Copy)]
pub struct Ticker {
    now: ReadSignal<Option<f64>>,
}

impl Ticker {
    /// A clock ticking every `every_ms` in the browser (never on the server).
    pub fn start(every_ms: u64) -> Self {
        let (now, set_now) = signal(None::<f64>);
        Effect::new(move |_| {
            set_now.set(Some(now_ms()));
            #[cfg(feature = "hydrate")]
            {
                let handle = set_interval_with_handle(
                    move || {
                        set_now.try_set(Some(now_ms()));
                    },
                    std::time::Duration::from_millis(every_ms),
                );
                if let Ok(handle) = handle {
                    on_cleanup(move || handle.clear());
                }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = every_ms;
        });
        Ticker { now }
    }

    /// Starts a clock (see [`Ticker::start`]) and provides it to everything the
    /// calling component renders. Called the same way on the server and in the
    /// browser, so both renders see the same context.
    pub fn provide(every_ms: u64) -> Self {
        let clock = Self::start(every_ms);
        provide_context(clock);
        clock
    }

    /// Browser time in ms; `None` on the server and before hydration. Tracked.
    pub fn now(&self) -> Option<f64> {
        self.now.get()
    }

    /// What is left of `seconds` counted from `since` (browser ms), never
    /// below zero; all of it while the clock has not started. Tracked.
    pub fn left(&self, since: Option<f64>, seconds: f64) -> f64 {
        match (self.now.get(), since) {
            (Some(now), Some(since)) => (seconds - (now - since) / 1000.0).max(0.0),
            _ => seconds.max(0.0),
        }
    }
}

/// The page's clock, from context.
///
/// # Panics
/// Outside a page that called [`Ticker::provide`]: every page with a countdown
/// provides one, so this is a programming error.
pub fn use_ticker() -> Ticker {
    use_context::<Ticker>()
        .expect("the page provides a Ticker (Ticker::provide) before rendering a countdown")
}

/// Milliseconds since the Unix epoch, by the browser's (or server's) clock.
pub fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        leptos::web_sys::js_sys::Date::now()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or_default()
    }
}

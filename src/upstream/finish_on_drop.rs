//! A future that, dropped before it finished, is finished anyway on a task
//! of its own: for the upstream call, which the upstream answers (and
//! bills) whether or not our client is still there to read it.

use std::future::Future;

/// Polls a future in place and, if dropped before it finished, spawns what
/// is left of it so it still runs to the end (its output then discarded).
/// The common case (the caller waits) costs a box and no task: a spawn per
/// call wakes an idle worker thread to steal it, ~30 µs of CPU a call here.
pub(crate) struct FinishOnDrop<F: Future + Send + 'static>
where
    F::Output: Send + 'static,
{
    future: Option<std::pin::Pin<Box<F>>>,
}

impl<F: Future + Send + 'static> FinishOnDrop<F>
where
    F::Output: Send + 'static,
{
    pub(crate) fn new(future: F) -> Self {
        Self {
            future: Some(Box::pin(future)),
        }
    }
}

impl<F: Future + Send + 'static> Future for FinishOnDrop<F>
where
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let Some(future) = self.future.as_mut() else {
            return std::task::Poll::Pending; // Polled after it finished: never happens.
        };
        let output = std::task::ready!(future.as_mut().poll(cx));
        self.future = None;
        std::task::Poll::Ready(output)
    }
}

impl<F: Future + Send + 'static> Drop for FinishOnDrop<F>
where
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let Some(rest) = self.future.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        let _ = rest.await;
                    });
                }
                // No runtime to finish it on (the process is exiting): the
                // call's own guards settle what they can as it drops.
                Err(_) => drop(rest),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FinishOnDrop;
    use std::time::Duration;

    #[tokio::test]
    async fn awaited_it_answers_in_place_and_dropped_it_still_finishes() {
        assert_eq!(FinishOnDrop::new(async { 7 }).await, 7);

        let (done, finished) = tokio::sync::oneshot::channel();
        let (started, began) = tokio::sync::oneshot::channel::<()>();
        let call = FinishOnDrop::new(async move {
            let _ = started.send(());
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = done.send(());
        });
        // Polled until it is under way, then dropped (the client hung up).
        let handle = tokio::spawn(call);
        let _ = began.await;
        handle.abort();
        tokio::time::timeout(Duration::from_secs(5), finished)
            .await
            .expect("the rest finished on its own task")
            .expect("and completed, not dropped");
    }
}

//! The response timeout, on a timer each client connection keeps.
//!
//! A tokio timer made and dropped for every request went into the
//! runtime's timer wheel and out again each time: with the clock reads
//! around it, about 4 % of the proxy's user time (docs/benchmarks.md,
//! "Ingress"). A timer kept by the connection is pushed back for each
//! request instead, which tokio does without touching the wheel while the
//! new deadline is later than the one registered. Requests that overlap on
//! one connection (HTTP/2 streams) take a timer of their own.
//!
//! Owns: when a request's wait for its backend ends. Must not touch what
//! is waited for.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// The timer a client connection keeps between its requests.
#[derive(Debug, Default)]
pub(crate) struct Deadline {
    kept: Mutex<Option<Pin<Box<Sleep>>>>,
}

impl Deadline {
    /// Runs `future` for at most `limit`: its output, or `None` if the
    /// limit passed first.
    pub(crate) async fn within<F: Future>(&self, limit: Duration, future: F) -> Option<F::Output> {
        let deadline = Instant::now() + limit;
        let kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        let mut sleep = match kept {
            Some(mut sleep) => {
                sleep.as_mut().reset(deadline);
                sleep
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        let output = {
            tokio::pin!(future);
            tokio::select! {
                biased;
                output = &mut future => Some(output),
                () = sleep.as_mut() => None,
            }
        };
        *self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(sleep);
        output
    }
}

#[cfg(test)]
mod tests {
    //! The limit holds on a reused timer, and a later request is not cut
    //! short by an earlier request's deadline.

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn each_request_gets_the_whole_limit_on_a_kept_timer() {
        let deadline = Deadline::default();
        let limit = Duration::from_secs(10);
        assert_eq!(deadline.within(limit, async { 1 }).await, Some(1));
        // Nine seconds later, a request that takes eight: within its own
        // ten, past the first request's.
        tokio::time::advance(Duration::from_secs(9)).await;
        let slow = async {
            tokio::time::sleep(Duration::from_secs(8)).await;
            2
        };
        assert_eq!(deadline.within(limit, slow).await, Some(2));
        let too_slow = async {
            tokio::time::sleep(Duration::from_secs(11)).await;
            3
        };
        assert_eq!(deadline.within(limit, too_slow).await, None);
        // After a timeout the timer is used again.
        assert_eq!(deadline.within(limit, async { 4 }).await, Some(4));
    }
}

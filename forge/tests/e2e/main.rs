//! End-to-end tests of `driftless-forge` over real sockets on 127.0.0.1:
//! the webhook server fed the documented payloads in `tests/fixtures/` by a
//! real HTTP client, and the notifier posting to a small receiver.
//!
//! Owns only tests; touches nothing outside loopback.

mod hooks;
mod notify;
mod support;

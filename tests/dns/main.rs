//! End-to-end tests of the cluster DNS server: the real server on
//! 127.0.0.1 with a free port, asked by real clients (hickory's client, raw
//! messages and Debian's `dig`), forwarding to a fake upstream that the
//! tests run themselves. No traffic leaves 127.0.0.0/8.

mod forward;
mod lifecycle;
mod records;
mod support;
mod transport;

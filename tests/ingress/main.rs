//! End-to-end tests of the ingress: the real server on 127.0.0.1 with free
//! ports, test backends on other 127.0.0.x addresses, plain HTTP/1.1,
//! HTTP/2 and TLS clients, and backends that are not hyper: scripted bytes
//! and Python's `http.server`. No traffic leaves 127.0.0.0/8, every loop is
//! bounded, and everything a test starts stops when it ends, pass or fail.

mod lifecycle;
mod routing;
mod streaming;
mod support;
mod tls;
mod wire;

//! Unit tests: the server and the client over an in-memory wire.

mod harness;
mod hostile;
mod http;
mod log;
mod server;

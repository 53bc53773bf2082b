//! Unit tests: the server and the client over an in-memory wire.

mod harness;
mod http;
mod server;

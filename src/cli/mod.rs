//! Command-line parsing and dispatch.

use clap::{Parser, Subcommand};

mod client;
mod common;
mod demo;
mod get;
mod serve;
mod tls;
mod unikernel;

/// tlsflow: a sans-IO TLS engine for unikernel and Unix backends.
#[derive(Debug, Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine on embedded defaults: a throwaway CA and server certificate, client
    /// and server sessions in memory, what each handshake negotiated and how fast data moves.
    Demo(demo::DemoArgs),
    /// Serve HTTPS (HTTP/1.1 and HTTP/2), or echo with --echo, and log one line per connection.
    Serve(serve::ServeArgs),
    /// Fetch an https:// URL, like curl (HTTP/2 when the server picks it, else HTTP/1.1).
    Get(get::GetArgs),
}

/// A failure to report on one line.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

pub(crate) fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Get(args) => get::run(&args),
    }
}

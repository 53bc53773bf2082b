//! Command-line flags of every subcommand.

use super::*;

#[derive(Parser)]
#[command(about = "TLS load test: tlsflow against tokio-rustls / rustls (see the file's docs)")]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) cmd: Cmd,
}

#[derive(Subcommand)]
pub(super) enum Cmd {
    /// Runs the whole comparison and prints the table.
    Compare(CompareArgs),
    /// One server process (started by `compare`; commands on stdin).
    Server(ServerArgs),
    /// One client process (started by `compare`).
    Client(ClientArgs),
    /// Prints the in-memory sizes of the per-connection objects (diagnosis).
    Sizes,
}

#[derive(clap::Args)]
pub(super) struct CompareArgs {
    /// Connections per tokio run.
    #[arg(long, default_value_t = 10_000)]
    pub(super) conns: usize,
    /// Connections per mio run.
    #[arg(long, default_value_t = 1_000)]
    pub(super) mio_conns: usize,
    /// Rounds (each runs both implementations, order alternating).
    #[arg(long, default_value_t = 3)]
    pub(super) rounds: usize,
    /// Connections in flight (connect to response) at a time, per client.
    #[arg(long, default_value_t = 256)]
    pub(super) concurrency: usize,
    /// Worker threads of every tokio runtime (client and server).
    #[arg(long, default_value_t = 1)]
    pub(super) workers: usize,
    /// The client library.
    #[arg(long, value_enum, default_value_t = ClientChoice::Same)]
    pub(super) client: ClientChoice,
    /// Which comparisons to run.
    #[arg(long, value_enum, default_value_t = Only::All)]
    pub(super) only: Only,
    /// Tokio servers (both): `Box::pin` the accept future, so a connection's task holds a
    /// pointer to it instead of the whole handshake state.
    #[arg(long)]
    pub(super) box_handshake: bool,
}

#[derive(clap::Args)]
pub(super) struct ServerArgs {
    #[arg(long = "impl", value_enum)]
    pub(super) imp: Impl,
    #[arg(long, default_value_t = 1)]
    pub(super) workers: usize,
    /// Box the accept future (tokio servers).
    #[arg(long)]
    pub(super) box_handshake: bool,
}

#[derive(clap::Args)]
pub(super) struct ClientArgs {
    #[arg(long = "impl", value_enum)]
    pub(super) imp: ClientImpl,
    #[arg(long)]
    pub(super) port: u16,
    /// The server's CA certificate (PEM).
    #[arg(long)]
    pub(super) ca: PathBuf,
    #[arg(long)]
    pub(super) conns: usize,
    #[arg(long, default_value_t = 256)]
    pub(super) concurrency: usize,
    #[arg(long, default_value_t = 1)]
    pub(super) workers: usize,
    /// Source addresses are 127.<net>.x.y (1..=254).
    #[arg(long, default_value_t = 1)]
    pub(super) net: u8,
}

/// A server implementation.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub(super) enum Impl {
    Tlsflow,
    TokioRustls,
    TlsflowMio,
    RustlsMio,
}

impl Impl {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Tlsflow => "tlsflow",
            Self::TokioRustls => "tokio-rustls",
            Self::TlsflowMio => "tlsflow-mio",
            Self::RustlsMio => "rustls-mio",
        }
    }

    /// The client library `--client same` means for this server.
    pub(super) fn same_client(self) -> ClientImpl {
        match self {
            Self::Tlsflow | Self::TlsflowMio => ClientImpl::Tlsflow,
            Self::TokioRustls | Self::RustlsMio => ClientImpl::TokioRustls,
        }
    }
}

/// A client implementation (tokio).
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub(super) enum ClientImpl {
    Tlsflow,
    TokioRustls,
}

impl ClientImpl {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Tlsflow => "tlsflow",
            Self::TokioRustls => "tokio-rustls",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub(super) enum ClientChoice {
    Same,
    Tlsflow,
    TokioRustls,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub(super) enum Only {
    All,
    Tokio,
    Mio,
}

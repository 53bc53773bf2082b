//! [`PairError`]: why a [`Pair`](super::Pair) operation failed.

use std::fmt;

use tls_core::Error;

use super::{Dir, Side};

/// Why a [`Pair`](super::Pair) operation failed.
#[derive(Debug)]
pub enum PairError {
    /// Nothing moved for longer than any delay can explain, or the step bound was reached
    /// before the pair went idle.
    Livelock {
        /// Steps taken by the failing call.
        steps: usize,
        /// What each side and wire held when it gave up.
        state: String,
    },
    /// A session failed with a fatal error.
    Failed {
        /// The failing side.
        side: Side,
        /// Its error.
        error: Error,
    },
    /// A transfer delivered different bytes from those sent.
    Corrupted {
        /// The direction of the transfer.
        dir: Dir,
        /// Bytes sent.
        sent_len: usize,
        /// Bytes received.
        received_len: usize,
        /// FNV-1a 64 of the bytes sent.
        sent_sum: u64,
        /// FNV-1a 64 of the bytes received.
        received_sum: u64,
    },
}

impl fmt::Display for PairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Livelock { steps, state } => {
                write!(
                    f,
                    "pair livelocked: no progress after {steps} steps; {state}"
                )
            }
            Self::Failed { side, error } => write!(f, "{side:?} failed: {error}"),
            Self::Corrupted {
                dir,
                sent_len,
                received_len,
                sent_sum,
                received_sum,
            } => write!(
                f,
                "{dir:?} transfer corrupted: sent {sent_len} bytes (fnv {sent_sum:#018x}), \
                 received {received_len} bytes (fnv {received_sum:#018x})"
            ),
        }
    }
}

impl std::error::Error for PairError {}

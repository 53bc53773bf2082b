//! Key logging in the NSS key log format (for Wireshark and friends).
//!
//! [`rustls::KeyLog`] is the sink; it works without std. [`KeyLogBuffer`] collects lines
//! in memory (an embedder can print them over a serial console); with the `std` feature,
//! `KeyLogFile` follows the `SSLKEYLOGFILE` convention. Install either as the config's
//! `key_log`. Never enable key logging in production: the lines decrypt the traffic.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

pub use rustls::KeyLog;

/// Formats one NSS key log line (without the newline).
pub fn format_line(label: &str, client_random: &[u8], secret: &[u8]) -> String {
    let mut line =
        String::with_capacity(label.len() + 2 + 2 * (client_random.len() + secret.len()));
    line.push_str(label);
    line.push(' ');
    for b in client_random {
        let _ = write!(line, "{b:02x}");
    }
    line.push(' ');
    for b in secret {
        let _ = write!(line, "{b:02x}");
    }
    line
}

/// Collects key log lines in memory, up to a maximum count (later lines are dropped).
#[derive(Debug)]
pub struct KeyLogBuffer {
    max_lines: usize,
    lines: spin::Mutex<Vec<String>>,
}

impl KeyLogBuffer {
    /// A buffer keeping at most `max_lines` lines.
    pub fn new(max_lines: usize) -> Self {
        Self {
            max_lines,
            lines: spin::Mutex::new(Vec::new()),
        }
    }

    /// Takes the lines collected so far.
    pub fn take(&self) -> Vec<String> {
        core::mem::take(&mut *self.lines.lock())
    }
}

impl KeyLog for KeyLogBuffer {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let mut lines = self.lines.lock();
        if lines.len() < self.max_lines {
            lines.push(format_line(label, client_random, secret));
        }
    }
}

#[cfg(feature = "std")]
pub use file::KeyLogFile;

#[cfg(feature = "std")]
mod file {
    use std::fs::{File, OpenOptions};
    use std::io::Write;
    use std::sync::Mutex;

    use super::{format_line, KeyLog};

    /// Appends key log lines to the file named by the `SSLKEYLOGFILE` environment variable;
    /// does nothing when it is unset or cannot be opened.
    #[derive(Debug)]
    pub struct KeyLogFile {
        file: Option<Mutex<File>>,
    }

    impl KeyLogFile {
        /// Opens `$SSLKEYLOGFILE` for appending, if set.
        pub fn from_env() -> Self {
            let file = std::env::var_os("SSLKEYLOGFILE")
                .and_then(|path| OpenOptions::new().append(true).create(true).open(path).ok());
            Self {
                file: file.map(Mutex::new),
            }
        }

        /// Whether lines will be written.
        pub fn is_active(&self) -> bool {
            self.file.is_some()
        }
    }

    impl KeyLog for KeyLogFile {
        fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
            if let Some(file) = &self.file {
                if let Ok(mut f) = file.lock() {
                    let _ = writeln!(f, "{}", format_line(label, client_random, secret));
                }
            }
        }

        fn will_log(&self, _label: &str) -> bool {
            self.file.is_some()
        }
    }
}

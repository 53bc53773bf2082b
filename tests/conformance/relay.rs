//! The man in the middle: a per-direction [`Tap`] that parses the TLS record stream as it
//! passes and applies the scenario's fault, plus a TCP relay for the socket backends.
//!
//! Faults work on whole TLS records, never on byte offsets: handshake flights differ in
//! length from run to run (ECDSA signatures vary), but not in how many records they take,
//! and every backend runs the same engine with the same configs, so "record number N in
//! this direction" names the same record on every backend.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use std::time::Instant;

/// What the relay does to one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Flip the last byte (part of the AEAD tag) of record number `record` (0-based,
    /// counting every record in this direction).
    Corrupt { record: usize },
    /// Forward `after_records` whole records and then `extra` bytes of the next, then
    /// end the direction with a clean TCP FIN (no close_notify): truncation. Later bytes
    /// are read and dropped.
    Cut { after_records: usize, extra: usize },
    /// Rewrite the length field of the handshake message at the start of record number
    /// `record` (a plaintext handshake record) to 0xffffff: a message announcing 16 MiB,
    /// over every implementation's limit.
    Oversize { record: usize },
}

/// How a direction's source ended, as the relay saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// A TCP FIN (or, in memory, the sender's end of stream).
    Fin,
    /// A TCP RST.
    Reset,
    /// The relay cut it (a [`Fault::Cut`]).
    Cut,
}

/// What a direction carried last and how it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ending {
    /// Content type and length of the last record (an alert: type 21 and 2 bytes in
    /// plaintext; TLS 1.3 encrypts it as type 23 of 19 bytes).
    pub last_record: Option<(u8, usize)>,
    /// `None`: still open when the run ended (or ended by the relay's idle timeout).
    pub how: Option<How>,
}

/// What a relay saw in both directions (indexed by [`C2S`] and [`S2C`]), and its
/// description for failure messages.
#[derive(Clone, Debug)]
pub struct Relayed {
    pub ends: [Ending; 2],
    pub text: String,
    /// What the backend found wrong on the wire itself (for example a flight that
    /// waited for a delayed ACK), reported as failures.
    pub problems: Vec<String>,
}

impl Relayed {
    /// From both taps, with `extra` appended to the description.
    pub fn from_taps(taps: &[Tap; 2], extra: &str) -> Self {
        Self {
            ends: [taps[C2S].ending(), taps[S2C].ending()],
            text: format!(
                "c2s {}\n    s2c {}{extra}",
                taps[C2S].summary(),
                taps[S2C].summary()
            ),
            problems: Vec::new(),
        }
    }
}

/// A record seen by a [`Tap`]: content type and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub content_type: u8,
    pub len: usize,
}

/// One direction's record parser and fault.
#[derive(Debug, Default)]
pub struct Tap {
    fault: Option<Fault>,
    header: [u8; 5],
    header_len: usize,
    /// Body bytes of the current record not yet passed.
    body_left: usize,
    /// Index of the current record (the one whose header or body is passing).
    index: usize,
    /// Bytes of the current record passed so far.
    passed: usize,
    cut: bool,
    /// Every record header seen, in order.
    pub seen: Vec<Seen>,
    /// The fault as applied, once it was.
    pub applied: Option<String>,
    /// How the source ended (set by the relay).
    pub how: Option<How>,
}

impl Tap {
    pub fn new(fault: Option<Fault>) -> Self {
        Self {
            fault,
            ..Self::default()
        }
    }

    /// Records how the source ended (the first report counts; a cut stays a cut).
    pub fn ended(&mut self, how: How) {
        if self.cut {
            self.how = Some(How::Cut);
        } else if self.how.is_none() {
            self.how = Some(how);
        }
    }

    /// What the direction carried last and how it ended.
    pub fn ending(&self) -> Ending {
        // The last record counts once its header is in (a cut one is still "last").
        Ending {
            last_record: self.seen.last().map(|s| (s.content_type, s.len)),
            how: if self.cut { Some(How::Cut) } else { self.how },
        }
    }

    /// Whether the direction has been cut: forward nothing more, and end it (FIN).
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// Passes `input` through, appending what to forward to `out`. Returns true when the
    /// direction has been cut (now or before): the caller ends the direction once `out`
    /// is delivered, and drops everything after.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> bool {
        while !input.is_empty() && !self.cut {
            // Room before the cut point, if the cut falls in this record.
            let room = match self.fault {
                Some(Fault::Cut {
                    after_records,
                    extra,
                }) if self.index == after_records => {
                    if self.passed == extra {
                        self.cut = true;
                        self.applied =
                            Some(format!("cut after {after_records} records + {extra} bytes"));
                        break;
                    }
                    extra - self.passed
                }
                _ => usize::MAX,
            };
            if self.header_len < 5 {
                let n = (5 - self.header_len).min(input.len()).min(room);
                self.header[self.header_len..self.header_len + n].copy_from_slice(&input[..n]);
                out.extend_from_slice(&input[..n]);
                self.header_len += n;
                self.passed += n;
                input = &input[n..];
                if self.header_len == 5 {
                    let len = u16::from_be_bytes([self.header[3], self.header[4]]) as usize;
                    self.seen.push(Seen {
                        content_type: self.header[0],
                        len,
                    });
                    self.body_left = len;
                    if len == 0 {
                        self.next_record();
                    }
                }
            } else {
                let n = self.body_left.min(input.len()).min(room);
                let at = out.len();
                out.extend_from_slice(&input[..n]);
                if let Some(Fault::Oversize { record }) = self.fault {
                    // Body offsets 1..4 are the handshake message's 24-bit length.
                    let body_at = self.seen[self.index].len - self.body_left;
                    if record == self.index {
                        for (i, byte) in out[at..].iter_mut().enumerate() {
                            if (1..4).contains(&(body_at + i)) {
                                *byte = 0xff;
                            }
                        }
                        if body_at + n >= 4 && self.applied.is_none() {
                            self.applied =
                                Some(format!("announced a 16 MiB message in record {record}"));
                        }
                    }
                }
                if let Some(Fault::Corrupt { record }) = self.fault {
                    if record == self.index && n == self.body_left {
                        let last = out.len() - 1;
                        out[last] ^= 0x01;
                        let seen = self.seen[self.index];
                        self.applied = Some(format!(
                            "flipped the last byte of record {record} (type {}, {} bytes)",
                            seen.content_type, seen.len
                        ));
                    }
                }
                self.body_left -= n;
                self.passed += n;
                input = &input[n..];
                if self.body_left == 0 {
                    self.next_record();
                }
            }
        }
        self.cut
    }

    fn next_record(&mut self) {
        self.index += 1;
        self.header_len = 0;
        self.passed = 0;
    }

    /// The records seen, as `type:len` pairs, for failure messages.
    pub fn summary(&self) -> String {
        let list: Vec<String> = self
            .seen
            .iter()
            .take(24)
            .map(|s| format!("{}:{}", s.content_type, s.len))
            .collect();
        let more = self.seen.len().saturating_sub(24);
        format!(
            "[{}{}] applied: {}, ended: {:?}",
            list.join(" "),
            if more > 0 {
                format!(" +{more}")
            } else {
                String::new()
            },
            self.applied.as_deref().unwrap_or("-"),
            self.ending().how
        )
    }
}

/// Index of the client-to-server direction in `[Option<Fault>; 2]` and `[Tap; 2]`.
pub const C2S: usize = 0;
/// Index of the server-to-client direction.
pub const S2C: usize = 1;

/// A TCP man in the middle on 127.0.0.1: the client connects to [`addr`](Self::addr), the
/// relay connects to the server and copies bytes both ways through a [`Tap`] per
/// direction. A direction that reaches EOF (or is cut) is ended with `shutdown(Write)`.
/// A reset is passed on as a FIN (std cannot send an RST), and recorded in the tap.
pub struct TcpRelay {
    pub addr: std::net::SocketAddr,
    taps: Arc<Mutex<[Tap; 2]>>,
    thread: Option<JoinHandle<()>>,
}

/// Longest a relay thread waits for a byte before giving up on a direction.
const RELAY_IDLE: Duration = Duration::from_secs(30);

impl TcpRelay {
    /// Starts a relay to `server`, with `faults[C2S]` and `faults[S2C]`.
    pub fn start(server: std::net::SocketAddr, faults: [Option<Fault>; 2]) -> io::Result<Self> {
        let mut listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
        let addr = listener.local_addr()?;
        let taps = Arc::new(Mutex::new([Tap::new(faults[C2S]), Tap::new(faults[S2C])]));
        let shared = taps.clone();
        let thread = std::thread::spawn(move || {
            let Ok(client) = accept_within(&mut listener, RELAY_IDLE) else {
                return;
            };
            let Ok(server) = TcpStream::connect_timeout(&server, RELAY_IDLE) else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let pumps =
                [(C2S, &client, &server), (S2C, &server, &client)].map(|(dir, from, to)| {
                    let (from, to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    let taps = shared.clone();
                    std::thread::spawn(move || pump(dir, from, to, &taps))
                });
            for p in pumps {
                let _ = p.join();
            }
        });
        Ok(Self {
            addr,
            taps,
            thread: Some(thread),
        })
    }

    /// Waits for both directions to end and describes the records each carried.
    pub fn finish(mut self) -> Relayed {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let taps = self.taps.lock().unwrap();
        Relayed::from_taps(&taps, "")
    }
}

fn pump(dir: usize, mut from: TcpStream, mut to: TcpStream, taps: &Mutex<[Tap; 2]>) {
    let _ = from.set_read_timeout(Some(RELAY_IDLE));
    let _ = to.set_write_timeout(Some(RELAY_IDLE));
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(buf.len());
    let mut open = true;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => {
                taps.lock().unwrap()[dir].ended(How::Fin);
                break;
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::ConnectionReset {
                    taps.lock().unwrap()[dir].ended(How::Reset);
                }
                break;
            }
            Ok(n) => n,
        };
        if !open {
            continue; // cut, or the receiver is gone: drop the rest
        }
        out.clear();
        let cut = taps.lock().unwrap()[dir].feed(&buf[..n], &mut out);
        if to.write_all(&out).is_err() {
            open = false;
        }
        if cut {
            let _ = to.shutdown(Shutdown::Write);
            open = false;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Accepts one connection, waiting at most `limit`; the stream is blocking.
pub fn accept_within(
    listener: &mut mio::net::TcpListener,
    limit: Duration,
) -> io::Result<TcpStream> {
    let mut poll = mio::Poll::new()?;
    poll.registry()
        .register(listener, mio::Token(0), mio::Interest::READABLE)?;
    let mut events = mio::Events::with_capacity(2);
    let deadline = Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((sock, _)) => {
                let sock = TcpStream::from(sock);
                sock.set_nonblocking(false)?;
                return Ok(sock);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no connection to accept",
                    ));
                }
                match poll.poll(&mut events, Some(left)) {
                    Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
                    _ => {}
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

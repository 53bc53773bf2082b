//! The peer: a minimal driver over rustls' own unbuffered API, copying the same bytes
//! tls-core does.

use super::*;

/// `process_tls_records` for either side (rustls has one inherent method per side).
pub(super) trait Process: Deref<Target = CommonState> {
    type Data;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

/// `Process` for the side whose connection data is `$data`.
macro_rules! process_for {
    ($data:ty) => {
        impl Process for UnbufferedConnectionCommon<$data> {
            type Data = $data;
            fn process<'c, 'i>(
                &'c mut self,
                incoming: &'i mut [u8],
            ) -> UnbufferedStatus<'c, 'i, $data> {
                self.process_tls_records(incoming)
            }
        }
    };
}

process_for!(ClientConnectionData);
process_for!(ServerConnectionData);

/// Where decrypted application data goes: copied into one buffer the application owns,
/// as tls-core's `recv` does (the buffer is "read" whenever the next record would not fit).
pub(super) struct AppBuf {
    pub(super) buf: Vec<u8>,
    pub(super) at: usize,
    pub(super) received: usize,
}

impl AppBuf {
    pub(super) fn new() -> Self {
        Self {
            buf: vec![0; APP_BUF],
            at: 0,
            received: 0,
        }
    }

    pub(super) fn take(&mut self, payload: &[u8]) {
        if self.at + payload.len() > self.buf.len() {
            self.at = 0;
        }
        self.buf[self.at..self.at + payload.len()].copy_from_slice(payload);
        self.at += payload.len();
        self.received += payload.len();
    }
}

/// A minimal, correct driver over one unbuffered connection: the incoming ciphertext is a
/// window over a reused buffer (advanced by `discard`, compacted only when the tail lacks
/// room), outgoing ciphertext accumulates in a reused buffer.
pub(super) struct Raw<C> {
    pub(super) conn: C,
    pub(super) incoming: Vec<u8>,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) outgoing: Vec<u8>,
    pub(super) out_len: usize,
    pub(super) app: AppBuf,
}

/// Grows `buf` (initialised high-water mark) so that `len + need` bytes fit.
pub(super) fn reserve(buf: &mut Vec<u8>, len: usize, need: usize) {
    if buf.len() < len + need {
        buf.resize(len + need, 0);
    }
}

impl<C> Raw<C>
where
    C: DerefMut,
    C::Target: Process,
{
    pub(super) fn new(conn: C) -> Self {
        Self {
            conn,
            incoming: Vec::new(),
            start: 0,
            end: 0,
            outgoing: Vec::new(),
            out_len: 0,
            app: AppBuf::new(),
        }
    }

    /// Ciphertext to send.
    pub(super) fn output(&self) -> &[u8] {
        &self.outgoing[..self.out_len]
    }

    /// The one copy of received ciphertext into the incoming window.
    pub(super) fn read_tls(&mut self, wire: &[u8]) {
        if self.incoming.len() - self.end < wire.len() && self.start > 0 {
            self.incoming.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        reserve(&mut self.incoming, self.end, wire.len());
        self.incoming[self.end..self.end + wire.len()].copy_from_slice(wire);
        self.end += wire.len();
    }

    /// Runs the state machine over the incoming window until it needs more input (or has
    /// reached the write state), then encrypts `write` if given.
    pub(super) fn drive(&mut self, write: Option<&[u8]>) -> Result<(), rustls::Error> {
        let mut write = write;
        loop {
            let UnbufferedStatus { discard, state } =
                self.conn.process(&mut self.incoming[self.start..self.end]);
            let mut extra = 0;
            let done = match state? {
                ConnectionState::EncodeTlsData(mut st) => {
                    let mut need = 1024;
                    loop {
                        reserve(&mut self.outgoing, self.out_len, need);
                        match st.encode(&mut self.outgoing[self.out_len..]) {
                            Ok(n) => {
                                self.out_len += n;
                                break;
                            }
                            Err(EncodeError::InsufficientSize(e)) => need = e.required_size,
                            Err(e) => panic!("encode: {e}"),
                        }
                    }
                    false
                }
                ConnectionState::TransmitTlsData(st) => {
                    st.done();
                    false
                }
                ConnectionState::ReadTraffic(mut rt) => {
                    while let Some(rec) = rt.next_record() {
                        let rec = rec?;
                        self.app.take(rec.payload);
                        extra += rec.discard;
                    }
                    false
                }
                ConnectionState::WriteTraffic(mut wt) => {
                    if let Some(plain) = write.take() {
                        loop {
                            let room = &mut self.outgoing[self.out_len..];
                            match wt.encrypt(plain, room) {
                                Ok(n) => {
                                    self.out_len += n;
                                    break;
                                }
                                Err(EncryptError::InsufficientSize(e)) => {
                                    reserve(&mut self.outgoing, self.out_len, e.required_size);
                                }
                                Err(e) => panic!("encrypt: {e}"),
                            }
                        }
                    }
                    true
                }
                ConnectionState::PeerClosed => false,
                ConnectionState::BlockedHandshake | ConnectionState::Closed => true,
                _ => panic!("unexpected state"),
            };
            self.start += discard + extra;
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            }
            if done {
                assert!(write.is_none(), "write before the handshake completed");
                return Ok(());
            }
        }
    }

    /// Encrypts one application write (one `process_tls_records` call per write, as an
    /// application-facing `send` would).
    pub(super) fn write(&mut self, plain: &[u8]) {
        self.drive(Some(plain)).expect("raw write");
    }

    /// Drops the driver's buffers, leaving rustls' own state (what an idle connection
    /// must keep).
    pub(super) fn release_buffers(&mut self) {
        assert!(self.start == self.end && self.out_len == 0);
        self.incoming = Vec::new();
        self.outgoing = Vec::new();
        self.app.buf = Vec::new();
    }
}

pub(super) type RawClient = Raw<UnbufferedClientConnection>;
pub(super) type RawServer = Raw<UnbufferedServerConnection>;

/// Moves `from`'s output into `to` and lets `to` process it. Returns whether bytes moved.
pub(super) fn raw_wire<A, B>(from: &mut Raw<A>, to: &mut Raw<B>) -> bool
where
    A: DerefMut,
    A::Target: Process,
    B: DerefMut,
    B::Target: Process,
{
    if from.out_len == 0 {
        return false;
    }
    to.read_tls(from.output());
    from.out_len = 0;
    to.drive(None).expect("raw receive");
    true
}

pub(super) fn raw_pair(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
) -> (RawClient, RawServer) {
    let mut c = Raw::new(UnbufferedClientConnection::new(client.clone(), server_name()).unwrap());
    let mut s = Raw::new(UnbufferedServerConnection::new(server.clone()).unwrap());
    c.drive(None).expect("client hello");
    while raw_wire(&mut c, &mut s) | raw_wire(&mut s, &mut c) {}
    assert!(!c.conn.is_handshaking() && !s.conn.is_handshaking());
    (c, s)
}

/// One batch of `writes` writes of `size` bytes, then over the wire and read.
#[inline(never)] // a symbol for profilers
pub(super) fn raw_batch(c: &mut RawClient, s: &mut RawServer, data: &[u8], writes: usize) {
    let before = s.app.received;
    for _ in 0..writes {
        c.write(data);
    }
    raw_wire(c, s);
    assert_eq!(s.app.received - before, writes * data.len());
}

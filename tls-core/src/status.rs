//! [`ReadStatus`]: what the read side of a [`Session`](crate::Session) can do now.

/// What a read from a [`Session`](crate::Session) would find now, from
/// [`Session::read_status`](crate::Session::read_status), without reading.
///
/// The engine decrypts eagerly: every call that takes input or writes deframes each
/// complete record it holds until one carries application data, so a complete record is
/// never left encrypted behind [`NeedInput`](Self::NeedInput). The status is therefore
/// exact after every call, and asking for it needs only `&self`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadStatus {
    /// Plaintext can be read now: [`recv`](crate::Session::recv) returns data.
    Ready,
    /// More ciphertext is needed before any plaintext (or the end of the stream) shows:
    /// [`recv`](crate::Session::recv) returns [`Error::WouldBlock`](crate::Error::WouldBlock).
    NeedInput,
    /// The peer's close_notify arrived and all plaintext before it has been read: a clean
    /// end of stream ([`recv`](crate::Session::recv) returns `Ok(0)`).
    Ended,
    /// The transport ended before the peer's close_notify and all plaintext received
    /// intact has been read: [`recv`](crate::Session::recv) returns
    /// [`Error::Truncated`](crate::Error::Truncated).
    Truncated,
    /// A fatal error ended the session; [`Session::error`](crate::Session::error) gives it.
    Failed,
}

//! Engine internals for the fuzz targets (`fuzz/`), compiled only under `--cfg fuzzing`
//! (which cargo-fuzz sets), as quinn-proto's `fuzzing` module does: never part of the
//! crate's API.
//!
//! [`ByteQueue`] is the engine's own ciphertext and plaintext queue behind a thin public
//! face, so the `record_framing` target checks the very code the engine runs against a model.

use crate::buffers;

/// The engine's byte queue (`buffers::ByteQueue`), each method forwarding to it.
#[derive(Debug, Default)]
pub struct ByteQueue(buffers::ByteQueue);

impl ByteQueue {
    /// An empty queue holding no allocation.
    pub const fn new() -> Self {
        Self(buffers::ByteQueue::new())
    }

    /// Live bytes queued.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no byte is queued.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes of storage held (live or not).
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// The live bytes.
    pub fn data(&self) -> &[u8] {
        self.0.data()
    }

    /// The live bytes, mutable (decryption in place).
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }

    /// Drops `n` bytes from the front. Panics if `n > self.len()`.
    pub fn consume(&mut self, n: usize) {
        self.0.consume(n)
    }

    /// Keeps only the first `len` live bytes (no-op if fewer are queued).
    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len)
    }

    /// Gives the storage back when nothing is queued.
    pub fn release_if_empty(&mut self) {
        self.0.release_if_empty()
    }

    /// Appends `src`.
    pub fn extend_from_slice(&mut self, src: &[u8]) {
        self.0.extend_from_slice(src)
    }

    /// Initialised bytes after the live data (writable without growing).
    pub fn initialized_spare(&self) -> usize {
        self.0.initialized_spare()
    }

    /// `n` writable bytes after the live data; [`commit`](Self::commit) makes them live.
    pub fn spare_mut(&mut self, n: usize) -> &mut [u8] {
        self.0.spare_mut(n)
    }

    /// Makes `n` bytes written into [`spare_mut`](Self::spare_mut) live.
    pub fn commit(&mut self, n: usize) {
        self.0.commit(n)
    }

    /// Moves up to `dst.len()` bytes from the front into `dst`; returns how many.
    pub fn read_into(&mut self, dst: &mut [u8]) -> usize {
        self.0.read_into(dst)
    }
}

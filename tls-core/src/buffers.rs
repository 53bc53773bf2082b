//! Byte queues for ciphertext and staged plaintext.
//!
//! A [`ByteQueue`] is a window `start..end` over one `Vec<u8>`. Consuming from the front
//! advances `start` (no memmove per record); the live bytes are moved to the front only
//! when the tail lacks room. An empty queue keeps its allocation while traffic flows and
//! gives it back when the session goes quiet (`Session::release_buffers`), so an idle
//! session holds no buffer memory.

use alloc::vec::Vec;

#[derive(Debug, Default)]
pub(crate) struct ByteQueue {
    /// Initialised storage; `buf.len()` is the initialised high-water mark, not the data end.
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ByteQueue {
    pub(crate) const fn new() -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Bytes held by the allocation (for memory accounting).
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(crate) fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// Drops `n` bytes from the front. Panics if `n > self.len()`.
    pub(crate) fn consume(&mut self, n: usize) {
        assert!(n <= self.len(), "consumed more bytes than the queue holds");
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Keeps only the first `len` bytes (no-op if fewer are queued).
    pub(crate) fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.end = self.start + len;
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            }
        }
    }

    /// Frees the allocation when nothing is queued.
    pub(crate) fn release_if_empty(&mut self) {
        if self.is_empty() && self.buf.capacity() != 0 {
            self.buf = Vec::new();
        }
    }

    /// Moves the live bytes to the front when the tail lacks `additional` bytes of room.
    fn make_room(&mut self, additional: usize) {
        if self.start != 0 && self.buf.capacity() - self.end < additional {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Appends a copy of `src` (no zero-filling on the way).
    pub(crate) fn extend_from_slice(&mut self, src: &[u8]) {
        self.make_room(src.len());
        self.buf.truncate(self.end);
        self.buf.extend_from_slice(src);
        self.end += src.len();
    }

    /// Initialised bytes after the data (what [`ByteQueue::spare_mut`] can lend without
    /// zero-filling), counting the front that compaction would free.
    pub(crate) fn initialized_spare(&self) -> usize {
        self.buf.len() - self.end + self.start
    }

    /// Returns `n` writable bytes after the data; [`ByteQueue::commit`] makes them part of it.
    #[inline]
    pub(crate) fn spare_mut(&mut self, n: usize) -> &mut [u8] {
        if self.buf.len() < self.end + n {
            self.grow(n);
        }
        &mut self.buf[self.end..self.end + n]
    }

    #[cold]
    fn grow(&mut self, n: usize) {
        self.make_room(n);
        if self.buf.len() < self.end + n {
            self.buf.resize(self.end + n, 0);
        }
    }

    /// Appends `n` bytes previously written through [`ByteQueue::spare_mut`].
    pub(crate) fn commit(&mut self, n: usize) {
        assert!(
            self.end + n <= self.buf.len(),
            "committed more than was reserved"
        );
        self.end += n;
    }

    /// Copies from the front into `dst`, consuming what was copied.
    pub(crate) fn read_into(&mut self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.len());
        dst[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.consume(n);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_advances_compacts_and_releases() {
        let mut q = ByteQueue::new();
        q.extend_from_slice(b"hello world");
        q.consume(6);
        assert_eq!(q.data(), b"world");
        let spare = q.spare_mut(3);
        spare.copy_from_slice(b"!!!");
        q.commit(3);
        assert_eq!(q.data(), b"world!!!");
        let mut out = [0u8; 4];
        assert_eq!(q.read_into(&mut out), 4);
        assert_eq!(&out, b"worl");
        // Force compaction: ask for more room than the tail has.
        let cap = q.capacity();
        q.spare_mut(cap);
        assert_eq!(q.data(), b"d!!!");
        q.consume(4);
        assert!(q.is_empty());
        q.release_if_empty();
        assert_eq!(q.capacity(), 0);
    }
}

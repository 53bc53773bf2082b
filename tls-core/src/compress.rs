//! Certificate compression (RFC 8879) with zlib, without std.
//!
//! rustls compresses TLS 1.3 Certificate messages through its [`CertCompressor`] and
//! [`CertDecompressor`] traits; its own zlib and brotli implementations need std (zlib-rs
//! with the C allocator, brotli). [`ZLIB_COMPRESSOR`] and [`ZLIB_DECOMPRESSOR`] are zlib
//! on `miniz_oxide`, pure Rust with `alloc` only. Brotli has no no_std implementation that
//! rustls' traits can use here, so tls-core offers zlib alone (OpenSSL, BoringSSL and Go
//! peers that compress all offer zlib or answer uncompressed; Chromium asks for brotli
//! only and then gets the certificate uncompressed).
//!
//! Switch it on with [`enable_client`] and [`enable_server`]. In no_std rustls keeps no
//! cache of compressed certificates ([`CompressionCache`](rustls::compress::CompressionCache)
//! needs std), so a server compresses its chain once per handshake at the interactive
//! level; with std it caches as rustls does by default.

use alloc::boxed::Box;
use alloc::vec::Vec;

use miniz_oxide::inflate::core::inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER;
use miniz_oxide::inflate::core::inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
use miniz_oxide::inflate::core::{decompress, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;
use rustls::compress::{
    CertCompressor, CertDecompressor, CompressionFailed, CompressionLevel, DecompressionFailed,
};
use rustls::{CertificateCompressionAlgorithm, ClientConfig, ServerConfig};

/// zlib compression of certificate messages (RFC 8879 algorithm 1).
pub static ZLIB_COMPRESSOR: &dyn CertCompressor = &Zlib;

/// zlib decompression of certificate messages (RFC 8879 algorithm 1).
pub static ZLIB_DECOMPRESSOR: &dyn CertDecompressor = &Zlib;

/// miniz's levels: 1 is its fastest, 9 its best (and slowest).
const INTERACTIVE_LEVEL: u8 = 6;
const AMORTIZED_LEVEL: u8 = 9;

#[derive(Debug)]
struct Zlib;

impl CertCompressor for Zlib {
    fn compress(
        &self,
        input: Vec<u8>,
        level: CompressionLevel,
    ) -> Result<Vec<u8>, CompressionFailed> {
        let level = match level {
            CompressionLevel::Interactive => INTERACTIVE_LEVEL,
            CompressionLevel::Amortized => AMORTIZED_LEVEL,
        };
        Ok(miniz_oxide::deflate::compress_to_vec_zlib(&input, level))
    }

    fn algorithm(&self) -> CertificateCompressionAlgorithm {
        CertificateCompressionAlgorithm::Zlib
    }
}

impl CertDecompressor for Zlib {
    /// Succeeds only if `input` is one complete zlib stream (checksum included) that
    /// inflates to exactly `output.len()` bytes: the length the peer declared, which
    /// rustls has already bounded.
    fn decompress(&self, input: &[u8], output: &mut [u8]) -> Result<(), DecompressionFailed> {
        // The state holds the Huffman tables (about 11 KB): on the heap, not the stack.
        let mut state = Box::<DecompressorOxide>::default();
        let flags = TINFL_FLAG_PARSE_ZLIB_HEADER | TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
        match decompress(&mut state, input, output, 0, flags) {
            (TINFLStatus::Done, read, written)
                if read == input.len() && written == output.len() =>
            {
                Ok(())
            }
            _ => Err(DecompressionFailed),
        }
    }

    fn algorithm(&self) -> CertificateCompressionAlgorithm {
        CertificateCompressionAlgorithm::Zlib
    }
}

/// Lets a client accept a compressed server certificate (it offers zlib) and compress its
/// own client certificate when the server asks for that.
pub fn enable_client(config: &mut ClientConfig) {
    config.cert_decompressors = alloc::vec![ZLIB_DECOMPRESSOR];
    config.cert_compressors = alloc::vec![ZLIB_COMPRESSOR];
}

/// Lets a server send its certificate chain zlib-compressed to clients that offer zlib,
/// and accept compressed client certificates.
pub fn enable_server(config: &mut ServerConfig) {
    config.cert_compressors = alloc::vec![ZLIB_COMPRESSOR];
    config.cert_decompressors = alloc::vec![ZLIB_DECOMPRESSOR];
}

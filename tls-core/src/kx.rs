//! The X25519MLKEM768 hybrid key exchange (codepoint 0x11EC, draft-ietf-tls-ecdhe-mlkem),
//! on *ring*'s X25519 and Cryspen's `libcrux-ml-kem` (FIPS 203), without std.
//!
//! rustls 0.23 offers this group only with its aws-lc-rs provider; this is the same
//! exchange for the *ring* provider. The key shares and the secret put the ML-KEM part
//! first:
//!
//! | | ML-KEM-768 | X25519 |
//! | --- | --- | --- |
//! | client share (1216 B) | encapsulation key, 1184 B | public key, 32 B |
//! | server share (1120 B) | ciphertext, 1088 B | public key, 32 B |
//! | shared secret (64 B) | shared key, 32 B | shared secret, 32 B |
//!
//! A client that starts this exchange also offers its X25519 half as a key share of its
//! own ([`ActiveKeyExchange::hybrid_component`]), so a server without the hybrid answers
//! X25519 without a HelloRetryRequest (rustls does this when X25519 is in the config's
//! groups too, as [`crypto_provider`](crate::config::crypto_provider) has it).
//!
//! Secrets: the ML-KEM decapsulation key lives on the heap for the handshake and is
//! zeroized when the exchange completes or is dropped; the random seeds, ML-KEM's shared
//! key and the combined secret are zeroized too (here and in rustls' `SharedSecret`).
//! Copies the compiler leaves on the stack while a key is made are not reached (as with
//! any Rust code). The X25519 private key is *ring*'s `EphemeralPrivateKey`, used once
//! and dropped by *ring*. Randomness comes from *ring*'s `SystemRandom` (getrandom), like
//! every other key rustls' *ring* provider makes.
//!
//! The server checks the client's encapsulation key as FIPS 203 §7.2 requires (every
//! coefficient below q) and refuses a bad one with `InvalidKeyShare`; a forged server
//! ciphertext gives the client an unrelated key (implicit rejection), so the handshake
//! fails when the server's encrypted flight does not decrypt.

use alloc::boxed::Box;
use alloc::vec::Vec;

use libcrux_ml_kem::mlkem768::{self, MlKem768Ciphertext, MlKem768PrivateKey, MlKem768PublicKey};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::crypto::ring::kx_group::X25519;
use rustls::crypto::{
    ActiveKeyExchange, CompletedKeyExchange, GetRandomFailed, SharedSecret, SupportedKxGroup,
};
use rustls::ffdhe_groups::FfdheGroup;
use rustls::{Error, NamedGroup, PeerMisbehaved, ProtocolVersion};
use zeroize::{Zeroize, Zeroizing};

/// The X25519MLKEM768 hybrid, for a [`CryptoProvider`](rustls::crypto::CryptoProvider)'s
/// `kx_groups`. TLS 1.3 only.
pub static X25519MLKEM768: &dyn SupportedKxGroup = &X25519MlKem768;

/// Bytes of an ML-KEM-768 encapsulation key.
pub const MLKEM768_ENCAPSULATION_KEY_LEN: usize = 1184;
/// Bytes of an ML-KEM-768 ciphertext.
pub const MLKEM768_CIPHERTEXT_LEN: usize = 1088;
/// Bytes of an X25519 public key.
pub const X25519_LEN: usize = 32;
/// Bytes of the client's X25519MLKEM768 key share.
pub const CLIENT_SHARE_LEN: usize = MLKEM768_ENCAPSULATION_KEY_LEN + X25519_LEN;
/// Bytes of the server's X25519MLKEM768 key share.
pub const SERVER_SHARE_LEN: usize = MLKEM768_CIPHERTEXT_LEN + X25519_LEN;

const INVALID_KEY_SHARE: Error = Error::PeerMisbehaved(PeerMisbehaved::InvalidKeyShare);

#[derive(Debug)]
struct X25519MlKem768;

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, Error> {
    let mut bytes = Zeroizing::new([0u8; N]);
    SystemRandom::new()
        .fill(bytes.as_mut_slice())
        .map_err(|_| GetRandomFailed)?;
    Ok(bytes)
}

/// `pq || classical`, as a secret that is zeroized when dropped.
fn combine(pq: &[u8], classical: &[u8]) -> SharedSecret {
    let mut secret = Zeroizing::new(Vec::with_capacity(pq.len() + classical.len()));
    secret.extend_from_slice(pq);
    secret.extend_from_slice(classical);
    SharedSecret::from(secret.as_slice())
}

impl SupportedKxGroup for X25519MlKem768 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let classical = X25519.start()?;
        let seed = random::<64>()?;
        let (mut private, public) = mlkem768::generate_key_pair(*seed).into_parts();
        let decapsulation_key = DecapsulationKey(Box::new(private.clone()));
        private[0..].zeroize();
        let mut share = Vec::with_capacity(CLIENT_SHARE_LEN);
        share.extend_from_slice(public.as_slice());
        share.extend_from_slice(classical.pub_key());
        Ok(Box::new(Active {
            decapsulation_key,
            classical,
            share,
        }))
    }

    fn start_and_complete(&self, client_share: &[u8]) -> Result<CompletedKeyExchange, Error> {
        if client_share.len() != CLIENT_SHARE_LEN {
            return Err(INVALID_KEY_SHARE);
        }
        let (ek, classical_share) = client_share.split_at(MLKEM768_ENCAPSULATION_KEY_LEN);
        let ek = MlKem768PublicKey::try_from(ek).map_err(|_| INVALID_KEY_SHARE)?;
        // FIPS 203 §7.2: the encapsulation key must pass the modulus check.
        if !mlkem768::validate_public_key(&ek) {
            return Err(INVALID_KEY_SHARE);
        }
        let classical = X25519.start_and_complete(classical_share)?;
        let m = random::<32>()?;
        let (ciphertext, pq_secret) = mlkem768::encapsulate(&ek, *m);
        let pq_secret = Zeroizing::new(pq_secret);

        let mut pub_key = Vec::with_capacity(SERVER_SHARE_LEN);
        pub_key.extend_from_slice(ciphertext.as_slice());
        pub_key.extend_from_slice(&classical.pub_key);
        Ok(CompletedKeyExchange {
            group: NamedGroup::X25519MLKEM768,
            pub_key,
            secret: combine(pq_secret.as_slice(), classical.secret.secret_bytes()),
        })
    }

    fn ffdhe_group(&self) -> Option<FfdheGroup<'static>> {
        None
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519MLKEM768
    }

    fn usable_for_version(&self, version: ProtocolVersion) -> bool {
        version == ProtocolVersion::TLSv1_3
    }
}

/// A client's exchange in progress: the decapsulation key and the X25519 half.
struct Active {
    /// FIPS 203's decapsulation key (2400 bytes), zeroized on drop.
    decapsulation_key: DecapsulationKey,
    classical: Box<dyn ActiveKeyExchange>,
    /// Encapsulation key || X25519 public key.
    share: Vec<u8>,
}

impl ActiveKeyExchange for Active {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, Error> {
        if peer_pub_key.len() != SERVER_SHARE_LEN {
            return Err(INVALID_KEY_SHARE);
        }
        let (ciphertext, classical_share) = peer_pub_key.split_at(MLKEM768_CIPHERTEXT_LEN);
        let ciphertext = MlKem768Ciphertext::try_from(ciphertext).map_err(|_| INVALID_KEY_SHARE)?;
        // Implicit rejection: a forged ciphertext yields an unrelated key, and the
        // handshake then fails at the server's first encrypted message.
        let pq_secret = Zeroizing::new(mlkem768::decapsulate(
            &self.decapsulation_key.0,
            &ciphertext,
        ));
        let classical = self.classical.complete(classical_share)?;
        Ok(combine(pq_secret.as_slice(), classical.secret_bytes()))
    }

    fn hybrid_component(&self) -> Option<(NamedGroup, &[u8])> {
        Some((self.classical.group(), self.classical.pub_key()))
    }

    fn complete_hybrid_component(
        self: Box<Self>,
        peer_pub_key: &[u8],
    ) -> Result<SharedSecret, Error> {
        self.classical.complete(peer_pub_key)
    }

    fn pub_key(&self) -> &[u8] {
        &self.share
    }

    fn ffdhe_group(&self) -> Option<FfdheGroup<'static>> {
        None
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519MLKEM768
    }
}

/// The ML-KEM decapsulation key, on the heap, zeroized when dropped.
struct DecapsulationKey(Box<MlKem768PrivateKey>);

impl Drop for DecapsulationKey {
    fn drop(&mut self) {
        self.0[0..].zeroize();
    }
}

//! The X25519MLKEM768 key exchange on its own: ML-KEM-768 against FIPS 203 known answers
//! (C2SP CCTV), the hybrid's share layout, and rejection of bad shares.

use libcrux_ml_kem::mlkem768::{self, MlKem768Ciphertext, MlKem768KeyPair, MlKem768PublicKey};
use rustls::{Error, NamedGroup, PeerMisbehaved, ProtocolVersion};
use sha3::digest::{ExtendableOutput, Update, XofReader};
use tls_core::kx::{self, X25519MLKEM768};

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// `name = hex` lines of tests/data/mlkem768.txt.
fn vector(name: &str) -> Vec<u8> {
    let text = include_str!("data/mlkem768.txt");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(" = "))
        .unwrap_or_else(|| panic!("{name} missing from the vector file"));
    unhex(line.trim())
}

/// ML-KEM.KeyGen_internal(d, z): libcrux takes the 64-byte seed d || z.
fn keypair(d: &[u8], z: &[u8]) -> MlKem768KeyPair {
    let mut seed = [0u8; 64];
    seed[..32].copy_from_slice(d);
    seed[32..].copy_from_slice(z);
    mlkem768::generate_key_pair(seed)
}

#[test]
fn mlkem768_matches_the_fips203_known_answer() {
    let pair = keypair(&vector("d"), &vector("z"));
    assert_eq!(pair.pk().as_slice(), vector("ek").as_slice(), "ek");
    assert_eq!(pair.sk().as_slice(), vector("dk").as_slice(), "dk");
    assert!(mlkem768::validate_public_key(pair.public_key()));

    let m: [u8; 32] = vector("m").try_into().unwrap();
    let (c, k) = mlkem768::encapsulate(pair.public_key(), m);
    assert_eq!(c.as_slice(), vector("c").as_slice(), "ciphertext");
    assert_eq!(k.as_slice(), vector("K").as_slice(), "shared key");
    let decapsulated = mlkem768::decapsulate(pair.private_key(), &c);
    assert_eq!(
        decapsulated.as_slice(),
        vector("K").as_slice(),
        "decapsulated key"
    );
}

/// C2SP CCTV's accumulated vectors for the final FIPS 203: 10,000 key pairs,
/// encapsulations and decapsulations (one of them of a random, invalid ciphertext) with
/// inputs from SHAKE-128(""), all outputs hashed with SHAKE-128. Expected value from
/// github.com/C2SP/CCTV ML-KEM/README.md, commit bb767ef ("Update Monte Carlo test vectors").
#[test]
fn mlkem768_matches_the_accumulated_fips203_vectors() {
    const EXPECTED: &str = "f959d18d3d1180121433bf0e05f11e7908cf9d03edc150b2b07cb90bef5bc1c1";
    let mut rng = sha3::Shake128::default().finalize_xof();
    let mut acc = sha3::Shake128::default();
    for _ in 0..10_000 {
        let (mut d, mut z, mut m) = ([0u8; 32], [0u8; 32], [0u8; 32]);
        let mut bad = [0u8; kx::MLKEM768_CIPHERTEXT_LEN];
        rng.read(&mut d);
        rng.read(&mut z);
        rng.read(&mut m);
        rng.read(&mut bad);
        let pair = keypair(&d, &z);
        let (c, k) = mlkem768::encapsulate(pair.public_key(), m);
        assert_eq!(mlkem768::decapsulate(pair.private_key(), &c), k);
        let rejected = mlkem768::decapsulate(pair.private_key(), &MlKem768Ciphertext::from(bad));
        acc.update(pair.pk());
        acc.update(pair.sk());
        acc.update(c.as_slice());
        acc.update(&k);
        acc.update(&rejected);
    }
    let mut hash = [0u8; 32];
    acc.finalize_xof().read(&mut hash);
    assert_eq!(hash.as_slice(), unhex(EXPECTED).as_slice());
}

#[test]
fn hybrid_shares_and_secrets_have_the_draft_layout() {
    assert_eq!(X25519MLKEM768.name(), NamedGroup::X25519MLKEM768);
    assert_eq!(u16::from(X25519MLKEM768.name()), 0x11ec);
    assert!(X25519MLKEM768.usable_for_version(ProtocolVersion::TLSv1_3));
    assert!(!X25519MLKEM768.usable_for_version(ProtocolVersion::TLSv1_2));

    let client = X25519MLKEM768.start().unwrap();
    assert_eq!(client.pub_key().len(), kx::CLIENT_SHARE_LEN);
    assert_eq!(client.group(), NamedGroup::X25519MLKEM768);
    // The client share is ML-KEM's encapsulation key (a valid one), then X25519's.
    let ek = MlKem768PublicKey::try_from(&client.pub_key()[..kx::MLKEM768_ENCAPSULATION_KEY_LEN])
        .unwrap();
    assert!(
        mlkem768::validate_public_key(&ek),
        "a valid encapsulation key"
    );
    let (component, x25519_pub) = client.hybrid_component().expect("X25519 component");
    assert_eq!(component, NamedGroup::X25519);
    assert_eq!(
        x25519_pub,
        &client.pub_key()[kx::MLKEM768_ENCAPSULATION_KEY_LEN..]
    );

    let server = X25519MLKEM768.start_and_complete(client.pub_key()).unwrap();
    assert_eq!(server.group, NamedGroup::X25519MLKEM768);
    assert_eq!(server.pub_key.len(), kx::SERVER_SHARE_LEN);
    let server_secret = server.secret.secret_bytes().to_vec();
    assert_eq!(server_secret.len(), 64);

    let client_secret = client.complete(&server.pub_key).unwrap();
    assert_eq!(client_secret.secret_bytes(), server_secret.as_slice());

    // The X25519 half is the last 32 bytes of the secret: an X25519-only peer that
    // answers the component share agrees with the client on exactly that part.
    let client = X25519MLKEM768.start().unwrap();
    let (_, x25519_pub) = client.hybrid_component().unwrap();
    let peer = rustls::crypto::ring::kx_group::X25519
        .start_and_complete(x25519_pub)
        .unwrap();
    let classical = client.complete_hybrid_component(&peer.pub_key).unwrap();
    assert_eq!(classical.secret_bytes(), peer.secret.secret_bytes());
}

fn invalid_share(result: Result<impl Sized, Error>) {
    match result {
        Err(Error::PeerMisbehaved(PeerMisbehaved::InvalidKeyShare)) => {}
        Err(e) => panic!("expected InvalidKeyShare, got {e:?}"),
        Ok(_) => panic!("a bad key share was accepted"),
    }
}

#[test]
fn bad_shares_are_rejected_with_a_typed_error() {
    let client = X25519MLKEM768.start().unwrap();
    let share = client.pub_key().to_vec();
    // Wrong lengths, both sides.
    invalid_share(X25519MLKEM768.start_and_complete(&share[..share.len() - 1]));
    invalid_share(X25519MLKEM768.start_and_complete(&[share.as_slice(), &[0]].concat()));
    invalid_share(X25519MLKEM768.start_and_complete(&[]));
    invalid_share(client.complete(&[0u8; kx::SERVER_SHARE_LEN - 1]));

    // FIPS 203 §7.2 modulus check: an encapsulation key coefficient of q (3329 = 0xd01)
    // or more is refused. Coefficient 0 is the low 12 bits of bytes 0..2.
    for value in [3329u16, 4095] {
        let mut bad = share.clone();
        bad[0] = (value & 0xff) as u8;
        bad[1] = (bad[1] & 0xf0) | (value >> 8) as u8;
        invalid_share(X25519MLKEM768.start_and_complete(&bad));
    }
    // The same in the last coefficient (the high 12 bits of bytes 1150..1152).
    let mut bad = share.clone();
    bad[1151] = 0xff;
    invalid_share(X25519MLKEM768.start_and_complete(&bad));

    // An all-zero X25519 half is a low-order point: ring refuses it.
    let mut bad = share.clone();
    bad[kx::MLKEM768_ENCAPSULATION_KEY_LEN..].fill(0);
    assert!(X25519MLKEM768.start_and_complete(&bad).is_err());
}

#[test]
fn a_forged_ciphertext_gives_an_unrelated_secret() {
    // ML-KEM's implicit rejection: no error, but the secrets differ, so the handshake
    // fails at Finished (see tests/pq_handshake.rs).
    let client = X25519MLKEM768.start().unwrap();
    let mut server = X25519MLKEM768.start_and_complete(client.pub_key()).unwrap();
    server.pub_key[10] ^= 1;
    let secret = client.complete(&server.pub_key).unwrap();
    assert_ne!(
        &secret.secret_bytes()[..32],
        &server.secret.secret_bytes()[..32]
    );
    assert_eq!(
        &secret.secret_bytes()[32..],
        &server.secret.secret_bytes()[32..]
    );
}

//! The X25519MLKEM768 hybrid over smoltcp with small segments and rings: MSS 536 and
//! 256-byte TCP rings on both sides, so the 1.2 KB+ ClientHello (1216-byte hybrid share
//! plus the X25519 share) and the 1120-byte server share each span several segments and
//! several ring fills. Both sides agree on the group and on exported keying material.

mod common;

use common::{tls, NetConfig, Pair, PairConfig, CLIENT, SERVER};
use tls_unikernel::tls_core::kx;
use tls_unikernel::tls_core::rustls::NamedGroup;
use tls_unikernel::Options;

const ROUNDS: u64 = 200_000;

fn small(loss_pct: u8) -> (NetConfig, PairConfig) {
    let net = NetConfig {
        mss: 536,
        loss_pct,
        ..NetConfig::default()
    };
    // 256-byte rings under loss make long zero-window waits on simulated time; the write
    // timeout (a bound for hostile peers, tests/hostile.rs) is off, as in the netsim.
    let options = Options {
        write_timeout: None,
        ..Options::default()
    };
    let pair = PairConfig {
        client_options: options,
        server_options: options,
        client_rx: 256,
        client_tx: 256,
        server_rx: 256,
        server_tx: 256,
        client_config: tls().client_13.clone(),
        ..PairConfig::default()
    };
    (net, pair)
}

fn exported(pair: &Pair, side: usize) -> [u8; 32] {
    let mut out = [0u8; 32];
    pair.tls[side]
        .export_keying_material(&mut out, b"EXPERIMENTAL smoltcp", Some(b"ctx"))
        .unwrap();
    out
}

fn check(pair: &mut Pair) {
    pair.handshake(ROUNDS);
    for side in [CLIENT, SERVER] {
        let info = pair.tls[side].handshake_info().unwrap();
        assert_eq!(
            info.key_exchange,
            Some(NamedGroup::X25519MLKEM768),
            "side {side}"
        );
    }
    assert_eq!(exported(pair, CLIENT), exported(pair, SERVER));

    // And data still flows through the small rings.
    let data: Vec<u8> = (0..4000u32).map(|i| (i % 253) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    pair.drive_until(ROUNDS, |pair| {
        let (tls, sockets) = pair.side(CLIENT);
        sent += tls.send_slice(sockets, &data[sent..]).unwrap();
        let (tls, sockets) = pair.side(SERVER);
        let mut buf = [0u8; 512];
        loop {
            let n = tls.recv_slice(sockets, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got.len() == data.len()
    });
    assert_eq!(got, data);
}

#[test]
fn hybrid_handshake_with_mss_536_and_256_byte_rings() {
    const { assert!(kx::CLIENT_SHARE_LEN > 2 * 536 && kx::SERVER_SHARE_LEN > 2 * 256) };
    let (net, cfg) = small(0);
    let mut pair = Pair::new(&net, &cfg, 21);
    check(&mut pair);
}

#[test]
fn hybrid_handshake_with_mss_536_256_byte_rings_and_loss() {
    let (net, cfg) = small(10);
    for seed in 30..34 {
        let mut pair = Pair::new(&net, &cfg, seed);
        check(&mut pair);
    }
}

//! Key logging without std: a `KeyLogBuffer` installed in a config collects NSS key log
//! lines for every secret of the handshake.

mod common;

use std::sync::Arc;

use tls_core::keylog::KeyLogBuffer;
use tls_test::certs::{KeyKind, TLS12, TLS13};
use tls_test::pair::{Dir, FaultPlan, Pair};

fn logged(versions: &[&'static rustls::SupportedProtocolVersion]) -> Vec<String> {
    let pki = common::pki(KeyKind::EcdsaP256);
    let opts = common::version(versions);
    let log = Arc::new(KeyLogBuffer::new(64));
    let mut client = pki.client_config(&opts);
    client.key_log = log.clone();
    let mut pair = Pair::connect(
        Arc::new(client),
        Arc::new(pki.server_config(&opts)),
        FaultPlan::CLEAN,
        1,
    );
    pair.handshake().unwrap();
    pair.transfer(b"logged", Dir::ClientToServer).unwrap();
    log.take()
}

fn labels(lines: &[String]) -> Vec<&str> {
    lines.iter().map(|l| l.split(' ').next().unwrap()).collect()
}

fn assert_well_formed(lines: &[String]) {
    for line in lines {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "{line}");
        assert_eq!(fields[1].len(), 64, "client random is 32 bytes: {line}");
        assert!(fields[2].len() >= 64 && fields[2].len() % 2 == 0, "{line}");
        assert!(fields[1..].iter().all(|f| f
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())));
    }
}

#[test]
fn tls13_logs_every_traffic_secret() {
    let lines = logged(TLS13);
    assert_well_formed(&lines);
    let labels = labels(&lines);
    for wanted in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
    ] {
        assert!(labels.contains(&wanted), "{wanted} missing from {labels:?}");
    }
    // One client random for the whole handshake.
    let randoms: std::collections::HashSet<_> =
        lines.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(randoms.len(), 1);
}

#[test]
fn tls12_logs_the_master_secret() {
    let lines = logged(TLS12);
    assert_well_formed(&lines);
    assert_eq!(labels(&lines), ["CLIENT_RANDOM"]);
    assert_eq!(
        lines[0].split(' ').nth(2).unwrap().len(),
        96,
        "48-byte master secret"
    );
}

#[test]
fn buffer_keeps_at_most_its_capacity() {
    use tls_core::keylog::KeyLog;
    let log = KeyLogBuffer::new(2);
    for _ in 0..5 {
        log.log("LABEL", &[1; 32], &[2; 32]);
    }
    let lines = log.take();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        tls_core::keylog::format_line("LABEL", &[1; 32], &[2; 32])
    );
    assert!(log.take().is_empty(), "take empties the buffer");
}

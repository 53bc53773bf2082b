//! Keying material exporters: both peers agree, the values match rustls' own exporter
//! (buffered std connection as the reference), and what cannot be exported says why.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::CipherSuite;
use tls_core::keylog::KeyLogBuffer;
use tls_core::{Error, Limits, Session};
use tls_test::certs::{KeyKind, Options, TLS12, TLS13};
use tls_test::pair::{FaultPlan, Side};

fn export(session: &Session, label: &[u8], context: Option<&[u8]>) -> [u8; 32] {
    let mut out = [0u8; 32];
    session
        .export_keying_material(&mut out, label, context)
        .unwrap();
    out
}

#[test]
fn both_sides_export_the_same_keying_material() {
    // SHA-256 and SHA-384 suites, full and one-byte-at-a-time delivery.
    for suite in [
        CipherSuite::TLS13_AES_128_GCM_SHA256,
        CipherSuite::TLS13_AES_256_GCM_SHA384,
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    ] {
        for plan in [FaultPlan::CLEAN, FaultPlan::ONE_BYTE] {
            let opts = Options {
                versions: TLS13.to_vec(),
                suites: vec![suite],
                ..Options::default()
            };
            let mut pair = common::connected(KeyKind::EcdsaP256, &opts, plan, 7);
            let client = export(pair.session(Side::Client), b"EXPERIMENTAL test", None);
            let server = export(pair.session(Side::Server), b"EXPERIMENTAL test", None);
            assert_eq!(client, server, "{suite:?}");
            assert_ne!(client, [0u8; 32]);

            // Label and context change the output; RFC 8446 §7.5: no context == empty.
            let other_label = export(pair.session(Side::Client), b"EXPERIMENTAL other", None);
            let with_context = export(
                pair.session(Side::Client),
                b"EXPERIMENTAL test",
                Some(b"ctx"),
            );
            let empty_context = export(pair.session(Side::Client), b"EXPERIMENTAL test", Some(b""));
            assert_ne!(client, other_label);
            assert_ne!(client, with_context);
            assert_eq!(client, empty_context);
            assert_eq!(
                with_context,
                export(
                    pair.session(Side::Server),
                    b"EXPERIMENTAL test",
                    Some(b"ctx")
                )
            );
        }
    }
}

#[test]
fn a_second_connection_exports_different_material() {
    let mut a = common::connected_on(KeyKind::EcdsaP256, TLS13, FaultPlan::CLEAN, 1);
    let mut b = common::connected_on(KeyKind::EcdsaP256, TLS13, FaultPlan::CLEAN, 1);
    assert_ne!(
        export(a.session(Side::Client), b"label", None),
        export(b.session(Side::Client), b"label", None)
    );
}

/// Drives a tls-core client against rustls' buffered (std) server connection.
fn drive(client: &mut Session, server: &mut rustls::ServerConnection) {
    for _ in 0..100 {
        let mut moved = false;
        let out = client.pending_tls().to_vec();
        if !out.is_empty() {
            let mut slice = &out[..];
            while !slice.is_empty() {
                let n = server.read_tls(&mut slice).unwrap();
                assert!(n > 0);
            }
            client.tls_written(out.len());
            server.process_new_packets().unwrap();
            moved = true;
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            let mut at = 0;
            while at < buf.len() {
                at += client.read_tls(&buf[at..]).unwrap();
            }
            moved = true;
        }
        if !moved {
            return;
        }
    }
    panic!("no progress after 100 rounds");
}

#[test]
fn exports_match_rustls_own_exporter() {
    for suite in [
        CipherSuite::TLS13_AES_128_GCM_SHA256,
        CipherSuite::TLS13_AES_256_GCM_SHA384,
    ] {
        let opts = Options {
            versions: TLS13.to_vec(),
            suites: vec![suite],
            ..Options::default()
        };
        let (client_config, server_config) = common::configs(KeyKind::EcdsaP256, &opts);
        let mut server = rustls::ServerConnection::new(server_config).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = Session::client(client_config, name, Limits::default()).unwrap();
        drive(&mut client, &mut server);
        assert!(!client.is_handshaking() && !server.is_handshaking());

        for (label, context) in [
            (&b"EXPORTER-Channel-Binding"[..], None),
            (b"my label", Some(&b"some context"[..])),
        ] {
            let mut ours = [0u8; 48];
            client
                .export_keying_material(&mut ours, label, context)
                .unwrap();
            let reference = server
                .export_keying_material([0u8; 48], label, context)
                .unwrap();
            assert_eq!(ours, reference, "{suite:?} {label:?}");
        }
        // The connection still works after exporting.
        client.send(b"ping").unwrap();
        drive(&mut client, &mut server);
        let mut got = [0u8; 4];
        server.reader().read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        server.writer().write_all(b"pong").unwrap();
        drive(&mut client, &mut server);
        let mut got = [0u8; 4];
        assert_eq!(client.recv(&mut got).unwrap(), 4);
        assert_eq!(&got, b"pong");
    }
}

#[test]
fn what_cannot_be_exported_says_why() {
    // Before the handshake.
    let (client_config, server_config) = common::configs(KeyKind::EcdsaP256, &Options::default());
    let name = ServerName::try_from("localhost").unwrap();
    let client = Session::client(client_config, name, Limits::default()).unwrap();
    let server = Session::server(server_config, Limits::default()).unwrap();
    let mut out = [0u8; 16];
    assert_eq!(
        client.export_keying_material(&mut out, b"l", None),
        Err(Error::Handshaking)
    );
    assert_eq!(
        server.export_keying_material(&mut out, b"l", None),
        Err(Error::Handshaking)
    );

    // TLS 1.2: no exporter (the key log gives no hello randoms).
    let mut pair = common::connected_on(KeyKind::EcdsaP256, TLS12, FaultPlan::CLEAN, 3);
    for side in [Side::Client, Side::Server] {
        assert!(matches!(
            pair.session(side)
                .export_keying_material(&mut out, b"l", None),
            Err(Error::ExporterUnavailable(_))
        ));
    }

    // Lengths and labels out of range, on a TLS 1.3 SHA-256 session.
    let opts = Options {
        versions: TLS13.to_vec(),
        suites: vec![CipherSuite::TLS13_AES_128_GCM_SHA256],
        ..Options::default()
    };
    let mut pair = common::connected(KeyKind::EcdsaP256, &opts, FaultPlan::CLEAN, 3);
    let client = pair.session(Side::Client);
    let unavailable = |r: Result<(), Error>| matches!(r, Err(Error::ExporterUnavailable(_)));
    assert!(unavailable(client.export_keying_material(
        &mut [],
        b"l",
        None
    )));
    assert!(unavailable(client.export_keying_material(
        &mut out,
        &[b'x'; 250],
        None
    )));
    let mut huge = vec![0u8; 255 * 32 + 1]; // HKDF-SHA256's limit is 255 blocks
    assert!(unavailable(
        client.export_keying_material(&mut huge, b"l", None)
    ));
    let mut most = vec![0u8; 255 * 32];
    client
        .export_keying_material(&mut most, b"l", None)
        .unwrap();
    client
        .export_keying_material(&mut out, &[b'x'; 249], None)
        .unwrap();
}

#[test]
fn the_configured_key_log_still_gets_every_line() {
    let log = Arc::new(KeyLogBuffer::new(64));
    let pki = common::pki(KeyKind::EcdsaP256);
    let opts = common::version(TLS13);
    let mut client_config = pki.client_config(&opts);
    client_config.key_log = log.clone();
    let server_config = pki.server_config(&opts);
    let mut pair = tls_test::pair::Pair::connect(
        Arc::new(client_config),
        Arc::new(server_config),
        FaultPlan::CLEAN,
        5,
    );
    pair.handshake().unwrap();
    let lines = log.take();
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(label)),
            "{label} missing from {lines:?}"
        );
    }
    // And the exporter still works.
    let client = export(pair.session(Side::Client), b"label", None);
    assert_eq!(client, export(pair.session(Side::Server), b"label", None));
}

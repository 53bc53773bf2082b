//! `bulk/<suite>/<size>` cases: 1 MiB client to server per iteration.

use super::*;

pub(super) fn bulk_cases() -> Vec<Case> {
    let suites = [
        ("aes128gcm", CipherSuite::TLS13_AES_128_GCM_SHA256),
        ("aes256gcm", CipherSuite::TLS13_AES_256_GCM_SHA384),
        (
            "chacha20poly1305",
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        ),
    ];
    let sizes = [(64, "64B"), (1024, "1KiB"), (16 * 1024, "16KiB")];
    let throughput = Throughput::Bytes(BULK_BYTES as u64);
    let batches = BULK_BYTES / BATCH;
    let mut cases = Vec::new();
    for (suite_name, suite) in suites {
        let (cc, sc) = configs(KeyKind::EcdsaP256, &tls13_suite(suite));
        for (size, size_name) in sizes {
            let writes = BATCH / size;
            let core = |coalesce: bool| -> Routine {
                let (mut client, mut server) = core_pair(&cc, &sc);
                assert_eq!(client.handshake_info().map(|i| i.cipher_suite), Some(suite));
                client.set_coalescing(coalesce).unwrap();
                let data = vec![0x5a; size];
                let mut app = vec![0u8; APP_BUF];
                Box::new(move || {
                    for _ in 0..batches {
                        core_batch(&mut client, &mut server, black_box(&data), writes, &mut app);
                    }
                })
            };
            let raw = || -> Routine {
                let (mut client, mut server) = raw_pair(&cc, &sc);
                let data = vec![0x5a; size];
                Box::new(move || {
                    for _ in 0..batches {
                        raw_batch(&mut client, &mut server, black_box(&data), writes);
                    }
                })
            };
            cases.push(Case {
                name: format!("bulk/{suite_name}/{size_name}"),
                throughput: throughput.clone(),
                core: core(false),
                raw: raw(),
                bench_raw: true,
            });
            if size == 64 && suite == CipherSuite::TLS13_AES_128_GCM_SHA256 {
                // Compared with raw's 64-byte writes, one record each.
                cases.push(Case {
                    name: format!("bulk/{suite_name}/64B-coalesced"),
                    throughput: throughput.clone(),
                    core: core(true),
                    raw: raw(),
                    bench_raw: false,
                });
            }
        }
    }
    cases
}

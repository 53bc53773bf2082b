//! Records on the wire: `tlsflow::server` seals a response head and a body of up to a
//! record's worth into as few TLS records as they fill (one for 1 KiB, two for 16 KiB),
//! and bulk into full 16 KiB records with only the last one short.

mod https;

use std::io::Write;

use https::{read_response, Running};

const FULL: usize = 16384;
/// TLS 1.3 record body overhead: the inner content type and the 16-byte tag.
const TAG: usize = 17;

/// Fetches `/bytes/N` over HTTP/1.1 keep-alive and returns the application-data records
/// the response took, and the response's plaintext length (head and body).
fn records_for(server: &Running, n: usize) -> (Vec<usize>, usize) {
    let mut tls = server.connect();
    let before = tls.get_ref().seen().len();
    write!(tls, "GET /bytes/{n} HTTP/1.1\r\nhost: localhost\r\n\r\n").unwrap();
    tls.flush().unwrap();
    let response = read_response(&mut tls).unwrap();
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(response.body.len(), n);
    let mut expected = vec![0u8; n];
    tlsflow_unikernel::http::fill_pattern(0, &mut expected);
    assert!(response.body == expected, "body differs from the pattern");
    let records: Vec<usize> = tls.get_ref().seen()[before..]
        .iter()
        .map(|&(kind, len)| {
            assert_eq!(kind, 23, "only application data after the handshake");
            len - TAG
        })
        .collect();
    (records, response.head_len + n)
}

#[test]
fn response_records_are_as_few_as_the_data_allows() {
    let server = Running::start(Default::default());

    let (records, total) = records_for(&server, 1024);
    assert_eq!(records, vec![total], "1 KiB: head and body in one record");

    let (records, total) = records_for(&server, 16 * 1024);
    assert_eq!(
        records,
        vec![FULL, total - FULL],
        "16 KiB: a full record and the rest"
    );

    let (records, total) = records_for(&server, 1024 * 1024);
    assert_eq!(records.len(), total.div_ceil(FULL), "1 MiB: {records:?}");
    let (last, full) = records.split_last().unwrap();
    assert!(
        full.iter().all(|&len| len == FULL),
        "all but the last full: {records:?}"
    );
    assert_eq!(*last, total - full.len() * FULL);
}

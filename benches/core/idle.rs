//! Idle memory: live heap bytes of an established pair (printed first, not timed).

use super::*;

/// Live heap bytes of (client, server) built by `make`, measured by dropping the server
/// and then the client. `make` runs once before measuring to warm lazy statics.
pub(super) fn measure<C, S>(mut make: impl FnMut() -> (C, S)) -> (isize, isize) {
    drop(make());
    let before = live_bytes();
    let (client, server) = make();
    let with_both = live_bytes();
    drop(server);
    let with_client = live_bytes();
    drop(client);
    (with_client - before, with_both - with_client)
}

pub(super) fn idle_memory() {
    let session = size_of::<Session>() as isize;
    let raw_client = size_of::<UnbufferedClientConnection>() as isize;
    let raw_server = size_of::<UnbufferedServerConnection>() as isize;
    println!(
        "idle established session (ECDSA P-256, resumption off): bytes = live heap + the \
         struct itself (Session {session} B; raw UnbufferedClientConnection {raw_client} B, \
         UnbufferedServerConnection {raw_server} B)"
    );
    println!(
        "{:<40} {:>16} {:>16} {:>7}",
        "case", "client", "server", "pair"
    );
    let mut rows = Vec::new();
    for (version_name, version) in [("tls13", TLS13), ("tls12", TLS12)] {
        let opts = Options {
            versions: version.to_vec(),
            ..Options::default()
        };
        let (cc, sc) = configs(KeyKind::EcdsaP256, &opts);
        let data = vec![0x5a; 16 * 1024];
        let core = (session, session);
        let raw = (raw_client, raw_server);

        // Idle = the transport has nothing to read: the session gives back its empty
        // buffers (`release_buffers`, which a binding's "read would block" triggers).
        let heap = measure(|| {
            let (mut c, mut s) = core_pair(&cc, &sc);
            c.release_buffers();
            s.release_buffers();
            (c, s)
        });
        rows.push((
            format!("{version_name}/after-handshake/tls-core"),
            heap,
            core,
        ));
        let heap = measure(|| {
            let (mut c, mut s) = raw_pair(&cc, &sc);
            c.release_buffers();
            s.release_buffers();
            (c, s)
        });
        rows.push((format!("{version_name}/after-handshake/raw"), heap, raw));
        // After 64 KiB each way in 16 KiB writes: are transfer buffers given back?
        let heap = measure(|| {
            let (mut c, mut s) = core_pair(&cc, &sc);
            let mut app = vec![0u8; APP_BUF];
            for _ in 0..2 {
                core_batch(&mut c, &mut s, &data, 2, &mut app);
                core_batch(&mut s, &mut c, &data, 2, &mut app);
            }
            drop(app);
            while c.poll_event().is_some() {}
            while s.poll_event().is_some() {}
            c.release_buffers();
            s.release_buffers();
            (c, s)
        });
        rows.push((
            format!("{version_name}/after-64KiB-each-way/tls-core"),
            heap,
            core,
        ));
        let heap = measure(|| {
            let (mut c, mut s) = raw_pair(&cc, &sc);
            for _ in 0..4 {
                c.write(&data);
                raw_wire(&mut c, &mut s);
                s.write(&data);
                raw_wire(&mut s, &mut c);
            }
            c.release_buffers();
            s.release_buffers();
            (c, s)
        });
        rows.push((
            format!("{version_name}/after-64KiB-each-way/raw"),
            heap,
            raw,
        ));
    }
    let mut json = String::from("{");
    for (i, (name, (hc, hs), (ic, is))) in rows.iter().enumerate() {
        let (client, server) = (hc + ic, hs + is);
        println!(
            "{name:<40} {:>16} {:>16} {:>7}",
            format!("{hc}+{ic}={client}"),
            format!("{hs}+{is}={server}"),
            client + server
        );
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(
            "\"{name}\":{{\"client_heap\":{hc},\"client\":{client},\
             \"server_heap\":{hs},\"server\":{server}}}"
        ));
    }
    json.push('}');
    println!("(raw: the rustls connections alone, its driver's buffers dropped)");
    // Saved next to criterion's results for benches/report.py.
    if let Some(dir) = criterion_dir() {
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = std::fs::write(dir.join("idle-memory.json"), json);
        }
    }
}

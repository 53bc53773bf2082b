//! Interop with nginx (OpenSSL underneath): our client (`tlsflow get` and the tls-unix
//! blocking stream) downloads and uploads 8 MiB over TLS 1.2 and TLS 1.3, resumes with
//! session tickets, and sees nginx's close_notify; `tlsflow get` speaks HTTP/2 when nginx
//! picks `h2` and HTTP/1.1 when it does not.

mod support;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use support::peer::{require, Peer};
use support::*;
use tls_test::certs::{KeyKind, Options as CertOptions, Pki};
use tls_unix::rustls::pki_types::ServerName;
use tls_unix::rustls::version::{TLS12, TLS13};
use tls_unix::rustls::SupportedProtocolVersion;
use tls_unix::{blocking, Options};

/// An nginx serving `/big.bin` (8 MiB of the `/bytes/N` pattern) and accepting `PUT` under
/// `/upload/`, from a temporary directory, as one process (`master_process off`).
struct Nginx {
    _peer: Peer,
    addr: SocketAddr,
    pki: Pki,
    files: PkiFiles,
    dir: TempDir,
}

impl Nginx {
    /// `protocols`: nginx's `ssl_protocols`, e.g. `TLSv1.2 TLSv1.3`.
    fn start(protocols: &str) -> Nginx {
        Self::start_with(protocols, false)
    }

    /// As [`Nginx::start`]; with `http2` nginx also offers `h2` by ALPN (and prefers it).
    fn start_with(protocols: &str, http2: bool) -> Nginx {
        let nginx = require("nginx");
        let dir = TempDir::new("nginx");
        let pki = Pki::new(KeyKind::EcdsaP256, &[]);
        let files = write_pki(&dir, &pki);
        for sub in ["www/upload", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        dir.write("www/big.bin", pattern(BULK));
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port} ssl{h2};
        server_name localhost;
        ssl_certificate {chain};
        ssl_certificate_key {key};
        ssl_protocols {protocols};
        ssl_session_tickets on;
        root {d}/www;
        client_max_body_size 64m;
        location /upload/ {{
            dav_methods PUT;
        }}
    }}
}}
"#,
            chain = files.server_chain.display(),
            key = files.server_key.display(),
            h2 = if http2 { " http2" } else { "" },
        );
        let conf_path = dir.write("nginx.conf", conf);
        let mut cmd = Command::new(nginx);
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg("stderr")
            .arg("-c")
            .arg(&conf_path);
        let mut peer = Peer::spawn("nginx", &mut cmd);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_listening(&mut peer, addr, LIMIT);
        Nginx {
            _peer: peer,
            addr,
            pki,
            files,
            dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }
}

/// `tlsflow get` against nginx: 8 MiB with its digest, `resume` more connections that must
/// resume with nginx's ticket, and clean closes (no "did not close cleanly" note with `-v`).
fn get_big_file(protocols: &str, version_flag: &str, version: &str) {
    let nginx = Nginx::start(protocols);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tlsflow"));
    cmd.args([
        "get",
        "-v",
        "--sha256",
        "--resume",
        "2",
        "--alpn",
        "http/1.1",
        version_flag,
    ])
    .arg("--cacert")
    .arg(&nginx.files.ca)
    .arg(nginx.url("/big.bin"));
    let done = run("tlsflow get", &mut cmd, LIMIT);
    done.assert_success("tlsflow get");
    let expected = format!(
        "{}  {BULK}\n",
        hex(&tlsflow_unikernel::http::pattern_digest(BULK as u64))
    );
    assert_eq!(done.stdout_text(), expected, "stderr:\n{}", done.stderr);
    let stderr = &done.stderr;
    for line in [
        &format!("* version: {version}"),
        "* alpn: http/1.1",
        "< HTTP/1.1 200",
        "connection 1: full handshake",
        "connection 2: resumed",
        "connection 3: resumed",
    ] {
        assert!(
            stderr.lines().any(|l| l == line),
            "no {line:?} in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("did not close cleanly"),
        "nginx closes with close_notify:\n{stderr}"
    );
}

#[test]
fn get_8mib_from_nginx_tls13_and_resume_with_tickets() {
    get_big_file("TLSv1.2 TLSv1.3", "--tls13", "TLSv1_3");
}

#[test]
fn get_8mib_from_nginx_tls12_and_resume_with_tickets() {
    get_big_file("TLSv1.2", "--tls12", "TLSv1_2");
}

/// `tlsflow get -v --sha256` with the default ALPN offer (`h2, http/1.1`) against an nginx
/// with or without HTTP/2: the protocol nginx picked, the status line, the digest of the
/// 8 MiB, a resumed second connection, and no unclean-close note.
fn get_default_alpn(http2: bool, alpn: &str, status_line: &str) {
    let nginx = Nginx::start_with("TLSv1.2 TLSv1.3", http2);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tlsflow"));
    cmd.args(["get", "-v", "--sha256", "--resume", "1", "--cacert"])
        .arg(&nginx.files.ca)
        .arg(nginx.url("/big.bin"));
    let done = run("tlsflow get", &mut cmd, LIMIT);
    done.assert_success("tlsflow get");
    let expected = format!(
        "{}  {BULK}\n",
        hex(&tlsflow_unikernel::http::pattern_digest(BULK as u64))
    );
    assert_eq!(done.stdout_text(), expected, "stderr:\n{}", done.stderr);
    let stderr = &done.stderr;
    for line in [
        "* version: TLSv1_3",
        &format!("* alpn: {alpn}"),
        status_line,
        "connection 1: full handshake",
        "connection 2: resumed",
    ] {
        assert!(
            stderr.lines().any(|l| l == line),
            "no {line:?} in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("did not close cleanly"),
        "nginx ends cleanly:\n{stderr}"
    );
}

#[test]
fn get_8mib_from_nginx_over_http2_when_nginx_picks_h2() {
    get_default_alpn(true, "h2", "< HTTP/2 200");
}

#[test]
fn get_8mib_from_nginx_over_http1_when_nginx_has_no_h2() {
    get_default_alpn(false, "http/1.1", "< HTTP/1.1 200");
}

/// Uploads 8 MiB with `PUT` over the blocking stream, checks the file nginx stored, and
/// reads nginx's close_notify after its answer.
fn put_big_file(version: &'static SupportedProtocolVersion) {
    let nginx = Nginx::start("TLSv1.2 TLSv1.3");
    let config = Arc::new(nginx.pki.client_config(&CertOptions {
        versions: vec![version],
        ..CertOptions::default()
    }));
    let options = Options {
        handshake_timeout: Some(Duration::from_secs(20)),
        read_timeout: Some(Duration::from_secs(30)),
        write_timeout: Some(Duration::from_secs(30)),
        ..Options::default()
    };
    let sock = TcpStream::connect(nginx.addr).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = blocking::connect(config, name, sock, options).expect("handshake with nginx");
    assert_eq!(tls.handshake_info().unwrap().version, version.version);

    let body = hex_lines(BULK, 7);
    write!(
        tls,
        "PUT /upload/put.bin HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    tls.write_all(&body).unwrap();
    tls.flush().unwrap();

    let mut reader = BufReader::new(tls);
    let response = support::http::read_response(&mut reader).unwrap();
    assert_eq!(response.status, 201, "PUT answer");
    let mut rest = Vec::new();
    // Ok(0) (end of the body and of the stream) only after nginx's close_notify.
    reader
        .read_to_end(&mut rest)
        .expect("nginx ends the connection with close_notify");
    assert_eq!(rest.len() as u64, response.content_length.unwrap_or(0));
    let tls = reader.into_inner();
    assert!(tls.session().peer_has_closed());

    let stored: PathBuf = nginx.dir.join("www/upload/put.bin");
    let stored = std::fs::read(&stored).unwrap_or_else(|e| panic!("{stored:?}: {e}"));
    assert_eq!(stored.len(), BULK);
    assert_eq!(
        hex(&sha256(&stored)),
        hex(&sha256(&body)),
        "digest of the stored upload"
    );
}

#[test]
fn put_8mib_to_nginx_tls13() {
    put_big_file(&TLS13);
}

#[test]
fn put_8mib_to_nginx_tls12() {
    put_big_file(&TLS12);
}

#[test]
fn nginx_refuses_a_version_it_does_not_speak() {
    let nginx = Nginx::start("TLSv1.2");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tlsflow"));
    cmd.args(["get", "--tls13", "--cacert"])
        .arg(&nginx.files.ca)
        .arg(nginx.url("/big.bin"));
    let done = run("tlsflow get", &mut cmd, LIMIT);
    assert!(
        !done.status.success(),
        "TLS 1.3 only against a TLS 1.2 nginx"
    );
    assert!(
        done.stderr.contains("TLS handshake with") && done.stderr.contains("failed"),
        "{}",
        done.stderr
    );
}

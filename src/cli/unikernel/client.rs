//! `tlsflow get --backend unikernel`: the application's client
//! ([`tlsflow_unikernel::Fetch`]) run on the TAP platform.

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use smoltcp::socket::tcp;
use smoltcp::time::Duration as SDuration;
use smoltcp::wire::IpAddress;
use tls_unikernel::{Options, TlsSocket};
use tlsflow_unikernel::{run_fetch, Fetch, FetchEvent};

use super::tap::Net;
use super::TapArgs;
use crate::cli::common::{describe, BodySink, Fetched, Url};
use crate::cli::Error;

/// Bound on any wait for progress.
const IO_TIMEOUT: SDuration = SDuration::from_secs(60);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: SDuration = SDuration::from_secs(10);
/// TCP rings: room for several full-sized segments each way.
const RING: usize = 64 * 1024;

/// A client on the unikernel stack, for `tlsflow get --backend unikernel`.
pub(crate) struct Client {
    net: Net,
}

impl Client {
    /// Attaches to the TAP device.
    pub(crate) fn open(tap: &TapArgs) -> Result<Client, Error> {
        Ok(Client {
            net: Net::open(tap)?,
        })
    }

    /// Fetches `url` over the unikernel stack and writes the body to `sink`; `verbose`
    /// prints the handshake and status, `progress` a progress line for long bodies. The
    /// URL's host must be an IPv4 address (the stack has no resolver).
    pub(crate) fn fetch(
        &mut self,
        config: &Arc<rustls::ClientConfig>,
        url: &Url,
        sink: &mut dyn Write,
        verbose: bool,
        progress: bool,
    ) -> Result<Fetched, Error> {
        let ip: Ipv4Addr = url.host.parse().map_err(|_| {
            format!(
                "--backend unikernel needs an IPv4 address in the URL (no DNS), not {}",
                url.host
            )
        })?;
        let name = ServerName::try_from(url.host.clone())
            .map_err(|_| format!("not a valid server name: {}", url.host))?;
        let net = &mut self.net;
        net.check_route(ip)?;
        let handle = net.sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; RING]),
            tcp::SocketBuffer::new(vec![0; RING]),
        ));
        let options = Options {
            handshake_timeout: Some(HANDSHAKE_TIMEOUT),
            ..Options::default()
        };
        let mut tls = TlsSocket::client(handle, config.clone(), name, options);
        let local_port = net.take_port();
        let endpoint = (IpAddress::Ipv4(ip), url.port);
        if let Err(e) = tls.connect(net.iface.context(), &mut net.sockets, endpoint, local_port) {
            net.sockets.remove(handle);
            return Err(format!("cannot connect to {ip}:{}: {e}", url.port).into());
        }
        let mut fetch = Fetch::new(tls, &url.host, &url.path, IO_TIMEOUT);
        // The length is known only once the head is parsed: a spinner with size and rate.
        // The application computes the body's digest itself.
        let mut body = BodySink::new(sink, None, progress, false);
        let mut write_error: Option<Error> = None;
        let mut write = |data: &[u8]| {
            if write_error.is_none() {
                write_error = body.write(data).err();
            }
        };
        let mut established = false;
        let mut on_event = |event: &FetchEvent, fetch: &mut Fetch| match event {
            FetchEvent::Established => {
                established = true;
                let tls = fetch.tls();
                if let (true, Some(info)) = (verbose, tls.handshake_info()) {
                    describe(info, tls.peer_certificates().unwrap_or(&[]));
                }
            }
            FetchEvent::Status(status) if verbose => eprintln!("< HTTP {status}"),
            _ => {}
        };
        let result = run_fetch(
            &mut net.tap,
            &mut net.iface,
            &mut net.sockets,
            &mut fetch,
            &mut write,
            &mut on_event,
        );
        net.sockets.remove(handle);
        let fetched = match result {
            Ok(f) => f,
            Err(None) => return Err("stopped".into()),
            Err(Some(e)) if !established => {
                return Err(
                    format!("TLS handshake with {}:{} failed: {e}", url.host, url.port).into(),
                )
            }
            Err(Some(e)) => return Err(e.to_string().into()),
        };
        if let Some(e) = write_error {
            return Err(e);
        }
        body.finish()?;
        Ok(Fetched {
            info: fetched.info,
            status: fetched.status,
            len: fetched.len,
            digest: fetched.digest,
            unclean_close: fetched
                .unclean_close
                .map(|e| io::Error::other(e.to_string())),
        })
    }
}

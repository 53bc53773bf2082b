//! Bounded in-memory session caches that work without std.
//!
//! rustls' own memory caches change constructor signature between std and no_std builds,
//! so a crate that may be built either way (cargo unifies features across a workspace)
//! cannot call them portably. These are small, bounded and oldest-first evicting.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;
use rustls::server::StoresServerSessions;
use rustls::NamedGroup;

/// Most TLS 1.3 tickets kept per server (rustls' default cache keeps the same number).
const TICKETS_PER_SERVER: usize = 8;

#[derive(Debug, Default)]
struct ServerData {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    tls13: VecDeque<Tls13ClientSessionValue>,
}

/// A client's resumption store: per server name, the key-exchange hint, one TLS 1.2
/// session and up to 8 TLS 1.3 tickets, for at most `capacity` server names.
#[derive(Debug)]
pub struct ClientSessionCache {
    capacity: usize,
    servers: spin::Mutex<Vec<(ServerName<'static>, ServerData)>>,
}

impl ClientSessionCache {
    /// A cache for up to `capacity` server names (the oldest is dropped first).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            servers: spin::Mutex::new(Vec::new()),
        }
    }

    fn with<R>(&self, name: &ServerName<'_>, f: impl FnOnce(&mut ServerData) -> R) -> Option<R> {
        let mut servers = self.servers.lock();
        servers
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, data)| f(data))
    }

    fn with_insert<R>(&self, name: ServerName<'static>, f: impl FnOnce(&mut ServerData) -> R) -> R {
        let mut servers = self.servers.lock();
        let index = match servers.iter().position(|(n, _)| *n == name) {
            Some(i) => i,
            None => {
                if servers.len() >= self.capacity {
                    servers.remove(0);
                }
                servers.push((name, ServerData::default()));
                servers.len() - 1
            }
        };
        f(&mut servers[index].1)
    }
}

impl ClientSessionStore for ClientSessionCache {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.with_insert(server_name, |d| d.kx_hint = Some(group));
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.with(server_name, |d| d.kx_hint).flatten()
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.with_insert(server_name, |d| d.tls12 = Some(value));
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.with(server_name, |d| d.tls12.clone()).flatten()
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.with(server_name, |d| d.tls12 = None);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.with_insert(server_name, |d| {
            if d.tls13.len() >= TICKETS_PER_SERVER {
                d.tls13.pop_front();
            }
            d.tls13.push_back(value);
        });
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        // Newest first: it is the least likely to have expired.
        self.with(server_name, |d| d.tls13.pop_back()).flatten()
    }
}

/// A server's store for stateful resumption (TLS 1.2 session ids, and TLS 1.3 when no
/// ticketer is configured): at most `capacity` sessions, oldest dropped first.
#[derive(Debug)]
pub struct ServerSessionCache {
    capacity: usize,
    entries: spin::Mutex<VecDeque<(Vec<u8>, Vec<u8>)>>,
}

impl ServerSessionCache {
    /// A cache for up to `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: spin::Mutex::new(VecDeque::new()),
        }
    }
}

impl StoresServerSessions for ServerSessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut entries = self.entries.lock();
        entries.retain(|(k, _)| *k != key);
        if entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back((key, value));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let entries = self.entries.lock();
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut entries = self.entries.lock();
        let index = entries.iter().position(|(k, _)| k == key)?;
        entries.remove(index).map(|(_, v)| v)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

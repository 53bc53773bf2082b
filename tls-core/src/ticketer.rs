//! Session tickets without std: a [`ProducesTickets`] built on ring's AEAD.
//!
//! rustls' own `Ticketer` needs std (it reads the system clock). [`Ticketer`] takes time
//! from the embedder's [`TimeProvider`] and randomness from ring (getrandom).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;
use rustls::time_provider::TimeProvider;

use crate::Error;

const KEY_ID_LEN: usize = 4;

struct TicketKey {
    id: [u8; KEY_ID_LEN],
    key: LessSafeKey,
}

struct State {
    current: TicketKey,
    previous: Option<TicketKey>,
    /// When (Unix seconds) `current` retires to `previous`.
    switch_at: u64,
}

/// Encrypts and authenticates session tickets with ChaCha20-Poly1305 keys that rotate
/// every `lifetime` seconds of the embedder's clock. A ticket is accepted while its key
/// is current or previous, so for at most twice the lifetime.
///
/// Ticket layout: key id (4) | nonce (12) | ciphertext | tag (16).
pub struct Ticketer {
    lifetime: u32,
    time: Arc<dyn TimeProvider>,
    rng: SystemRandom,
    state: spin::Mutex<State>,
}

impl fmt::Debug for Ticketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticketer")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Ticketer {
    /// Makes a ticketer whose keys rotate every `lifetime` seconds (12 hours is common).
    pub fn new(lifetime: u32, time: Arc<dyn TimeProvider>) -> Result<Self, Error> {
        let rng = SystemRandom::new();
        let current = new_key(&rng)?;
        let now = now_secs(&*time).ok_or(Error::UnsupportedConfig(
            "ticketer needs the time provider to tell the time",
        ))?;
        Ok(Self {
            lifetime,
            time,
            rng,
            state: spin::Mutex::new(State {
                current,
                previous: None,
                switch_at: now.saturating_add(u64::from(lifetime)),
            }),
        })
    }

    /// Rotates keys when the current one has served its lifetime.
    fn maybe_roll(&self, state: &mut State) {
        let Some(now) = now_secs(&*self.time) else {
            return;
        };
        if now < state.switch_at {
            return;
        }
        let Ok(fresh) = new_key(&self.rng) else {
            return;
        };
        let old = core::mem::replace(&mut state.current, fresh);
        // A key more than two lifetimes old is dropped, not kept as previous.
        state.previous = if now < state.switch_at.saturating_add(u64::from(self.lifetime)) {
            Some(old)
        } else {
            None
        };
        state.switch_at = now.saturating_add(u64::from(self.lifetime));
    }
}

fn now_secs(time: &dyn TimeProvider) -> Option<u64> {
    time.current_time().map(|t| t.as_secs())
}

fn new_key(rng: &SystemRandom) -> Result<TicketKey, Error> {
    let mut bytes = [0u8; 32];
    let mut id = [0u8; KEY_ID_LEN];
    rng.fill(&mut bytes)
        .and_then(|()| rng.fill(&mut id))
        .map_err(|_| Error::UnsupportedConfig("no randomness for ticket keys"))?;
    let key = UnboundKey::new(&aead::CHACHA20_POLY1305, &bytes)
        .map_err(|_| Error::UnsupportedConfig("ticket key rejected"))?;
    Ok(TicketKey {
        id,
        key: LessSafeKey::new(key),
    })
}

impl ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut state = self.state.lock();
        self.maybe_roll(&mut state);
        let key = &state.current;
        let tag_len = key.key.algorithm().tag_len();
        let mut out = Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + plain.len() + tag_len);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&key.id),
                &mut body,
            )
            .ok()?;
        out.extend_from_slice(&body);
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < KEY_ID_LEN + NONCE_LEN {
            return None;
        }
        let (id, rest) = cipher.split_at(KEY_ID_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let mut state = self.state.lock();
        self.maybe_roll(&mut state);
        let key = [Some(&state.current), state.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == id)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = sealed.to_vec();
        let plain_len = key
            .key
            .open_in_place(nonce, Aad::from(id), &mut body)
            .ok()?
            .len();
        body.truncate(plain_len);
        Some(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU64, Ordering};
    use rustls::pki_types::UnixTime;

    #[derive(Debug)]
    struct Clock(AtomicU64);
    impl TimeProvider for Clock {
        fn current_time(&self) -> Option<UnixTime> {
            Some(UnixTime::since_unix_epoch(core::time::Duration::from_secs(
                self.0.load(Ordering::Relaxed),
            )))
        }
    }

    #[test]
    fn tickets_round_trip_rotate_and_expire() {
        let clock = Arc::new(Clock(AtomicU64::new(1_000_000)));
        let t = Ticketer::new(100, clock.clone()).unwrap();
        let ticket = t.encrypt(b"session state").unwrap();
        assert_eq!(t.decrypt(&ticket).unwrap(), b"session state");
        // Tampering is detected.
        let mut bad = ticket.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(t.decrypt(&bad).is_none());
        assert!(t.decrypt(&ticket[..10]).is_none());
        // After one rotation the old key still decrypts.
        clock.0.store(1_000_150, Ordering::Relaxed);
        assert_eq!(t.decrypt(&ticket).unwrap(), b"session state");
        // After a second rotation it is gone.
        clock.0.store(1_000_300, Ordering::Relaxed);
        assert!(t.decrypt(&ticket).is_none());
    }
}

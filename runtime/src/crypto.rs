//! Sealed tunnels: ChaCha20-Poly1305 (RFC 8439) over the rest of a packet, keys agreed by
//! X25519 (RFC 7748) and HKDF-SHA256 (RFC 5869), a nonce that never repeats for a key and an
//! anti-replay window at the receiver, as IPsec ESP (RFC 4303) and WireGuard do it. The
//! primitives are ring's (BoringSSL's assembly) and x25519-dalek's; nothing here is
//! hand-written cryptography.
//!
//! The tunnel header is the program's: its first two fields are the key id (32 bits) and the
//! counter (64 bits), which together are the 96-bit nonce; any fields after them are
//! authenticated but not encrypted (AAD). Everything after the header is encrypted, and the
//! 16-byte tag goes at the end of the packet.
//!
//! A 256-bit secret is a keyring: keys set by `secret_set` or derived by `key_derive`, each
//! with the ids it sends and receives under, the peer address it is for (or none: the
//! default), its counter and its replay window. The counter and the window are shared by
//! every copy of the tables (a live switch has two), so that a nonce is never used twice.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use zeroize::Zeroize;

pub const KEY_LEN: usize = 32;
pub const TAG_LEN: usize = ring::aead::MAX_TAG_LEN;
/// Key id and counter: the nonce, at the start of the tunnel header.
pub const NONCE_HEADER_LEN: usize = 12;
/// How many of the latest counters a receiver remembers (RFC 4303 §3.4.3 asks for at least
/// 32; WireGuard keeps 2,048 bits).
pub const REPLAY_WINDOW: usize = 1024;
/// A counter more than this far behind the packet's arrival time (by the sender's clock,
/// which the counter follows) is too old, however empty the window: so that a switch that
/// restarted cannot be fed packets recorded before.
pub const MAX_AGE_NS: u64 = 60_000_000_000;

/// Why a packet is not sealed or opened; each is a drop reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoError {
    /// The tag does not verify under the key the key id names, or no key has that id.
    BadTag,
    /// A counter seen before, or too old.
    Replay,
    /// Sealing: no key for that peer and no default key.
    NoKey,
    /// Not enough room in the packet buffer, or a region too short for a tag: generated code
    /// and the interpreter size buffers so that this does not happen.
    Truncated,
}

/// Which packets a receiver has taken: the latest `REPLAY_WINDOW` counters. Kept as a set of
/// counters rather than a bitmap, because counters follow the sender's clock and are sparse:
/// the window is 1,024 packets whatever their spacing in time.
#[derive(Debug, Default, Clone)]
pub struct ReplayWindow {
    seen: BTreeSet<u64>,
}

impl ReplayWindow {
    /// Whether a counter may be taken (not seen, not older than the window).
    pub fn check(&self, counter: u64) -> bool {
        if self.seen.contains(&counter) {
            return false;
        }
        self.seen.len() < REPLAY_WINDOW || self.seen.first().is_some_and(|&min| counter > min)
    }

    /// Takes a counter, after its packet's tag verified; false if it may not be taken.
    pub fn take(&mut self, counter: u64) -> bool {
        if !self.check(counter) {
            return false;
        }
        self.seen.insert(counter);
        if self.seen.len() > REPLAY_WINDOW {
            self.seen.pop_first();
        }
        true
    }
}

/// One AEAD key and its state.
pub struct AeadKey {
    key: ring::aead::LessSafeKey,
    /// The key id this side seals under, and the one it opens.
    pub send_id: u32,
    pub recv_id: u32,
    /// The peer (its tunnel address) this key seals for; None: any peer without its own.
    pub peer: Option<u32>,
    counter: AtomicU64,
    window: Mutex<ReplayWindow>,
}

impl std::fmt::Debug for AeadKey {
    // Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AeadKey")
            .field("send_id", &format_args!("{:#010x}", self.send_id))
            .field("recv_id", &format_args!("{:#010x}", self.recv_id))
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl AeadKey {
    /// A key with its ids. The key bytes are wiped from `key` once ring has them.
    pub fn new(mut key: [u8; KEY_LEN], send_id: u32, recv_id: u32, peer: Option<u32>) -> Self {
        let unbound = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &key)
            .expect("a 32-byte key is a ChaCha20-Poly1305 key");
        key.zeroize();
        AeadKey {
            key: ring::aead::LessSafeKey::new(unbound),
            send_id,
            recv_id,
            peer,
            counter: AtomicU64::new(0),
            window: Mutex::new(ReplayWindow::default()),
        }
    }

    /// A key set as it is (`secret_set`): it seals and opens under one id, derived from the
    /// key so that both ends agree without saying it.
    pub fn from_secret(key: [u8; KEY_LEN]) -> Self {
        let id = key_id(&key, b"sluice key id");
        AeadKey::new(key, id, id, None)
    }

    /// A copy with its own counter and window (as they are now), for a datapath that must
    /// not share them (a test running two backends side by side).
    pub fn detached(&self) -> AeadKey {
        AeadKey {
            key: self.key.clone(),
            send_id: self.send_id,
            recv_id: self.recv_id,
            peer: self.peer,
            counter: AtomicU64::new(self.counter.load(Ordering::Relaxed)),
            window: Mutex::new(
                self.window
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            ),
        }
    }

    /// The next counter: above every one used before, and at least `now_ns`, so that a
    /// switch restarted with the same key (whose counters start over) never reuses one as
    /// long as its clock does not go back and it seals fewer than 10^9 packets a second.
    pub fn next_counter(&self, now_ns: u64) -> u64 {
        let mut cur = self.counter.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_add(1).max(now_ns);
            match self.counter.compare_exchange_weak(
                cur,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => cur = seen,
            }
        }
    }
}

/// The 96-bit nonce: the key id then the counter, in network order (the tunnel header's
/// first 12 bytes).
fn nonce(key_id: u32, counter: u64) -> ring::aead::Nonce {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&key_id.to_be_bytes());
    n[4..].copy_from_slice(&counter.to_be_bytes());
    ring::aead::Nonce::assume_unique_for_key(n)
}

/// Where a sealed packet's parts lie in its buffer: the tunnel header from `header` (key id,
/// counter, then the AAD up to `region`), the encrypted region from `region` to `len` (for
/// a packet to open, the tag is its last `TAG_LEN` bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub header: usize,
    pub region: usize,
    pub len: usize,
}

/// Seals `packet[region..]` in place under the key's next counter and appends the tag:
/// `packet` must have `TAG_LEN` bytes of room after `len`. `header` is where the tunnel
/// header starts (`region - header` bytes: key id, counter, then the AAD); the key id and the
/// counter are written into it. Returns the new length.
pub fn seal(
    key: &AeadKey,
    packet: &mut [u8],
    at: Sealed,
    now_ns: u64,
) -> Result<usize, CryptoError> {
    let Sealed {
        header,
        region,
        len,
    } = at;
    if header + NONCE_HEADER_LEN > region || region > len || len + TAG_LEN > packet.len() {
        return Err(CryptoError::Truncated);
    }
    let counter = key.next_counter(now_ns);
    packet[header..header + 4].copy_from_slice(&key.send_id.to_be_bytes());
    packet[header + 4..header + 12].copy_from_slice(&counter.to_be_bytes());
    let (head, rest) = packet.split_at_mut(region);
    let aad = ring::aead::Aad::from(&head[header + NONCE_HEADER_LEN..]);
    let tag = key
        .key
        .seal_in_place_separate_tag(nonce(key.send_id, counter), aad, &mut rest[..len - region])
        .map_err(|_| CryptoError::Truncated)?;
    packet[len..len + TAG_LEN].copy_from_slice(tag.as_ref());
    // A later pass's wide loads past the new end read zeros, as after a load.
    let slack_end = (len + TAG_LEN + crate::packet::SLACK).min(packet.len());
    packet[len + TAG_LEN..slack_end].fill(0);
    Ok(len + TAG_LEN)
}

/// Seals with the key of `keys` for `peer` (see [`Keyring::for_peer`]).
pub fn seal_for(
    keys: Option<&Keyring>,
    peer: u32,
    packet: &mut [u8],
    at: Sealed,
    now_ns: u64,
) -> Result<usize, CryptoError> {
    let key = keys
        .and_then(|k| k.for_peer(peer))
        .ok_or(CryptoError::NoKey)?;
    seal(key, packet, at, now_ns)
}

/// The largest tunnel header `seal` and `open` take (nonce and AAD), in bytes.
pub const MAX_HEADER_LEN: usize = sluice_defs::secret::MAX_TUNNEL_HEADER_BYTES;

/// Nanoseconds since 1970 of a timestamp, as counters count (saturating past 2554).
pub fn time_ns(sec: u64, nsec: u32) -> u64 {
    sec.saturating_mul(1_000_000_000)
        .saturating_add(u64::from(nsec))
}

/// Opens `packet[region..len]` in place (the last `TAG_LEN` bytes are the tag) with `aad`
/// (the tunnel header's bytes after the key id and counter): checks the tag under the key
/// `key_id` names, then the counter against the window and the packet's arrival time, then
/// takes the counter. Returns the new length (the tag removed). The window does not change
/// unless the packet opens.
pub fn open(
    keys: &Keyring,
    packet: &mut [u8],
    region: usize,
    len: usize,
    aad: &[u8],
    (key_id, counter): (u32, u64),
    now_ns: u64,
) -> Result<usize, CryptoError> {
    if region + TAG_LEN > len || len > packet.len() {
        return Err(CryptoError::BadTag);
    }
    let key = keys.by_recv_id(key_id).ok_or(CryptoError::BadTag)?;
    let old = counter < now_ns.saturating_sub(MAX_AGE_NS);
    // A cheap refusal of replays before the work of checking the tag.
    if old
        || !key
            .window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(counter)
    {
        return Err(CryptoError::Replay);
    }
    let body_end = len - TAG_LEN;
    let tag = ring::aead::Tag::try_from(&packet[body_end..len]).map_err(|_| CryptoError::BadTag)?;
    // On a bad tag the bytes are left garbled; the packet is dropped.
    key.key
        .open_in_place_separate_tag(
            nonce(key_id, counter),
            ring::aead::Aad::from(aad),
            tag,
            &mut packet[region..body_end],
            0..,
        )
        .map_err(|_| CryptoError::BadTag)?;
    // Checked again under the lock: another worker may have taken it meanwhile.
    if !key
        .window
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take(counter)
    {
        return Err(CryptoError::Replay);
    }
    Ok(body_end)
}

/// The keys of one 256-bit secret. Cloning shares the keys' counters and windows.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: Vec<Arc<AeadKey>>,
}

impl Keyring {
    /// Adds a key, replacing the one for the same peer (or the default). The same key again
    /// (same ids and peer: the ids are derived from the key) keeps its counter and window, so
    /// that loading an entries file twice does not open the window to replays.
    pub fn insert(&mut self, key: Arc<AeadKey>) {
        let same = |k: &Arc<AeadKey>| {
            k.peer == key.peer && k.send_id == key.send_id && k.recv_id == key.recv_id
        };
        if self.keys.iter().any(same) {
            return;
        }
        self.keys.retain(|k| k.peer != key.peer);
        self.keys.push(key);
    }

    /// The key that seals for `peer`: its own, else the default.
    pub fn for_peer(&self, peer: u32) -> Option<&Arc<AeadKey>> {
        self.keys
            .iter()
            .find(|k| k.peer == Some(peer))
            .or_else(|| self.keys.iter().find(|k| k.peer.is_none()))
    }

    /// The key that opens packets sealed under `id`.
    pub fn by_recv_id(&self, id: u32) -> Option<&Arc<AeadKey>> {
        self.keys.iter().find(|k| k.recv_id == id)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A copy whose keys have counters and windows of their own (see [`AeadKey::detached`]).
    pub fn detached(&self) -> Keyring {
        Keyring {
            keys: self.keys.iter().map(|k| Arc::new(k.detached())).collect(),
        }
    }
}

/// HKDF-SHA256 (RFC 5869): extract with `salt`, expand with `info` into `out` (at most 255
/// blocks).
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
    struct Len(usize);
    impl ring::hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(ikm);
    prk.expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .expect("an output of at most 255 * 32 bytes");
}

/// A 31-bit key id from key material (the top bit says the direction, see [`derive`]).
fn key_id(ikm: &[u8], info: &[u8]) -> u32 {
    let mut id = [0u8; 4];
    hkdf_sha256(b"sluice key id", ikm, &[info], &mut id);
    u32::from_be_bytes(id) & 0x7fff_ffff
}

/// An X25519 private key as `sluice keygen` writes it.
pub struct PrivateKey(x25519_dalek::StaticSecret);

impl PrivateKey {
    /// A new key from the operating system's random numbers.
    pub fn generate() -> Result<PrivateKey, ring::error::Unspecified> {
        let mut bytes = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)?;
        let key = PrivateKey::from_bytes(bytes);
        bytes.zeroize();
        Ok(key)
    }

    /// A key from its 32 bytes (clamped as RFC 7748 says when used).
    pub fn from_bytes(bytes: [u8; 32]) -> PrivateKey {
        PrivateKey(x25519_dalek::StaticSecret::from(bytes))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key: X25519(key, 9).
    pub fn public(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.0).to_bytes()
    }
}

/// Why two keys give no link key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeriveError {
    /// The peer's key is a point of small order: the shared secret is all zeros (RFC 7748 §6.1
    /// says to check), which an attacker could predict.
    #[error("the peer's public key is not usable (it gives an all-zero shared secret)")]
    LowOrderPeer,
    #[error("the peer's public key is this switch's own")]
    OwnKey,
}

/// The link key between this end (`private`) and a peer (`peer_public`): HKDF-SHA256 of their
/// X25519 shared secret, with both public keys in a fixed order (the smaller first) in the
/// info string, so that both ends derive the same key. Each end seals under its own key id:
/// the same 31 bits, the top bit set for the end whose public key is the larger, so that the
/// two directions never share a nonce.
pub fn derive(
    private: &PrivateKey,
    peer_public: &[u8; 32],
    peer: Option<u32>,
) -> Result<AeadKey, DeriveError> {
    let mine = private.public();
    if &mine == peer_public {
        return Err(DeriveError::OwnKey);
    }
    let shared = private
        .0
        .diffie_hellman(&x25519_dalek::PublicKey::from(*peer_public));
    if !shared.was_contributory() {
        return Err(DeriveError::LowOrderPeer);
    }
    let (lo, hi) = if mine < *peer_public {
        (&mine, peer_public)
    } else {
        (peer_public, &mine)
    };
    let mut key = [0u8; KEY_LEN];
    hkdf_sha256(
        b"sluice link key",
        shared.as_bytes(),
        &[b"sluice link key v1", lo, hi],
        &mut key,
    );
    let mut id_info = b"sluice link id v1".to_vec();
    id_info.extend_from_slice(lo);
    id_info.extend_from_slice(hi);
    let id = key_id(shared.as_bytes(), &id_info);
    let high = |p: &[u8; 32]| if p == hi { 1u32 << 31 } else { 0 };
    Ok(AeadKey::new(
        key,
        id | high(&mine),
        id | high(peer_public),
        peer,
    ))
}

#[cfg(test)]
mod tests;

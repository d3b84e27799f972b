//! The RFC test vectors through the functions the datapath calls, and the same operations
//! checked against independent implementations (RustCrypto's chacha20poly1305 and hkdf).

use super::*;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn at(region: usize, len: usize) -> Sealed {
    Sealed {
        header: 0,
        region,
        len,
    }
}

/// Opens a packet laid out by `packet`, its AAD taken from it.
fn open_at(
    keys: &Keyring,
    p: &mut [u8],
    region: usize,
    len: usize,
    nonce: (u32, u64),
    now: u64,
) -> Result<usize, CryptoError> {
    let aad = p[NONCE_HEADER_LEN..region].to_vec();
    open(keys, p, region, len, &aad, nonce, now)
}

fn key32(s: &str) -> [u8; 32] {
    hex(s).try_into().unwrap()
}

const SUNSCREEN: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you only \
one tip for the future, sunscreen would be it.";

/// A packet laid out as a sealed tunnel's: the 12-byte nonce header, the AAD, the body, and
/// room for the tag.
fn packet(aad: &[u8], body: &[u8]) -> (Vec<u8>, usize, usize) {
    let mut p = vec![0u8; NONCE_HEADER_LEN];
    p.extend_from_slice(aad);
    let region = p.len();
    p.extend_from_slice(body);
    let len = p.len();
    p.extend_from_slice(&[0; TAG_LEN]);
    (p, region, len)
}

/// RFC 8439 §2.8.2: key 80..9f, nonce 07000000 || 4041424344454647, the AAD, the sunscreen
/// text. The counter is the second half of the nonce, so sealing at that time gives it.
#[test]
fn rfc8439_aead_vector_seals_to_its_ciphertext_and_tag() {
    let key = AeadKey::new(
        key32("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"),
        0x0700_0000,
        0x0700_0000,
        None,
    );
    let (mut p, region, len) = packet(&hex("50515253c0c1c2c3c4c5c6c7"), SUNSCREEN);
    let n = seal(&key, &mut p, at(region, len), 0x4041_4243_4445_4647).unwrap();
    assert_eq!(n, len + TAG_LEN);
    assert_eq!(&p[..12], &hex("07000000 4041424344454647")[..]);
    assert_eq!(
        &p[region..len],
        &hex(
            "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
             3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
             92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
             3ff4def08e4b7a9de576d26586cec64b6116"
        )[..]
    );
    assert_eq!(&p[len..n], &hex("1ae10b594f09e26a7e902ecbd0600691")[..]);

    // And it opens back, once.
    let mut ring = Keyring::default();
    ring.insert(Arc::new(key));
    let now = 0x4041_4243_4445_4647;
    let m = open_at(&ring, &mut p, region, n, (0x0700_0000, now), now).unwrap();
    assert_eq!(&p[region..m], SUNSCREEN);
}

/// RFC 8439 Appendix A.5: the decryption vector.
#[test]
fn rfc8439_decryption_vector_opens() {
    let key = AeadKey::new(
        key32("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0"),
        0,
        0,
        None,
    );
    let mut ring = Keyring::default();
    ring.insert(Arc::new(key));
    let ct = hex(
        "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2
         4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf
         332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855
         9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4
         b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e
         af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a
         0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10
         49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29
         a6ad5cb4022b02709b",
    );
    let (mut p, region, _) = packet(&hex("f33388860000000000004e91"), &ct);
    let len = region + ct.len();
    p[len..len + TAG_LEN].copy_from_slice(&hex("eead9d67890cbb22392336fea1851f38"));
    let counter = 0x0102_0304_0506_0708;
    let m = open_at(&ring, &mut p, region, len + TAG_LEN, (0, counter), counter).unwrap();
    assert!(p[region..m].starts_with(b"Internet-Drafts are draft documents valid for a maximum"));
    assert_eq!(m - region, 265);
}

/// Against RustCrypto's implementation, on lengths from empty to over a kilobyte.
#[test]
fn sealing_agrees_with_an_independent_implementation() {
    let k = key32("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    let other = chacha20poly1305::ChaCha20Poly1305::new(&k.into());
    let key = AeadKey::new(k, 0x1234_5678, 0x1234_5678, None);
    for len in [0usize, 1, 15, 16, 17, 63, 64, 65, 255, 1400, 1500] {
        let body: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let aad = [0xaa, 0xbb, 0xcc];
        let (mut p, region, end) = packet(&aad, &body);
        let now = 1_700_000_000_000_000_000 + len as u64;
        let n = seal(&key, &mut p, at(region, end), now).unwrap();
        let counter = u64::from_be_bytes(p[4..12].try_into().unwrap());
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&p[..12]);
        let want = other
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: &body,
                    aad: &aad,
                },
            )
            .unwrap();
        assert_eq!(&p[region..n], &want[..], "length {len}");
        assert_eq!(counter, now);
    }
}

/// RFC 5869 test cases 1 and 3 (SHA-256), and one checked against RustCrypto's hkdf.
#[test]
fn hkdf_gives_the_rfc5869_vectors() {
    let mut okm = [0u8; 42];
    hkdf_sha256(
        &hex("000102030405060708090a0b0c"),
        &[0x0b; 22],
        &[&hex("f0f1f2f3f4f5f6f7f8f9")],
        &mut okm,
    );
    assert_eq!(
        okm.to_vec(),
        hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    );
    hkdf_sha256(&[], &[0x0b; 22], &[], &mut okm);
    assert_eq!(
        okm.to_vec(),
        hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    );
    // The info given in pieces is their concatenation.
    let mut a = [0u8; 32];
    hkdf_sha256(b"salt", b"ikm", &[b"one", b"two"], &mut a);
    let mut b = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(b"salt"), b"ikm")
        .expand(b"onetwo", &mut b)
        .unwrap();
    assert_eq!(a, b);
}

const ALICE: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const ALICE_PUB: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const BOB: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const BOB_PUB: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const SHARED: &str = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

/// RFC 7748 §6.1: Alice's and Bob's public keys, and the link key both derive being HKDF of
/// the shared secret the RFC gives (checked by opening with that key independently).
#[test]
fn rfc7748_keys_derive_the_same_link_key_at_both_ends() {
    let alice = PrivateKey::from_bytes(key32(ALICE));
    let bob = PrivateKey::from_bytes(key32(BOB));
    assert_eq!(alice.public(), key32(ALICE_PUB));
    assert_eq!(bob.public(), key32(BOB_PUB));
    let a = derive(&alice, &bob.public(), None).unwrap();
    let b = derive(&bob, &alice.public(), None).unwrap();
    // Each end seals under the id the other opens, and the two directions differ.
    assert_eq!(a.send_id, b.recv_id);
    assert_eq!(b.send_id, a.recv_id);
    assert_ne!(a.send_id, b.send_id);
    assert_eq!(a.send_id & 0x7fff_ffff, b.send_id & 0x7fff_ffff);

    // The key: HKDF-SHA256(salt "sluice link key", IKM the shared secret, info
    // "sluice link key v1" || the smaller public key || the larger).
    let (lo, hi) = if key32(ALICE_PUB) < key32(BOB_PUB) {
        (ALICE_PUB, BOB_PUB)
    } else {
        (BOB_PUB, ALICE_PUB)
    };
    let mut info = b"sluice link key v1".to_vec();
    info.extend(hex(lo));
    info.extend(hex(hi));
    let mut want = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(b"sluice link key"), &hex(SHARED))
        .expand(&info, &mut want)
        .unwrap();
    let (mut p, region, len) = packet(&[], b"through the tunnel");
    let n = seal(&a, &mut p, at(region, len), 5).unwrap();
    let nonce: [u8; 12] = p[..12].try_into().unwrap();
    let plain = chacha20poly1305::ChaCha20Poly1305::new(&want.into())
        .decrypt(&nonce.into(), &p[region..n])
        .unwrap();
    assert_eq!(plain, b"through the tunnel");

    // Bob opens what Alice sealed.
    let mut ring = Keyring::default();
    ring.insert(Arc::new(b));
    let id = u32::from_be_bytes(p[..4].try_into().unwrap());
    let m = open_at(&ring, &mut p, region, n, (id, 5), 5).unwrap();
    assert_eq!(&p[region..m], b"through the tunnel");
}

#[test]
fn unusable_peer_keys_are_refused() {
    let alice = PrivateKey::from_bytes(key32(ALICE));
    // The identity point gives an all-zero shared secret.
    assert_eq!(
        derive(&alice, &[0; 32], None).unwrap_err(),
        DeriveError::LowOrderPeer
    );
    assert_eq!(
        derive(&alice, &alice.public(), None).unwrap_err(),
        DeriveError::OwnKey
    );
}

/// A sealed packet and the keyring that opens it.
fn sealed(now: u64) -> (Keyring, Vec<u8>, usize, usize) {
    let (a, b) = pair();
    let (mut p, region, len) = packet(&[], b"payload bytes");
    let n = seal(&a, &mut p, at(region, len), now).unwrap();
    let mut ring = Keyring::default();
    ring.insert(Arc::new(b));
    (ring, p, region, n)
}

fn pair() -> (AeadKey, AeadKey) {
    let alice = PrivateKey::from_bytes(key32(ALICE));
    let bob = PrivateKey::from_bytes(key32(BOB));
    (
        derive(&alice, &bob.public(), None).unwrap(),
        derive(&bob, &alice.public(), None).unwrap(),
    )
}

fn header_of(p: &[u8]) -> (u32, u64) {
    (
        u32::from_be_bytes(p[..4].try_into().unwrap()),
        u64::from_be_bytes(p[4..12].try_into().unwrap()),
    )
}

#[test]
fn any_changed_byte_is_a_bad_tag_and_changes_nothing() {
    let (ring, p, region, n) = sealed(1000);
    let (id, counter) = header_of(&p);
    for i in 0..n {
        let mut q = p.clone();
        q[i] ^= 0x01;
        let (qid, qc) = header_of(&q);
        let r = open_at(&ring, &mut q, region, n, (qid, qc), 1000);
        assert_eq!(r, Err(CryptoError::BadTag), "byte {i}");
    }
    // None of those took the counter: the real packet still opens.
    let mut q = p.clone();
    assert!(open_at(&ring, &mut q, region, n, (id, counter), 1000).is_ok());
}

#[test]
fn replays_and_packets_older_than_the_window_are_refused() {
    let (a, b) = pair();
    let mut ring = Keyring::default();
    ring.insert(Arc::new(b));
    // 1,100 packets sealed in order.
    let packets: Vec<(Vec<u8>, usize, usize)> = (0..1100)
        .map(|_| {
            let (mut p, region, len) = packet(&[], b"x");
            let n = seal(&a, &mut p, at(region, len), 0).unwrap();
            (p, region, n)
        })
        .collect();
    let try_open = |i: usize| {
        let (mut p, region, n) = packets[i].clone();
        let (id, c) = header_of(&p);
        open_at(&ring, &mut p, region, n, (id, c), 0)
    };
    // Out of order inside the window: accepted.
    assert!(try_open(1).is_ok());
    assert!(try_open(0).is_ok());
    // Again: a replay.
    assert_eq!(try_open(1), Err(CryptoError::Replay));
    for i in 2..1100 {
        assert!(try_open(i).is_ok(), "{i}");
    }
    // 1,024 packets later, packet 50 is too old even though it was never seen... it was;
    // a fresh keyring shows the window's edge.
    let mut fresh = Keyring::default();
    let (_, b2) = pair();
    fresh.insert(Arc::new(b2));
    let open_fresh = |i: usize| {
        let (mut p, region, n) = packets[i].clone();
        let (id, c) = header_of(&p);
        open_at(&fresh, &mut p, region, n, (id, c), 0)
    };
    for i in 50..1100 {
        assert!(open_fresh(i).is_ok(), "{i}");
    }
    // The window holds the latest 1,024 (76..1099): 60 and 75 are too old, never seen.
    assert_eq!(open_fresh(60), Err(CryptoError::Replay));
    assert_eq!(open_fresh(75), Err(CryptoError::Replay));
}

#[test]
fn counters_follow_the_clock_and_never_repeat() {
    let (a, _) = pair();
    assert_eq!(a.next_counter(100), 100);
    assert_eq!(a.next_counter(100), 101);
    assert_eq!(a.next_counter(50), 102);
    assert_eq!(a.next_counter(1000), 1000);
}

#[test]
fn packets_far_older_than_their_arrival_are_refused() {
    let (ring, p, region, n) = sealed(1_000);
    let (id, c) = header_of(&p);
    let late = 1_000 + MAX_AGE_NS + 1;
    let mut q = p.clone();
    assert_eq!(
        open_at(&ring, &mut q, region, n, (id, c), late),
        Err(CryptoError::Replay)
    );
    let mut q = p.clone();
    assert!(open_at(&ring, &mut q, region, n, (id, c), late - 1).is_ok());
}

#[test]
fn keys_are_chosen_by_peer_for_sealing_and_by_id_for_opening() {
    let alice = PrivateKey::from_bytes(key32(ALICE));
    let bob = PrivateKey::from_bytes(key32(BOB));
    let carol = PrivateKey::from_bytes([7; 32]);
    let mut ring = Keyring::default();
    ring.insert(Arc::new(
        derive(&alice, &bob.public(), Some(0x0a00_0002)).unwrap(),
    ));
    ring.insert(Arc::new(derive(&alice, &carol.public(), None).unwrap()));
    let to_bob = ring.for_peer(0x0a00_0002).unwrap();
    let other = ring.for_peer(0x0a00_0003).unwrap();
    assert_eq!(to_bob.peer, Some(0x0a00_0002));
    assert_eq!(other.peer, None);
    assert!(ring.by_recv_id(to_bob.recv_id).is_some());
    // The same key again keeps its state; another key for the same peer replaces it.
    let c = to_bob.next_counter(10);
    ring.insert(Arc::new(
        derive(&alice, &bob.public(), Some(0x0a00_0002)).unwrap(),
    ));
    assert_eq!(ring.for_peer(0x0a00_0002).unwrap().next_counter(0), c + 1);
    ring.insert(Arc::new(
        derive(&alice, &carol.public(), Some(0x0a00_0002)).unwrap(),
    ));
    assert_eq!(ring.len(), 2);
    assert_eq!(ring.for_peer(0x0a00_0002).unwrap().next_counter(0), 1);
}

#[test]
fn debug_output_never_shows_a_key() {
    let k = AeadKey::from_secret([0xab; 32]);
    let text = format!("{k:?}");
    assert!(!text.contains("ab, ab") && !text.contains("abab"), "{text}");
}

//! The AEAD of sealed tunnels alone: `crypto::seal` and `crypto::open` on 1,400-byte packets
//! (docs/performance.md compares the figures with `openssl speed -evp chacha20-poly1305`).
//!     cargo bench -p sluice-runtime --bench aead

use sluice_runtime::crypto::{self, AeadKey, Keyring, Sealed, NONCE_HEADER_LEN, TAG_LEN};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BODY: usize = 1400;

fn main() {
    let key = [7u8; 32];
    let at = Sealed {
        header: 0,
        region: NONCE_HEADER_LEN,
        len: NONCE_HEADER_LEN + BODY,
    };
    // Packets sealed one after the other, to be opened once each (a second time would be a
    // replay, refused before any work).
    let n = 20_000;
    let sealer = AeadKey::from_secret(key);
    let sealed: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut p = vec![(i % 251) as u8; NONCE_HEADER_LEN + BODY + TAG_LEN + 16];
            crypto::seal(&sealer, &mut p, at, 0).unwrap();
            p
        })
        .collect();
    let budget = Duration::from_secs(2);

    // Sealing: one buffer, sealed again and again (each time under a new counter).
    let mut buf = vec![0u8; NONCE_HEADER_LEN + BODY + TAG_LEN + 16];
    let (mut done, t0) = (0u64, Instant::now());
    while t0.elapsed() < budget {
        for _ in 0..1000 {
            std::hint::black_box(crypto::seal(&sealer, &mut buf, at, 0).unwrap());
        }
        done += 1000;
    }
    report("seal", done, t0.elapsed());

    // Opening: every packet once per pass, a fresh receiver (an empty window) per pass; the
    // copy of each packet is made outside the timing.
    let (mut done, mut spent) = (0u64, Duration::ZERO);
    let mut copies = sealed.clone();
    while spent < budget {
        let mut ring = Keyring::default();
        ring.insert(Arc::new(AeadKey::from_secret(key)));
        for (c, s) in copies.iter_mut().zip(&sealed) {
            c.copy_from_slice(s);
        }
        let t0 = Instant::now();
        for c in copies.iter_mut() {
            let id = u32::from_be_bytes(c[..4].try_into().unwrap());
            let counter = u64::from_be_bytes(c[4..12].try_into().unwrap());
            let len = NONCE_HEADER_LEN + BODY + TAG_LEN;
            let r = crypto::open(&ring, c, NONCE_HEADER_LEN, len, &[], (id, counter), 0);
            std::hint::black_box(r.unwrap());
        }
        spent += t0.elapsed();
        done += n as u64;
    }
    report("open", done, spent);
}

fn report(what: &str, packets: u64, time: Duration) {
    let s = time.as_secs_f64();
    println!(
        "{what}: {:.0} ns per 1,400-byte packet, {:.0} MB/s ({:.2} Gbit/s)",
        s * 1e9 / packets as f64,
        packets as f64 * BODY as f64 / s / 1e6,
        packets as f64 * BODY as f64 * 8.0 / s / 1e9
    );
}

//! Reading the real captures in tests/captures, writing and re-reading
//! pcap files, and failing cleanly on truncated or corrupted input.

use std::fs;
use std::path::{Path, PathBuf};

use sluice_runtime::pcap::{parse_capture, read_capture, Capture, PcapError, PcapOut, Record};

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/captures/");

fn fixture(name: &str) -> PathBuf {
    Path::new(CAPTURES).join(name)
}

fn read(name: &str) -> Capture {
    read_capture(&fixture(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn tmp(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[test]
fn record_counts_and_link_types_match_the_readme() {
    let expected: [(&str, usize, u32, bool); 14] = [
        ("eth-http-le-usec.pcap", 10, 1, false),
        ("eth-dns-le-usec.pcap", 10, 1, false),
        ("eth-pptp-gre-be-usec.pcap", 23, 1, false),
        ("eth-http-lo-be-nsec.pcap", 10, 1, true),
        ("sll-tcp-handshake-le-nsec.pcap", 3, 113, true),
        ("eth-http-snaplen96.pcap", 12, 1, false),
        ("eth-ipv4-options.pcap", 7, 1, false),
        ("eth-ipv4-fragments-nfs.pcap", 53, 1, false),
        ("eth-gre-ipv4.pcap", 40, 1, false),
        ("eth-ipip-4in4.pcap", 1, 1, false),
        ("eth-lan-arp-ipv6-igmp.pcap", 81, 1, false),
        ("pcapng-2if-nsec-usec.pcapng", 6, 1, true),
        ("pcapng-11if-eth-null-rawip.pcapng", 64, 1, false),
        ("rawip-linktype101.pcap", 100, 101, false),
    ];
    for (name, count, linktype, nanos) in expected {
        let cap = read(name);
        assert_eq!(cap.records.len(), count, "{name}");
        assert_eq!(cap.nanos, nanos, "{name}");
        assert_eq!(cap.records[0].linktype, linktype, "{name}");
        for r in &cap.records {
            assert!(r.orig_len as usize >= r.data.len(), "{name}");
        }
    }
}

#[test]
fn pcapng_records_take_their_interface_link_type() {
    let cap = read("pcapng-11if-eth-null-rawip.pcapng");
    // Records 3 and 4 are on interface 10 (lo0, NULL); the rest on en0.
    let null: Vec<usize> = (0..cap.records.len())
        .filter(|&i| cap.records[i].linktype == 0)
        .collect();
    assert_eq!(null, [2, 3]);
    assert!(cap
        .records
        .iter()
        .enumerate()
        .all(|(i, r)| null.contains(&i) || r.linktype == 1));
    // NULL/BSD loopback: a 4-byte host-order family (2 = AF_INET), then IPv4.
    let lo = &cap.records[2];
    assert_eq!((lo.data.len(), lo.orig_len), (168, 168));
    assert_eq!(&lo.data[..5], &[2, 0, 0, 0, 0x45]);
    assert_eq!((lo.ts_sec, lo.ts_nsec), (1_439_753_725, 701_568_000));
    let first = &cap.records[0];
    assert_eq!((first.ts_sec, first.ts_nsec), (1_439_753_725, 701_607_000));
}

/// The first EPB of each interface, decoded by hand from the bytes:
/// interface 0 (if_tsresol 9) has raw 0x18880036_e43c99fd ns, interface 1
/// (if_tsresol 6) has raw 0x000647ae_37406259 µs. pcap-file alone would
/// read the second as nanoseconds (1970-01-21).
#[test]
fn pcapng_timestamps_follow_each_interface_resolution() {
    let cap = read("pcapng-2if-nsec-usec.pcapng");
    let ts: Vec<(u64, u32)> = cap.records.iter().map(|r| (r.ts_sec, r.ts_nsec)).collect();
    assert_eq!(
        ts,
        [
            (1_767_663_089, 500_330_493),
            (1_767_663_089, 514_291_940),
            (1_767_663_437, 111_897_000),
            (1_767_663_437, 126_460_000),
            (1_767_663_437, 128_303_000),
            (1_767_663_437, 140_942_000),
        ]
    );
    let lens: Vec<usize> = cap.records.iter().map(|r| r.data.len()).collect();
    assert_eq!(lens, [96, 214, 70, 166, 70, 182]);
}

/// First record headers, read with xxd: the big-endian file has ts_sec
/// 0x69488b46 and ts_nsec 0x09fe183b; the little-endian SLL one has
/// 0x54872e59 and 0x371ad590.
#[test]
fn nanosecond_files_keep_nanoseconds() {
    let be = read("eth-http-lo-be-nsec.pcap");
    let r = &be.records[0];
    assert_eq!((r.ts_sec, r.ts_nsec), (1_766_361_926, 167_647_291));
    assert_eq!((r.data.len(), r.orig_len), (74, 74));
    let sll = read("sll-tcp-handshake-le-nsec.pcap");
    let r = &sll.records[0];
    assert_eq!((r.ts_sec, r.ts_nsec), (1_418_145_369, 924_505_488));
    assert_eq!((r.data.len(), r.linktype), (76, 113));
}

#[test]
fn microsecond_files_scale_to_nanoseconds() {
    for name in ["eth-http-le-usec.pcap", "eth-pptp-gre-be-usec.pcap"] {
        let cap = read(name);
        assert!(cap.records.iter().all(|r| r.ts_nsec % 1000 == 0), "{name}");
        assert!(cap.records.iter().all(|r| r.ts_sec > 900_000_000), "{name}");
    }
}

#[test]
fn snaplen_cut_records_keep_their_original_length() {
    let cap = read("eth-http-snaplen96.pcap");
    let cut: Vec<(usize, u32)> = cap
        .records
        .iter()
        .filter(|r| r.data.len() < r.orig_len as usize)
        .map(|r| (r.data.len(), r.orig_len))
        .collect();
    assert_eq!(cut, [(96, 562), (96, 1514), (96, 349)]);
}

fn round_trip(nanos: bool) {
    let src = read("sll-tcp-handshake-le-nsec.pcap");
    let path = tmp(&format!("round-trip-{nanos}.pcap"));
    let mut out = PcapOut::create(&path, 113, nanos).unwrap();
    for r in &src.records {
        out.write(r.ts_sec, r.ts_nsec, r.orig_len, &r.data).unwrap();
    }
    // Longer than the snaplen: cut to 262144 bytes, orig_len kept.
    let big = vec![0xab; 300_000];
    out.write(7, 999_999_999, 300_000, &big).unwrap();
    out.finish().unwrap();

    let bytes = fs::read(&path).unwrap();
    let magic = if nanos { 0xa1b2_3c4d_u32 } else { 0xa1b2_c3d4 };
    assert_eq!(bytes[..4], magic.to_le_bytes());
    assert_eq!(bytes[16..20], 262_144u32.to_le_bytes());
    assert_eq!(bytes[20..24], 113u32.to_le_bytes());

    let back = read_capture(&path).unwrap();
    assert_eq!(back.nanos, nanos);
    let mut want: Vec<Record> = src.records.clone();
    want.push(Record {
        ts_sec: 7,
        ts_nsec: 999_999_999,
        linktype: 113,
        orig_len: 300_000,
        data: big[..262_144].to_vec(),
    });
    if !nanos {
        for r in &mut want {
            r.ts_nsec = r.ts_nsec / 1000 * 1000;
        }
    }
    assert_eq!(back.records, want);
}

#[test]
fn write_then_read_round_trips_in_both_precisions() {
    round_trip(true);
    round_trip(false);
}

#[test]
fn writing_an_impossible_timestamp_is_an_error() {
    let path = tmp("bad-ts.pcap");
    let mut out = PcapOut::create(&path, 1, false).unwrap();
    out.write(1, 0, 1, &[0]).unwrap();
    let err = out.write(1 << 32, 0, 1, &[0]).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "cannot write record 2: timestamp 4294967296 s does not fit classic pcap's 32 bits"
        ),
        "{err}"
    );
    let err = out
        .write(1, 1_000_000_000, 1, &[0])
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("record 2: 1000000000 ns is not below one second"),
        "{err}"
    );
    out.finish().unwrap();
    assert_eq!(read_capture(&path).unwrap().records.len(), 1);
}

#[test]
fn truncated_files_name_where_they_end() {
    let name = "eth-http-le-usec.pcap";
    let bytes = fs::read(fixture(name)).unwrap();
    let full = read(name);
    let first = 24 + 16 + full.records[0].data.len();
    let second = 16 + full.records[1].data.len();
    let path = Path::new(name);

    // Inside the data of record 2.
    let err = parse_capture(&bytes[..first + 16 + 5], path).unwrap_err();
    assert!(
        matches!(err, PcapError::Truncated { ref what, offset, needed, available, .. }
            if what == "record 2" && offset == first as u64
               && needed == second as u64 && available == 21),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "eth-http-le-usec.pcap: truncated: record 2 at byte offset {first} needs {second} \
             bytes, but only 21 remain"
        )
    );
    // Inside the header of record 2, and inside the file header.
    let err = parse_capture(&bytes[..first + 7], path).unwrap_err();
    assert!(
        matches!(
            err,
            PcapError::Truncated {
                needed: 16,
                available: 7,
                ..
            }
        ),
        "{err:?}"
    );
    let err = parse_capture(&bytes[..10], path).unwrap_err();
    assert!(
        err.to_string()
            .contains("file header at byte offset 0 needs 24 bytes"),
        "{err}"
    );
    let err = parse_capture(&[], path).unwrap_err();
    assert!(
        err.to_string().contains("needs 4 bytes, but only 0 remain"),
        "{err}"
    );

    // A pcapng cut inside its third packet block.
    let ng = fs::read(fixture("pcapng-2if-nsec-usec.pcapng")).unwrap();
    let err = parse_capture(&ng[..0x2d4 + 40], Path::new("x.pcapng")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.pcapng: truncated: block 6 at byte offset 724 needs 104 bytes, but only 40 remain"
    );
}

#[test]
fn other_files_are_rejected_with_their_magic() {
    let err = parse_capture(b"GIF89a......................", Path::new("a.gif")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a.gif: not a pcap or pcapng file (it starts with 47 49 46 38)"
    );
    let err = read_capture(Path::new("/nonexistent/x.pcap")).unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/x.pcap: "),
        "{err}"
    );
}

#[test]
fn bad_interface_and_timestamp_fields_are_errors() {
    // Record 3 of the 2-interface file says interface 1; make it 7.
    let mut ng = fs::read(fixture("pcapng-2if-nsec-usec.pcapng")).unwrap();
    ng[0x2d4 + 8] = 7;
    let err = parse_capture(&ng, Path::new("x.pcapng")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.pcapng: record 3 (block 6) at byte offset 724: interface 7 is not described \
         (the section has 2)"
    );
    // A microsecond field of 1,000,000 in record 1 of a µs file.
    let mut pcap = fs::read(fixture("eth-http-le-usec.pcap")).unwrap();
    pcap[28..32].copy_from_slice(&1_000_000u32.to_le_bytes());
    let err = parse_capture(&pcap, Path::new("y.pcap")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "y.pcap: record 1 at byte offset 24: timestamp fraction 1000000 is not below one \
         second in microseconds"
    );
}

#[test]
fn a_corrupt_length_is_refused_before_anything_is_allocated() {
    // Record 2 of a pcap says it holds 2 GiB; the file is a few hundred bytes.
    let mut pcap = fs::read(fixture("eth-http-le-usec.pcap")).unwrap();
    let first = 24 + 16 + read("eth-http-le-usec.pcap").records[0].data.len();
    pcap[first + 8..first + 12].copy_from_slice(&0x8000_0000u32.to_le_bytes());
    let err = parse_capture(&pcap, Path::new("y.pcap")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "y.pcap: record 2 at byte offset {first}: a record of 2147483648 bytes (more than \
             16 MiB)"
        )
    );
    // A pcapng block of 1 GiB (block 4, at 0x15c: the first packet of the 2-interface file).
    let mut ng = fs::read(fixture("pcapng-2if-nsec-usec.pcapng")).unwrap();
    let at = 0x15c;
    assert_eq!(
        ng[at..at + 8],
        [6, 0, 0, 0, 128, 0, 0, 0],
        "an EPB of 128 bytes"
    );
    ng[at + 4..at + 8].copy_from_slice(&(1u32 << 30).to_le_bytes());
    let err = parse_capture(&ng, Path::new("x.pcapng")).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("a block of 1073741824 bytes (more than 16 MiB)"),
        "{err}"
    );
}

/// xorshift64*, to corrupt fixtures deterministically.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn corrupted_and_cut_captures_never_panic() {
    let mut rng = 0x1234_5678_9abc_def1;
    for name in [
        "sll-tcp-handshake-le-nsec.pcap",
        "eth-pptp-gre-be-usec.pcap",
        "pcapng-2if-nsec-usec.pcapng",
        "pcapng-11if-eth-null-rawip.pcapng",
    ] {
        let bytes = fs::read(fixture(name)).unwrap();
        let path = Path::new(name);
        for cut in (0..bytes.len()).step_by(3) {
            let _ = parse_capture(&bytes[..cut], path);
        }
        for _ in 0..400 {
            let mut bad = bytes.clone();
            for _ in 0..1 + next(&mut rng) % 4 {
                let at = (next(&mut rng) % bad.len() as u64) as usize;
                bad[at] = next(&mut rng) as u8;
            }
            let _ = parse_capture(&bad, path);
        }
    }
}

//! Golden runs of the shipped programs: output pcaps compared byte for byte with outputs that
//! were computed independently (programs/tools/), and the summary snapshotted.

use crate::support::*;

fn run_port_dnat(backend: &str) -> (std::path::PathBuf, Output) {
    let dir = temp_dir(&format!("port_dnat-{backend}"));
    let out = run(&[
        "run",
        "programs/port_dnat.sluice",
        "--entries",
        "programs/port_dnat.entries",
        "--in",
        "programs/port_dnat.pcap",
        "--out-dir",
        dir.to_str().unwrap(),
        "--backend",
        backend,
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    (dir, out)
}

#[test]
fn port_dnat_matches_expected_output_on_both_backends() {
    let expected = root().join("programs/port_dnat.expected");
    for backend in ["interp", "jit"] {
        let (dir, out) = run_port_dnat(backend);
        let mut ports: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        ports.sort();
        assert_eq!(
            ports,
            ["port-0.pcap", "port-1.pcap", "port-2.pcap", "port-3.pcap"],
            "{backend}"
        );
        for p in &ports {
            let got = std::fs::read(dir.join(p)).unwrap();
            let want = std::fs::read(expected.join(p)).unwrap();
            assert!(
                got == want,
                "{backend}: {p} differs from programs/port_dnat.expected/{p}"
            );
        }
        insta::assert_snapshot!(format!("port_dnat_summary_{backend}"), out.stdout);
    }
}

#[test]
fn port_dnat_output_checksums_are_valid_and_policy_holds() {
    let (dir, _) = run_port_dnat("jit");
    let input = read_pcap(&root().join("programs/port_dnat.pcap"));
    for port in 0..=3 {
        for (sec, nsec, orig, data) in read_pcap(&dir.join(format!("port-{port}.pcap"))) {
            // Timestamps come from the input, in input order.
            assert!(
                input.iter().any(|r| r.0 == sec && r.1 == nsec),
                "timestamp {sec}.{nsec} not in the input"
            );
            if orig as usize == data.len() {
                check_checksums(&data).unwrap_or_else(|e| panic!("port {port}: {e}"));
            }
            // The header alone, so that a packet cut by its snaplen is checked too.
            let h = etherparse::Ipv4HeaderSlice::from_slice(&data[14..]).unwrap();
            match port {
                0 => assert_eq!(h.source(), [203, 0, 113, 10], "snat rewrites the source"),
                1 => assert_eq!(h.destination(), [10, 0, 0, 1]),
                2 => assert_eq!(h.destination(), [10, 0, 0, 2]),
                _ => assert_eq!(h.destination(), [10, 0, 0, 3]),
            }
        }
    }
}

#[test]
fn trace_shows_parser_path_tables_and_verdict() {
    let dir = temp_dir("port_dnat-trace");
    let out = run(&[
        "run",
        "programs/port_dnat.sluice",
        "--entries",
        "programs/port_dnat.entries",
        "--in",
        "programs/port_dnat.pcap",
        "--out-dir",
        dir.to_str().unwrap(),
        "--trace",
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    insta::assert_snapshot!(out.stdout);
}

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

/// Every program with a `programs/NAME.expected/` directory: its sample capture through both
/// backends gives exactly the expected files (computed by programs/tools/, independently of
/// Sluice), and every emitted packet that can be checked has right checksums and a well-formed
/// tunnel: outer IPv4 checksum right, outer total length = inner total length + outer headers.
#[test]
fn every_program_matches_its_expected_output() {
    let mut names: Vec<String> = std::fs::read_dir(root().join("programs"))
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.strip_suffix(".expected").map(String::from)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    for name in &names {
        let expected = root().join(format!("programs/{name}.expected"));
        let input = root().join(format!("programs/{name}.pcap"));
        let valid_in: std::collections::HashSet<u64> = read_pcap(&input)
            .into_iter()
            .filter(|r| r.2 as usize == r.3.len() && check_tunnel(&r.3).is_ok())
            .map(|r| r.0)
            .collect();
        let mut summaries = Vec::new();
        for backend in ["interp", "jit"] {
            let dir = temp_dir(&format!("golden-{name}-{backend}"));
            let out = run(&[
                "run",
                &format!("programs/{name}.sluice"),
                "--entries",
                &format!("programs/{name}.entries"),
                "--in",
                input.to_str().unwrap(),
                "--out-dir",
                dir.to_str().unwrap(),
                "--backend",
                backend,
            ]);
            assert_eq!(out.status, 0, "{name}: {}", out.stderr);
            let mut got: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            let mut want: Vec<String> = std::fs::read_dir(&expected)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "{name} {backend}: output ports");
            for f in &want {
                let g = std::fs::read(dir.join(f)).unwrap();
                let w = std::fs::read(expected.join(f)).unwrap();
                assert!(
                    g == w,
                    "{name} {backend}: {f} differs from programs/{name}.expected/{f}"
                );
                for (ts, _, orig, d) in read_pcap(&dir.join(f)) {
                    if orig as usize != d.len() || !valid_in.contains(&ts) {
                        continue;
                    }
                    check_tunnel(&d).unwrap_or_else(|e| panic!("{name} {f} packet at {ts}: {e}"));
                }
            }
            summaries.push(out.stdout);
        }
        assert_eq!(summaries[0], summaries[1], "{name}: summaries differ");
        insta::assert_snapshot!(format!("summary_{name}"), summaries[0]);
    }
}

/// Checksums of a packet, and of the packet inside a tunnel (IP-in-IP, GRE, auth): each IPv4
/// header right, the outer total length the inner one plus the outer headers.
fn check_tunnel(d: &[u8]) -> Result<(), String> {
    check_checksums(d)?;
    if d.len() < 34 || d[12..14] != [8, 0] {
        return Ok(());
    }
    let outer = etherparse::Ipv4HeaderSlice::from_slice(&d[14..]).map_err(|e| e.to_string())?;
    let extra = match outer.protocol().0 {
        4 => 0,
        47 => 4,
        253 => 16,
        _ => return Ok(()),
    };
    let start = 14 + outer.slice().len() + extra;
    let inner = etherparse::Ipv4HeaderSlice::from_slice(&d[start..]).map_err(|e| e.to_string())?;
    if outer.total_len() as usize != inner.total_len() as usize + outer.slice().len() + extra {
        return Err(format!(
            "outer total length {} for an inner {}",
            outer.total_len(),
            inner.total_len()
        ));
    }
    if extra == 4 && d[14 + 20..14 + 24] != [0, 0, 8, 0] {
        return Err("GRE header is not 0x0000 0x0800".into());
    }
    let mut inner_frame = d[..14].to_vec();
    inner_frame.extend_from_slice(&d[start..]);
    check_checksums(&inner_frame).map_err(|e| format!("inner: {e}"))
}

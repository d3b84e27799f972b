//! `--workers N`: the outputs and the summary are byte for byte one worker's, on every shipped
//! program's sample capture and on a large generated one; a live switch with several workers
//! counts exactly and applies updates to every worker.

use crate::support::*;

fn run_with(program: &str, entries: &str, input: &str, out: &std::path::Path, w: u16) -> Output {
    let o = run(&[
        "run",
        program,
        "--entries",
        entries,
        "--in",
        input,
        "--out-dir",
        out.to_str().unwrap(),
        "--workers",
        &w.to_string(),
    ]);
    assert_eq!(o.status, 0, "{program} with {w} workers: {}", o.stderr);
    o
}

/// Every file of `a` and `b`, equal: record for record, byte for byte, except in a sealed
/// tunnel packet (IPv4 protocol 254), whose counter and so whose sealed bytes depend on the
/// order in which the workers took the key's counters (docs/cli.md, `--workers`): there the
/// headers up to the key id must be equal, and the lengths.
fn same_outputs(a: &std::path::Path, b: &std::path::Path, what: &str) {
    let names = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .map(|r| {
                r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    assert_eq!(names(a), names(b), "{what}: output files");
    for f in names(a) {
        let (x, y) = (
            std::fs::read(a.join(&f)).unwrap(),
            std::fs::read(b.join(&f)).unwrap(),
        );
        if x == y {
            continue;
        }
        let (rx, ry) = (read_pcap(&a.join(&f)), read_pcap(&b.join(&f)));
        assert_eq!(rx.len(), ry.len(), "{what}: {f}: records");
        for (i, (p, q)) in rx.iter().zip(&ry).enumerate() {
            let sealed = p.3.len() > 38 && p.3[12..14] == [8, 0] && p.3[23] == 254;
            if sealed {
                assert_eq!((p.0, p.1, p.2), (q.0, q.1, q.2), "{what}: {f}: record {i}");
                assert_eq!(p.3.len(), q.3.len(), "{what}: {f}: record {i}");
                assert_eq!(p.3[..38], q.3[..38], "{what}: {f}: record {i}: headers");
            } else {
                assert!(p == q, "{what}: {f}: record {i} differs");
            }
        }
    }
}

#[test]
fn every_program_gives_one_workers_outputs_with_several() {
    let mut names: Vec<String> = std::fs::read_dir(root().join("programs"))
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.strip_suffix(".expected").map(String::from)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    for name in &names {
        let dir = temp_dir(&format!("workers-{name}"));
        let (p, e, i) = (
            format!("programs/{name}.sluice"),
            format!("programs/{name}.entries"),
            format!("programs/{name}.pcap"),
        );
        let one = run_with(&p, &e, &i, &dir.join("1"), 1);
        for w in [2, 3, 4] {
            let many = run_with(&p, &e, &i, &dir.join(w.to_string()), w);
            assert_eq!(many.stdout, one.stdout, "{name}: summary with {w} workers");
            same_outputs(
                &dir.join("1"),
                &dir.join(w.to_string()),
                &format!("{name}, {w} workers"),
            );
        }
        // And both are the expected output.
        same_outputs(
            &root().join(format!("programs/{name}.expected")),
            &dir.join("1"),
            name,
        );
    }
}

/// 60,000 generated packets (the differential test's generator: valid and malformed ones,
/// tunnels, VLANs, fragments) through the gateway and the sealed gateway.
#[test]
fn a_large_generated_capture_gives_one_workers_outputs_with_several() {
    let dir = temp_dir("workers-large");
    let input = dir.join("in.pcap");
    let mut r = crate::differential::Rng::new(13);
    let mut out = sluice_runtime::pcap::PcapOut::create(&input, 1, true).unwrap();
    for i in 0..60_000u64 {
        let p = crate::differential::gen_packet(&mut r);
        out.write(
            1_750_000_000 + i / 1000,
            (i % 1000) as u32 * 1000,
            p.len() as u32,
            &p,
        )
        .unwrap();
    }
    out.finish().unwrap();
    for name in ["gateway", "gateway_secure", "vnet"] {
        let (p, e) = (
            format!("programs/{name}.sluice"),
            format!("programs/{name}.entries"),
        );
        let one = run_with(
            &p,
            &e,
            input.to_str().unwrap(),
            &dir.join(format!("{name}-1")),
            1,
        );
        let four = run_with(
            &p,
            &e,
            input.to_str().unwrap(),
            &dir.join(format!("{name}-4")),
            4,
        );
        assert_eq!(four.stdout, one.stdout, "{name}");
        same_outputs(
            &dir.join(format!("{name}-1")),
            &dir.join(format!("{name}-4")),
            name,
        );
        assert!(
            one.stdout.contains("packets in:    60000"),
            "{}",
            one.stdout
        );
    }
}

/// A live switch with three workers: its entry counters add up to exactly the hits, `stats`
/// shows every worker's packets, and an update reaches every worker.
#[test]
fn a_live_switch_with_workers_counts_exactly() {
    let dir = temp_dir("workers-serve");
    let input = dir.join("in.pcap");
    // 3,000 packets of 500 flows (source ports), to the one dnat entry's ports.
    let mut out = sluice_runtime::pcap::PcapOut::create(&input, 1, false).unwrap();
    for i in 0..3000u32 {
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([198, 51, 100, 7], [203, 0, 113, 10], 64)
            .udp(1000 + (i % 500) as u16, 8080)
            .write(&mut f, b"sluice!!")
            .unwrap();
        out.write(1_700_000_000, i * 1000, f.len() as u32, &f)
            .unwrap();
    }
    out.finish().unwrap();
    let sw = crate::serve::Switch::start(&dir, &input, &["--workers", "3", "--rate", "3000"]);
    // Wait for the replay to end.
    let t0 = std::time::Instant::now();
    let stats = loop {
        let s = sw.ctl(&["stats"]);
        if s.stdout.contains("packets in: 3000") {
            break s.stdout;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(30),
            "{}",
            s.stdout
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // Every packet hit the one dnat entry; its counter sums the three workers' lanes.
    let hits: u64 = stats
        .lines()
        .find(|l| l.contains("table dnat "))
        .and_then(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.iter()
                .position(|x| *x == "hits")
                .and_then(|i| w.get(i + 1)?.parse().ok())
        })
        .unwrap_or(0);
    let counter = sw.ctl(&["counter_read", "dnat", "0"]);
    assert_eq!(counter.status, 0, "{}", counter.stderr);
    assert!(
        counter
            .stdout
            .contains(&format!("dnat[0]= ({hits} packets,")),
        "hits {hits}: {}",
        counter.stdout
    );
    assert_eq!(hits, 3000, "{stats}");
    // An update applies to every worker (the writer waits for each to leave the old copy).
    let o = sw.ctl(&["table_clear", "dnat"]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    assert_eq!(sw.ctl(&["table_num_entries", "dnat"]).stdout, "0\n");
    // SAFETY: kill(2) on the switch's own pid, which the test has not reaped.
    unsafe { libc::kill(sw.child.id() as i32, libc::SIGTERM) };
    let summary = sw.wait();
    assert!(
        summary.contains("in = forwarded + dropped: 3000 = "),
        "{summary}"
    );
}

#[test]
fn a_capture_cut_short_fails_a_run_with_workers_and_replaces_nothing() {
    let dir = temp_dir("workers-cut");
    let whole = dir.join("whole.pcap");
    crate::serve::udp_capture(&whole, 20_000);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.join("cut.pcap");
    // The last record loses its last 7 bytes: the error comes after thousands of packets
    // have gone to the workers and been written.
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("port-1.pcap"), b"an earlier run's").unwrap();
    let o = run(&[
        "run",
        "programs/port_dnat.sluice",
        "--entries",
        "programs/port_dnat.entries",
        "--in",
        cut.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
        "--workers",
        "2",
    ]);
    assert_eq!(o.status, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("cut.pcap") && o.stderr.contains("record 20000"),
        "{}",
        o.stderr
    );
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["port-1.pcap"], "no new or temporary file");
    assert_eq!(
        std::fs::read(out.join("port-1.pcap")).unwrap(),
        b"an earlier run's"
    );
}

#[test]
fn bench_reports_the_rate_for_each_number_of_workers() {
    let o = run(&[
        "bench",
        "programs/port_dnat.sluice",
        "--entries",
        "programs/port_dnat.entries",
        "--in",
        "programs/port_dnat.pcap",
        "--rounds",
        "1",
        "--packets",
        "2000",
        "--only",
        "jit",
        "--workers",
        "3",
        "--json",
    ]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    let j: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    let w = j["workers"].as_array().expect("a workers array");
    assert_eq!(w.len(), 3, "{w:?}");
    for (i, row) in w.iter().enumerate() {
        assert_eq!(row["workers"], i + 1, "{row}");
        let mpps = row["mpps"].as_f64().unwrap();
        assert!(mpps.is_finite() && mpps > 0.0, "{row}");
        let ratio = row["over_one"].as_f64().unwrap();
        let want = mpps / w[0]["mpps"].as_f64().unwrap();
        assert!((ratio - want).abs() < 1e-9, "{row}");
    }
    // The table form has a line per count.
    let o = run(&[
        "bench",
        "programs/port_dnat.sluice",
        "--in",
        "programs/port_dnat.pcap",
        "--rounds",
        "1",
        "--packets",
        "500",
        "--only",
        "jit",
        "--workers",
        "2",
    ]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("workers"))
        .unwrap_or_else(|| panic!("{}", o.stdout));
    assert!(
        lines[at + 1].starts_with("1 ") && lines[at + 1].ends_with("1.00"),
        "{}",
        o.stdout
    );
    assert!(lines[at + 2].starts_with("2 "), "{}", o.stdout);
}

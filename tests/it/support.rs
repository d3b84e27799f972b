//! Helpers: running the `sluice` binary, reading its pcaps, and checking packets with an
//! independent parser (etherparse).

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sluice() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
    c.current_dir(root());
    c
}

pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(args: &[&str]) -> Output {
    let out = sluice().args(args).output().expect("sluice runs");
    Output {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A fresh, empty directory under the target directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = root().join("target").join("test-out").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Records of a classic pcap or pcapng file: (ts_sec, ts_nsec, orig_len, data).
pub fn read_pcap(path: &Path) -> Vec<(u64, u32, u32, Vec<u8>)> {
    let c = sluice_runtime::pcap::read_capture(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    c.records
        .into_iter()
        .map(|r| (r.ts_sec, r.ts_nsec, r.orig_len, r.data))
        .collect()
}

/// What an independent parser says of a packet's checksums: Ok if every checksum that can be
/// checked (IPv4 header; TCP or UDP of an unfragmented, uncut datagram) is right.
pub fn check_checksums(data: &[u8]) -> Result<(), String> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let Ok(p) = SlicedPacket::from_ethernet(data) else {
        return Ok(());
    };
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        return Ok(());
    };
    let h = ip.header();
    let want = h.to_header().calc_header_checksum();
    if want != h.header_checksum() {
        return Err(format!(
            "IPv4 header checksum {:#06x}, should be {want:#06x}",
            h.header_checksum()
        ));
    }
    if h.is_fragmenting_payload() {
        return Ok(());
    }
    let (src, dst) = (h.source(), h.destination());
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let want = t.calc_checksum_ipv4(src, dst).map_err(|e| e.to_string())?;
            if want != t.checksum() {
                return Err(format!(
                    "TCP checksum {:#06x}, should be {want:#06x}",
                    t.checksum()
                ));
            }
        }
        Some(TransportSlice::Udp(u)) if u.checksum() != 0 => {
            let want = u
                .to_header()
                .calc_checksum_ipv4_raw(src, dst, u.payload())
                .map_err(|e| e.to_string())?;
            if want != u.checksum() {
                return Err(format!(
                    "UDP checksum {:#06x}, should be {want:#06x}",
                    u.checksum()
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

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

/// `sluice` running in a pseudo-terminal, as a user at a terminal runs it: its standard
/// input, output and error are the terminal, which is also its controlling terminal (so that
/// it can ask for a password without echo).
pub struct Terminal {
    master: std::fs::File,
    child: std::process::Child,
    /// Everything the terminal showed so far.
    pub seen: String,
    /// How much of it `expect` has matched.
    pos: usize,
}

impl Terminal {
    pub fn spawn(args: &[&str], env: &[(&str, &Path)]) -> Terminal {
        use std::os::fd::FromRawFd;
        use std::os::unix::process::CommandExt;
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two file descriptors into the integers it is given; the
        // name, termios and window-size arguments may be null.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened by openpty and belong to nothing else.
        let (master, slave) = unsafe {
            (
                std::fs::File::from_raw_fd(master),
                std::fs::File::from_raw_fd(slave),
            )
        };
        let mut cmd = sluice();
        cmd.args(args)
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        for (k, v) in env {
            cmd.env(k, v);
        }
        // SAFETY: between fork and exec only async-signal-safe calls: setsid, and ioctl to
        // make the terminal (now standard input) the new session's controlling terminal.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("sluice runs in a terminal");
        Terminal {
            master,
            child,
            seen: String::new(),
            pos: 0,
        }
    }

    /// Reads what the terminal shows until `needle` appears after what the last `expect`
    /// matched.
    pub fn expect(&mut self, needle: &str) {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let start = self.pos;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(i) = self.seen[start..].find(needle) {
                self.pos = start + i + needle.len();
                return;
            }
            if std::time::Instant::now() >= deadline {
                let tail: String = self.seen[start..].chars().rev().take(600).collect();
                let tail: String = tail.chars().rev().collect();
                panic!(
                    "the terminal never showed {needle:?}; since then it showed:\n{}",
                    tail.escape_debug()
                );
            }
            let mut pfd = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for a descriptor this struct owns.
            let n = unsafe { libc::poll(&mut pfd, 1, 100) };
            if n <= 0 {
                continue;
            }
            let mut buf = [0u8; 4096];
            match self.master.read(&mut buf) {
                Ok(0) | Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                Ok(k) => self.seen.push_str(&String::from_utf8_lossy(&buf[..k])),
            }
        }
    }

    /// Types a line, as a user would, after the program asked for it.
    pub fn type_line(&mut self, line: &str) {
        use std::io::Write;
        self.master.write_all(line.as_bytes()).unwrap();
        self.master.write_all(b"\r").unwrap();
    }

    /// Waits for the program to exit, reading what it shows meanwhile (so that a full
    /// terminal never blocks it) and after.
    pub fn finish(mut self) -> (i32, String) {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let exited = self.child.try_wait().unwrap();
            loop {
                let mut pfd = libc::pollfd {
                    fd: self.master.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: as in `expect`.
                if unsafe { libc::poll(&mut pfd, 1, 20) } <= 0 {
                    break;
                }
                let mut buf = [0u8; 4096];
                match self.master.read(&mut buf) {
                    Ok(k) if k > 0 => self.seen.push_str(&String::from_utf8_lossy(&buf[..k])),
                    _ => break,
                }
            }
            if let Some(s) = exited {
                return (s.code().unwrap_or(-1), std::mem::take(&mut self.seen));
            }
            assert!(std::time::Instant::now() < deadline, "sluice did not exit");
        }
    }
}

/// A test that fails leaves no program running.
impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sluice ctl --control SOCK ARGS...`, which must succeed: its output.
pub fn ctl_ok(sock: &Path, args: &[&str]) -> String {
    let mut a = vec!["ctl", "--control", sock.to_str().unwrap()];
    a.extend_from_slice(args);
    let o = run(&a);
    assert_eq!(o.status, 0, "ctl {args:?}: {}", o.stderr);
    o.stdout
}

/// Waits until a switch's control socket answers (at most `limit`); false if the switch
/// exited first.
pub fn wait_for_control(
    child: &mut std::process::Child,
    sock: &Path,
    limit: std::time::Duration,
) -> bool {
    let t0 = std::time::Instant::now();
    while std::os::unix::net::UnixStream::connect(sock).is_err() {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        assert!(
            t0.elapsed() < limit,
            "no control socket at {}",
            sock.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

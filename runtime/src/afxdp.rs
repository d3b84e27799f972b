//! A port on a Linux interface through AF_XDP (`serve --af-xdp`): an XDP program attached to
//! the interface redirects every packet of each receive queue to an AF_XDP socket of the
//! switch, whose frames live in memory the switch registered with the kernel (the UMEM), so
//! that packets skip the kernel's network stack. Over libc and the bpf system call, as
//! afpacket.rs is (libbpf would bring a C library and its build; the program is five
//! instructions).
//!
//! The XDP program returns XDP_PASS for a queue no socket is bound to, and it is attached
//! through a BPF link, which the kernel removes when the switch's descriptors close, however
//! the process ends. The driver's own XDP support is tried first, then the generic one.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use thiserror::Error;

/// Frames of the UMEM per socket: half for receiving (kept in the fill ring), half for
/// sending.
const FRAMES: u32 = 4096;
const FRAME_SIZE: u32 = 2048;
/// Entries of each of the four rings.
const RING: u32 = 2048;

const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_PROG_LOAD: u32 = 5;
const BPF_LINK_CREATE: u32 = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
const XDP_PASS: i32 = 2;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;

/// Why AF_XDP cannot be used on an interface; the switch then falls back to AF_PACKET.
#[derive(Debug, Error)]
#[error("interface {name}: AF_XDP is not available ({what}: {error})")]
pub struct XdpError {
    pub name: String,
    pub what: &'static str,
    pub error: io::Error,
}

fn err(name: &str, what: &'static str) -> XdpError {
    XdpError {
        name: name.to_string(),
        what,
        error: io::Error::last_os_error(),
    }
}

/// The bpf system call with an attribute block of 128 bytes (the fields a command uses are
/// at its start; the rest zero, as the kernel requires).
fn bpf(cmd: u32, attr: &mut [u8; 128]) -> i64 {
    // SAFETY: `attr` is 128 readable and writable bytes, the size passed.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) }
}

fn put32(a: &mut [u8; 128], at: usize, v: u32) {
    a[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put64(a: &mut [u8; 128], at: usize, v: u64) {
    a[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

fn owned(fd: i64, name: &str, what: &'static str) -> Result<OwnedFd, XdpError> {
    if fd < 0 {
        return Err(err(name, what));
    }
    // SAFETY: a new descriptor the kernel just returned, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// One BPF instruction.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = (src << 4) | dst;
    b[2..4].copy_from_slice(&off.to_ne_bytes());
    b[4..8].copy_from_slice(&imm.to_ne_bytes());
    b
}

/// The XDP program of an interface and the map of its sockets, attached while this lives.
pub struct XdpProgram {
    map: OwnedFd,
    _prog: OwnedFd,
    _link: OwnedFd,
    /// Whether the driver runs it (else the kernel's generic XDP does).
    pub native: bool,
}

impl XdpProgram {
    /// Loads `return bpf_redirect_map(&sockets, ctx->rx_queue_index, XDP_PASS)` and attaches
    /// it to interface `ifindex`.
    pub fn attach(name: &str, ifindex: u32, queues: u32) -> Result<XdpProgram, XdpError> {
        let mut a = [0u8; 128];
        put32(&mut a, 0, BPF_MAP_TYPE_XSKMAP);
        put32(&mut a, 4, 4);
        put32(&mut a, 8, 4);
        put32(&mut a, 12, queues.max(1));
        let map = owned(bpf(BPF_MAP_CREATE, &mut a), name, "cannot create an XSKMAP")?;
        let fd = map.as_raw_fd();
        let mut code = Vec::new();
        // r2 = ctx->rx_queue_index
        code.extend(insn(0x61, 2, 1, 16, 0));
        // r1 = the map (a 16-byte load of its descriptor)
        code.extend(insn(0x18, 1, 1, 0, fd));
        code.extend(insn(0, 0, 0, 0, 0));
        // r3 = XDP_PASS: what the helper returns for a queue without a socket
        code.extend(insn(0xb7, 3, 0, 0, XDP_PASS));
        code.extend(insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP));
        code.extend(insn(0x95, 0, 0, 0, 0));
        let license = b"Dual MIT/GPL\0";
        let mut a = [0u8; 128];
        put32(&mut a, 0, BPF_PROG_TYPE_XDP);
        put32(&mut a, 4, (code.len() / 8) as u32);
        put64(&mut a, 8, code.as_ptr() as u64);
        put64(&mut a, 16, license.as_ptr() as u64);
        a[48..54].copy_from_slice(b"sluice");
        put32(&mut a, 68, BPF_XDP);
        let prog = owned(
            bpf(BPF_PROG_LOAD, &mut a),
            name,
            "cannot load the XDP program",
        )?;
        let mut native = true;
        let mut link = -1;
        for flags in [XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE] {
            let mut a = [0u8; 128];
            put32(&mut a, 0, prog.as_raw_fd() as u32);
            put32(&mut a, 4, ifindex);
            put32(&mut a, 8, BPF_XDP);
            put32(&mut a, 12, flags);
            link = bpf(BPF_LINK_CREATE, &mut a);
            if link >= 0 {
                native = flags == XDP_FLAGS_DRV_MODE;
                break;
            }
        }
        let link = owned(link, name, "cannot attach the XDP program")?;
        Ok(XdpProgram {
            map,
            _prog: prog,
            _link: link,
            native,
        })
    }

    /// Sends what arrives on `queue` to socket `fd`.
    fn bind_queue(&self, name: &str, queue: u32, fd: RawFd) -> Result<(), XdpError> {
        let (key, value) = (queue, fd as u32);
        let mut a = [0u8; 128];
        put32(&mut a, 0, self.map.as_raw_fd() as u32);
        put64(&mut a, 8, &key as *const u32 as u64);
        put64(&mut a, 16, &value as *const u32 as u64);
        if bpf(BPF_MAP_UPDATE_ELEM, &mut a) < 0 {
            return Err(err(name, "cannot add the socket to the XSKMAP"));
        }
        Ok(())
    }
}

/// One of the four rings the kernel shares with a socket: producer and consumer indices and
/// the entries.
struct Ring {
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    entries: *mut u8,
    mask: u32,
    map: *mut libc::c_void,
    map_len: usize,
}

impl Ring {
    fn map(
        fd: RawFd,
        name: &str,
        off: &libc::xdp_ring_offset,
        entry: usize,
        pgoff: u64,
    ) -> Result<Ring, XdpError> {
        let map_len = off.desc as usize + RING as usize * entry;
        // SAFETY: maps the ring the kernel made for this socket at its page offset;
        // unmapped in Drop.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(err(name, "cannot map a ring"));
        }
        let base = map.cast::<u8>();
        // SAFETY: the offsets the kernel gave for this ring lie inside the mapping.
        unsafe {
            Ok(Ring {
                producer: base.add(off.producer as usize).cast(),
                consumer: base.add(off.consumer as usize).cast(),
                entries: base.add(off.desc as usize),
                mask: RING - 1,
                map,
                map_len,
            })
        }
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: a u32 index in the shared mapping, aligned by the kernel.
        unsafe { &*self.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { &*self.consumer }
    }

    /// Entry `i` (modulo the ring) as a `T`.
    fn entry<T>(&self, i: u32) -> *mut T {
        // SAFETY: the index is masked to the ring's size, so the entry is inside it.
        unsafe {
            self.entries
                .add((i & self.mask) as usize * std::mem::size_of::<T>())
                .cast()
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `Ring::map`, unmapped once.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

/// An AF_XDP socket bound to one queue of an interface, with its UMEM and rings.
pub struct XdpSocket {
    fd: OwnedFd,
    umem: *mut u8,
    umem_len: usize,
    fill: Ring,
    completion: Ring,
    rx: Ring,
    tx: Ring,
    /// Frames free for sending.
    free_tx: Vec<u64>,
    tx_pending: u32,
}

// SAFETY: the mappings belong to this socket alone and are only touched through `&mut self`.
unsafe impl Send for XdpSocket {}

impl XdpSocket {
    /// A socket on queue `queue` of interface `name`, registered in `prog`'s map.
    pub fn open(
        name: &str,
        ifindex: u32,
        queue: u32,
        prog: &XdpProgram,
    ) -> Result<XdpSocket, XdpError> {
        // SAFETY: plain socket creation; owned below.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        let fd = owned(i64::from(raw), name, "cannot open an AF_XDP socket")?;
        let umem_len = (FRAMES * FRAME_SIZE) as usize;
        // SAFETY: anonymous memory for the UMEM, unmapped in Drop.
        let umem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                umem_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if umem == libc::MAP_FAILED {
            return Err(err(name, "cannot allocate the UMEM"));
        }
        let set = |opt: i32, v: *const libc::c_void, len: usize, what: &'static str| {
            // SAFETY: `v` points to `len` readable bytes.
            let r = unsafe { libc::setsockopt(raw, libc::SOL_XDP, opt, v, len as libc::socklen_t) };
            if r < 0 {
                Err(err(name, what))
            } else {
                Ok(())
            }
        };
        let free_umem = || {
            // SAFETY: the mapping made above, on a path that does not build the socket.
            unsafe { libc::munmap(umem, umem_len) };
        };
        let setup = || -> Result<libc::xdp_mmap_offsets, XdpError> {
            let reg = libc::xdp_umem_reg {
                addr: umem as u64,
                len: umem_len as u64,
                chunk_size: FRAME_SIZE,
                headroom: 0,
                flags: 0,
                tx_metadata_len: 0,
            };
            set(
                libc::XDP_UMEM_REG,
                (&reg as *const libc::xdp_umem_reg).cast(),
                std::mem::size_of_val(&reg),
                "cannot register the UMEM",
            )?;
            let n: u32 = RING;
            for opt in [
                libc::XDP_UMEM_FILL_RING,
                libc::XDP_UMEM_COMPLETION_RING,
                libc::XDP_RX_RING,
                libc::XDP_TX_RING,
            ] {
                set(opt, (&n as *const u32).cast(), 4, "cannot size the rings")?;
            }
            // SAFETY: plain old data, filled by the kernel.
            let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of_val(&off) as libc::socklen_t;
            // SAFETY: `off` has room for `len` bytes.
            let r = unsafe {
                libc::getsockopt(
                    raw,
                    libc::SOL_XDP,
                    libc::XDP_MMAP_OFFSETS,
                    (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                    &mut len,
                )
            };
            if r < 0 {
                return Err(err(name, "cannot read the rings' offsets"));
            }
            Ok(off)
        };
        let off = match setup() {
            Ok(o) => o,
            Err(e) => {
                free_umem();
                return Err(e);
            }
        };
        let desc = std::mem::size_of::<libc::xdp_desc>();
        let rings = (|| {
            Ok::<_, XdpError>((
                Ring::map(raw, name, &off.fr, 8, libc::XDP_UMEM_PGOFF_FILL_RING)?,
                Ring::map(raw, name, &off.cr, 8, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?,
                Ring::map(raw, name, &off.rx, desc, libc::XDP_PGOFF_RX_RING as u64)?,
                Ring::map(raw, name, &off.tx, desc, libc::XDP_PGOFF_TX_RING as u64)?,
            ))
        })();
        let (fill, completion, rx, tx) = match rings {
            Ok(r) => r,
            Err(e) => {
                free_umem();
                return Err(e);
            }
        };
        let s = XdpSocket {
            fd,
            umem: umem.cast(),
            umem_len,
            fill,
            completion,
            rx,
            tx,
            free_tx: (FRAMES / 2..FRAMES)
                .map(|f| u64::from(f * FRAME_SIZE))
                .collect(),
            tx_pending: 0,
        };
        // Every receive frame to the kernel.
        let p = s.fill.producer().load(Ordering::Relaxed);
        for f in 0..FRAMES / 2 {
            // SAFETY: an entry of the fill ring, which the kernel reads only past the
            // producer index published below.
            unsafe { *s.fill.entry::<u64>(p.wrapping_add(f)) = u64::from(f * FRAME_SIZE) };
        }
        s.fill
            .producer()
            .store(p.wrapping_add(FRAMES / 2), Ordering::Release);
        // SAFETY: sockaddr_xdp is plain old data.
        let mut sa: libc::sockaddr_xdp = unsafe { std::mem::zeroed() };
        sa.sxdp_family = libc::AF_XDP as u16;
        sa.sxdp_ifindex = ifindex;
        sa.sxdp_queue_id = queue;
        let mut bound = -1;
        // Zero copy where the driver has it, else copy mode.
        for flags in [libc::XDP_ZEROCOPY, libc::XDP_COPY] {
            sa.sxdp_flags = flags;
            // SAFETY: a valid sockaddr_xdp of the size given.
            bound = unsafe {
                libc::bind(
                    raw,
                    (&sa as *const libc::sockaddr_xdp).cast(),
                    std::mem::size_of_val(&sa) as libc::socklen_t,
                )
            };
            if bound == 0 {
                break;
            }
        }
        if bound < 0 {
            return Err(err(name, "cannot bind an AF_XDP socket to the queue"));
        }
        prog.bind_queue(name, queue, raw)?;
        Ok(s)
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Takes arrived packets while `take` accepts them (see `PacketSocket::receive`; AF_XDP
    /// gives no timestamp, so the packets get the time they were taken).
    pub fn receive(&mut self, mut take: impl FnMut(&[u8], u32, u32, u32) -> bool) -> usize {
        let cons = self.rx.consumer().load(Ordering::Relaxed);
        let avail = self
            .rx
            .producer()
            .load(Ordering::Acquire)
            .wrapping_sub(cons);
        if avail == 0 {
            return 0;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let (sec, nsec) = (now.as_secs() as u32, now.subsec_nanos());
        let mut n = 0;
        let fill_p = self.fill.producer().load(Ordering::Relaxed);
        while n < avail {
            // SAFETY: an RX entry the kernel published (below the producer index).
            let d = unsafe { *self.rx.entry::<libc::xdp_desc>(cons.wrapping_add(n)) };
            let len = (d.len as usize).min(FRAME_SIZE as usize);
            let at = (d.addr as usize).min(self.umem_len - len);
            // SAFETY: the frame lies inside the UMEM (clamped above) and is the switch's
            // until it goes back to the fill ring.
            let data = unsafe { std::slice::from_raw_parts(self.umem.add(at), len) };
            if !take(data, len as u32, sec, nsec) {
                break;
            }
            // The frame back to the kernel, for another packet.
            // SAFETY: a fill ring entry past its producer index: the kernel does not read it
            // until the index below is published.
            unsafe {
                *self.fill.entry::<u64>(fill_p.wrapping_add(n)) =
                    d.addr & !u64::from(FRAME_SIZE - 1)
            };
            n += 1;
        }
        self.rx
            .consumer()
            .store(cons.wrapping_add(n), Ordering::Release);
        self.fill
            .producer()
            .store(fill_p.wrapping_add(n), Ordering::Release);
        n as usize
    }

    /// Frames the kernel has sent, back to the free list.
    fn reclaim(&mut self) {
        let cons = self.completion.consumer().load(Ordering::Relaxed);
        let avail = self
            .completion
            .producer()
            .load(Ordering::Acquire)
            .wrapping_sub(cons);
        for i in 0..avail {
            // SAFETY: a completion entry the kernel published.
            self.free_tx
                .push(unsafe { *self.completion.entry::<u64>(cons + i) });
        }
        self.completion
            .consumer()
            .store(cons + avail, Ordering::Release);
    }

    /// Queues a packet for sending; false when it does not fit a frame.
    pub fn queue(&mut self, data: &[u8]) -> io::Result<bool> {
        if data.len() > FRAME_SIZE as usize {
            return Ok(false);
        }
        if self.free_tx.is_empty() {
            self.reclaim();
        }
        if self.free_tx.is_empty() {
            self.flush()?;
            std::thread::yield_now();
            self.reclaim();
        }
        let Some(addr) = self.free_tx.pop() else {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the transmit ring stayed full",
            ));
        };
        // SAFETY: a free TX frame inside the UMEM, of FRAME_SIZE bytes (data fits).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.umem.add(addr as usize), data.len())
        };
        let p = self.tx.producer().load(Ordering::Relaxed);
        // SAFETY: a TX entry past the producer index; there are as many entries as frames
        // for sending, so it is free.
        unsafe {
            *self.tx.entry::<libc::xdp_desc>(p) = libc::xdp_desc {
                addr,
                len: data.len() as u32,
                options: 0,
            };
        }
        self.tx
            .producer()
            .store(p.wrapping_add(1), Ordering::Release);
        self.tx_pending += 1;
        Ok(true)
    }

    /// Asks the kernel to send what is queued.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.tx_pending == 0 {
            return Ok(());
        }
        // SAFETY: a send with no buffer: the kernel sends the TX ring's entries.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if !matches!(
                e.raw_os_error(),
                Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS)
            ) {
                return Err(e);
            }
        }
        self.reclaim();
        // Copy mode sends a limited number per call: what the kernel has not taken yet waits
        // for the next.
        let left = self
            .tx
            .producer()
            .load(Ordering::Relaxed)
            .wrapping_sub(self.tx.consumer().load(Ordering::Acquire));
        self.tx_pending = left;
        Ok(())
    }

    /// Whether packets queued are still waiting to be sent.
    pub fn pending(&self) -> bool {
        self.tx_pending > 0
    }

    /// Packets dropped for want of room: the RX ring full, or no frame to put them in (the
    /// kernel's XDP_STATISTICS, cumulative).
    pub fn dropped(&self) -> u64 {
        // SAFETY: plain old data, filled by the kernel.
        let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of_val(&st) as libc::socklen_t;
        // SAFETY: `st` has room for `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                (&mut st as *mut libc::xdp_statistics).cast(),
                &mut len,
            )
        };
        if r < 0 {
            return 0;
        }
        // (rx_fill_ring_empty_descs counts the driver's failed reads of the fill ring, and in
        // copy mode the same packets as rx_dropped: not added.)
        st.rx_dropped + st.rx_ring_full
    }
}

impl Drop for XdpSocket {
    fn drop(&mut self) {
        let _ = self.flush();
        // SAFETY: the UMEM mapped in `open`, unmapped once (the rings unmap themselves).
        unsafe { libc::munmap(self.umem.cast(), self.umem_len) };
    }
}

/// How many receive queues an interface has (sysfs `queues/rx-*`), at least one.
pub fn rx_queues(name: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .max(1)
}

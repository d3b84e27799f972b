//! A port on a Linux interface: an AF_PACKET socket with TPACKET_V3 memory-mapped rings, one
//! for what arrives and one for what leaves, over libc.
//!
//! Why not a crate: the ones on crates.io either read a packet per system call (pnet's
//! datalink) or cover only receiving, and none sets what a switch needs together (a TX ring,
//! PACKET_IGNORE_OUTGOING, fanout, promiscuous membership, the ring's drop counter). The
//! kernel interface is small and stable; this module is all of its unsafe code.
//!
//! Receiving: the kernel fills blocks of packets and hands each block over when it is full or
//! after [`BLOCK_TIMEOUT_MS`]; the switch copies each packet into its ring of buffers (the one
//! copy a replay makes too) and gives the block back. Sending: packets are written into the
//! TX ring's frames and one `send` per batch hands them all to the kernel.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, AtomicU32, Ordering};
use thiserror::Error;

/// How long the kernel keeps a partly filled receive block before handing it over: the most
/// a packet waits in the ring when traffic is light.
pub const BLOCK_TIMEOUT_MS: u32 = 1;
/// Receive ring: blocks of 256 KiB, 16 of them (4 MiB per socket).
const RX_BLOCK_SIZE: usize = 1 << 18;
const RX_BLOCKS: usize = 16;
/// Transmit ring frames: 512 of them, each large enough for the interface's MTU.
const TX_FRAMES: usize = 512;
/// Where a TX frame's packet starts: after the frame header (the kernel's default when
/// PACKET_TX_HAS_OFF is not set: TPACKET3_HDRLEN - sizeof(sockaddr_ll)).
const TX_DATA_OFFSET: usize = libc::TPACKET3_HDRLEN - std::mem::size_of::<libc::sockaddr_ll>();

/// Why a port could not be opened; each names the interface and says what to do.
#[derive(Debug, Error)]
pub enum PortError {
    #[error("interface {name}: no such interface (see `ip link`)")]
    NoSuchInterface { name: String },
    #[error(
        "interface {name}: the interface is down; bring it up first (`ip link set {name} up`)"
    )]
    Down { name: String },
    #[error(
        "interface {name}: no permission to open a packet socket: live ports need root or the \
         CAP_NET_RAW capability (for example `sudo setcap cap_net_raw,cap_net_admin+ep $(which sluice)`)"
    )]
    Permission { name: String },
    #[error("interface {name}: not a valid interface name")]
    BadName { name: String },
    #[error("interface {name}: {what}: {error}")]
    Os {
        name: String,
        what: &'static str,
        error: io::Error,
    },
}

/// What a packet socket counted since last asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingCounts {
    /// Packets the kernel dropped because the receive ring was full (overruns).
    pub overruns: u64,
}

/// How a port's socket is opened.
#[derive(Clone, Copy, Debug, Default)]
pub struct PortOptions {
    /// Join a fanout group (one per port, shared by the workers' sockets): the kernel spreads
    /// arriving packets over the group's sockets by a flow hash.
    pub fanout: Option<Fanout>,
}

/// Which fanout group a socket joins.
#[derive(Clone, Copy, Debug)]
pub enum Fanout {
    /// A new group with an id the kernel picks (unique in the network namespace), read back
    /// with [`PacketSocket::fanout_id`].
    New,
    /// The group with this id.
    Join(u16),
}

/// A receive block being read: its address and the next packet in it.
struct Cursor {
    block: usize,
    next: *const u8,
    left: u32,
}

/// One AF_PACKET socket bound to an interface, with both rings mapped.
pub struct PacketSocket {
    fd: OwnedFd,
    name: String,
    ifindex: i32,
    mtu: usize,
    map: *mut u8,
    map_len: usize,
    rx_blocks: usize,
    /// The block to read next, and where in it (when one is held).
    rx_next: usize,
    cursor: Option<Cursor>,
    tx_base: *mut u8,
    tx_frame: usize,
    tx_frames: usize,
    tx_next: usize,
    tx_pending: usize,
}

// SAFETY: the mapping belongs to this socket alone and is only touched through `&mut self`;
// the raw pointers are what keep the type from being Send automatically.
unsafe impl Send for PacketSocket {}

fn os(name: &str, what: &'static str) -> PortError {
    PortError::Os {
        name: name.to_string(),
        what,
        error: io::Error::last_os_error(),
    }
}

fn setsockopt<T>(fd: RawFd, level: i32, opt: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live T of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The interface's flags and MTU, through an ioctl on `fd`.
fn interface_info(fd: RawFd, name: &str) -> Result<(i16, usize), PortError> {
    // SAFETY: ifreq is plain old data; zero is a valid value of it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags into `req`.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(os(name, "cannot read its flags"));
    }
    // SAFETY: the ioctl above filled the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    // SAFETY: SIOCGIFMTU reads the name and writes the MTU into `req`.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut req) } < 0 {
        return Err(os(name, "cannot read its MTU"));
    }
    // SAFETY: the ioctl above filled the mtu member.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok((flags, mtu.max(68) as usize))
}

impl PacketSocket {
    /// Opens a packet socket on interface `name`: checks that the interface exists and is
    /// up, maps the rings, binds, puts the interface in promiscuous mode for as long as the
    /// socket is open (a membership the kernel drops when the socket closes, whatever way the
    /// process ends), and ignores what leaves the interface, so that the switch never reads
    /// back what it sent.
    pub fn open(name: &str, opts: PortOptions) -> Result<PacketSocket, PortError> {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // Protocol 0: the socket takes no packet until it is bound to the interface (with
        // ETH_P_ALL), so that nothing from another interface reaches its ring meanwhile.
        let (fd, ifindex, mtu) = checked_socket(name)?;
        let raw = fd.as_raw_fd();
        // A send that waits for the ring (a full ring, or closing) waits 200 ms at most.
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        setsockopt(raw, libc::SOL_SOCKET, libc::SO_SNDTIMEO, &timeout).map_err(|error| {
            PortError::Os {
                name: name.to_string(),
                what: "cannot set a send timeout",
                error,
            }
        })?;
        let opt = |what: &'static str, r: io::Result<()>| {
            r.map_err(|error| PortError::Os {
                name: name.to_string(),
                what,
                error,
            })
        };
        let v3 = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        opt(
            "cannot use TPACKET_V3 rings",
            setsockopt(raw, libc::SOL_PACKET, libc::PACKET_VERSION, &v3),
        )?;
        opt(
            "cannot ignore outgoing packets (PACKET_IGNORE_OUTGOING, Linux 4.20)",
            setsockopt(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1i32),
        )?;
        // A frame that does not fit the interface is skipped rather than stopping the ring.
        opt(
            "cannot set PACKET_LOSS",
            setsockopt(raw, libc::SOL_PACKET, libc::PACKET_LOSS, &1i32),
        )?;
        let rx = libc::tpacket_req3 {
            tp_block_size: RX_BLOCK_SIZE as u32,
            tp_block_nr: RX_BLOCKS as u32,
            tp_frame_size: 2048,
            tp_frame_nr: (RX_BLOCK_SIZE * RX_BLOCKS / 2048) as u32,
            tp_retire_blk_tov: BLOCK_TIMEOUT_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        opt(
            "cannot set up the receive ring",
            setsockopt(raw, libc::SOL_PACKET, libc::PACKET_RX_RING, &rx),
        )?;
        // A TX frame holds its header and the largest frame the interface takes (MTU,
        // Ethernet header and a VLAN tag), rounded up to a power of two.
        let tx_frame = (TX_DATA_OFFSET + mtu + 18).next_power_of_two().max(2048);
        let tx_block = tx_frame.max(4096);
        let tx_blocks = (TX_FRAMES * tx_frame).div_ceil(tx_block);
        let tx_frames = tx_blocks * (tx_block / tx_frame);
        let tx = libc::tpacket_req3 {
            tp_block_size: tx_block as u32,
            tp_block_nr: tx_blocks as u32,
            tp_frame_size: tx_frame as u32,
            tp_frame_nr: tx_frames as u32,
            tp_retire_blk_tov: 0,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        opt(
            "cannot set up the transmit ring",
            setsockopt(raw, libc::SOL_PACKET, libc::PACKET_TX_RING, &tx),
        )?;
        let rx_len = RX_BLOCK_SIZE * RX_BLOCKS;
        let map_len = rx_len + tx_block * tx_blocks;
        // SAFETY: maps the socket's rings (receive first, then transmit, as the kernel lays
        // them out); unmapped in Drop.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED | libc::MAP_POPULATE,
                raw,
                0,
            )
        };
        let map = if map == libc::MAP_FAILED {
            // MAP_LOCKED fails under a low RLIMIT_MEMLOCK: map without it.
            // SAFETY: as above.
            let m = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    raw,
                    0,
                )
            };
            if m == libc::MAP_FAILED {
                return Err(os(name, "cannot map the rings"));
            }
            m
        } else {
            map
        };
        let mut sock = PacketSocket {
            fd,
            name: name.to_string(),
            ifindex,
            mtu,
            map: map.cast(),
            map_len,
            rx_blocks: RX_BLOCKS,
            rx_next: 0,
            cursor: None,
            // SAFETY: the TX ring starts right after the RX ring, inside the mapping.
            tx_base: unsafe { map.cast::<u8>().add(rx_len) },
            tx_frame,
            tx_frames,
            tx_next: 0,
            tx_pending: 0,
        };
        // SAFETY: sockaddr_ll is plain old data.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = ifindex;
        // SAFETY: `addr` is a valid sockaddr_ll of the size given.
        let r = unsafe {
            libc::bind(
                raw,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(os(name, "cannot bind a packet socket to it"));
        }
        add_promiscuous(raw, name, ifindex)?;
        if let Some(fanout) = opts.fanout {
            let (id, flags) = match fanout {
                Fanout::New => (0, libc::PACKET_FANOUT_FLAG_UNIQUEID),
                Fanout::Join(id) => (id, 0),
            };
            let arg: u32 = u32::from(id) | ((libc::PACKET_FANOUT_HASH | flags) << 16);
            opt(
                "cannot join the workers' fanout group",
                setsockopt(raw, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg),
            )?;
        }
        // Counters start from now.
        let _ = sock.counts();
        Ok(sock)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id of the fanout group the socket is in (the kernel's, for `Fanout::New`).
    pub fn fanout_id(&self) -> Option<u16> {
        let mut v: u32 = 0;
        let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
        // SAFETY: `v` has room for `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                (&mut v as *mut u32).cast(),
                &mut len,
            )
        };
        (r == 0).then_some((v & 0xffff) as u16)
    }

    /// Gives back every block the kernel has filled, unread: what arrived while the workers'
    /// sockets were still joining their fanout group (and could reach two of them).
    pub fn discard_pending(&mut self) {
        while self.receive(|_, _, _, _| true) > 0 {}
    }

    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// The largest frame the interface sends: its MTU and an Ethernet header.
    pub fn max_frame(&self) -> usize {
        self.mtu + 14
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn block(&self, i: usize) -> *mut libc::tpacket_block_desc {
        // SAFETY: i < rx_blocks, so the block lies inside the RX part of the mapping.
        unsafe { self.map.add(i * RX_BLOCK_SIZE).cast() }
    }

    /// The block status word, read and written with the kernel's ordering.
    fn block_status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: block_status is a u32 at the start of the block's header, 8-aligned, in
        // shared memory the kernel writes; AtomicU32 has u32's layout.
        unsafe {
            &*std::ptr::addr_of_mut!((*self.block(i)).hdr.bh1.block_status).cast::<AtomicU32>()
        }
    }

    /// Takes arrived packets, oldest first, while `take` accepts them: `take(bytes, wire
    /// length, seconds, nanoseconds)` returns false when it has no room, and that packet is
    /// offered again next time. Returns how many were taken.
    pub fn receive(&mut self, mut take: impl FnMut(&[u8], u32, u32, u32) -> bool) -> usize {
        let mut taken = 0;
        loop {
            if self.cursor.is_none() {
                let i = self.rx_next;
                if self.block_status(i).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                    return taken;
                }
                let b = self.block(i);
                // SAFETY: the block is the user's (status read above with Acquire), so its
                // header is complete and stays as it is until handed back.
                let (n, first) = unsafe {
                    let h = &(*b).hdr.bh1;
                    (h.num_pkts, h.offset_to_first_pkt as usize)
                };
                self.cursor = Some(Cursor {
                    block: i,
                    // SAFETY: offset_to_first_pkt is inside the block.
                    next: unsafe { b.cast::<u8>().add(first) },
                    left: n,
                });
            }
            let Some(c) = self.cursor.as_mut() else {
                return taken;
            };
            while c.left > 0 {
                let h = c.next.cast::<libc::tpacket3_hdr>();
                // SAFETY: `h` is a packet header inside a block the user owns; its data
                // (tp_mac, tp_snaplen) lies inside the block, as the kernel wrote it.
                let (data, wire, sec, nsec, next) = unsafe {
                    let hdr = &*h;
                    let data = std::slice::from_raw_parts(
                        c.next.add(usize::from(hdr.tp_mac)),
                        hdr.tp_snaplen as usize,
                    );
                    (
                        data,
                        hdr.tp_len,
                        hdr.tp_sec,
                        hdr.tp_nsec,
                        hdr.tp_next_offset,
                    )
                };
                if !take(data, wire, sec, nsec) {
                    return taken;
                }
                taken += 1;
                c.left -= 1;
                // SAFETY: the next packet's offset, from this one, inside the block (unused
                // past the last packet).
                c.next = unsafe { c.next.add(next as usize) };
            }
            let i = c.block;
            self.cursor = None;
            // Hand the block back; the kernel reads the status with its own barrier.
            fence(Ordering::Release);
            self.block_status(i)
                .store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.rx_next = (i + 1) % self.rx_blocks;
        }
    }

    fn tx_status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: frame i lies inside the TX part of the mapping; tp_status is a u32 at a
        // 4-aligned offset of its header, shared with the kernel.
        unsafe {
            let h = self
                .tx_base
                .add(i * self.tx_frame)
                .cast::<libc::tpacket3_hdr>();
            &*std::ptr::addr_of_mut!((*h).tp_status).cast::<AtomicU32>()
        }
    }

    /// Queues a packet in the TX ring; [`PacketSocket::flush`] sends what is queued. False
    /// when the packet is longer than the interface takes; when the ring is full it is
    /// flushed and waited for first.
    pub fn queue(&mut self, data: &[u8]) -> Result<bool, io::Error> {
        if data.len() > self.max_frame() + vlan_room(data)
            || TX_DATA_OFFSET + data.len() > self.tx_frame
        {
            return Ok(false);
        }
        let i = self.tx_next;
        let free = |s: u32| s == libc::TP_STATUS_AVAILABLE || s == libc::TP_STATUS_WRONG_FORMAT;
        if !free(self.tx_status(i).load(Ordering::Acquire)) {
            // The kernel is still sending this frame: send and wait for the ring.
            self.flush_wait(true)?;
            if !free(self.tx_status(i).load(Ordering::Acquire)) {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "the transmit ring stayed full",
                ));
            }
        }
        // SAFETY: the frame is free (status read with Acquire), so the kernel does not read
        // it until the status says SEND_REQUEST; header and data fit in the frame (checked
        // above).
        unsafe {
            let f = self.tx_base.add(i * self.tx_frame);
            let h = f.cast::<libc::tpacket3_hdr>();
            (*h).tp_next_offset = 0;
            (*h).tp_len = data.len() as u32;
            (*h).tp_snaplen = data.len() as u32;
            std::ptr::copy_nonoverlapping(data.as_ptr(), f.add(TX_DATA_OFFSET), data.len());
        }
        self.tx_status(i)
            .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.tx_next = (i + 1) % self.tx_frames;
        self.tx_pending += 1;
        Ok(true)
    }

    /// Whether packets queued are still waiting to be sent.
    pub fn pending(&self) -> bool {
        self.tx_pending > 0
    }

    /// Sends every queued packet with one system call, without waiting for the kernel to
    /// finish.
    pub fn flush(&mut self) -> io::Result<()> {
        self.flush_wait(false)
    }

    fn flush_wait(&mut self, wait: bool) -> io::Result<()> {
        if self.tx_pending == 0 && !wait {
            return Ok(());
        }
        let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
        // SAFETY: a send with no buffer: the kernel sends the TX ring's requested frames.
        let r = unsafe { libc::send(self.fd.as_raw_fd(), std::ptr::null(), 0, flags) };
        // The kernel takes frames in order and may stop partway (a full send buffer): while
        // the last one queued is still requested, there is more to send next time.
        let last = (self.tx_next + self.tx_frames - 1) % self.tx_frames;
        self.tx_pending = usize::from(
            self.tx_status(last).load(Ordering::Acquire) == libc::TP_STATUS_SEND_REQUEST,
        );
        if r < 0 {
            let e = io::Error::last_os_error();
            // Nothing could be sent at once: the frames stay requested for the next send.
            if e.kind() != io::ErrorKind::WouldBlock {
                return Err(e);
            }
        }
        Ok(())
    }

    /// What the kernel counted since last asked (the counters reset when read).
    pub fn counts(&mut self) -> RingCounts {
        // SAFETY: plain old data.
        let mut st: libc::tpacket_stats_v3 = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` has room for `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if r < 0 {
            return RingCounts::default();
        }
        RingCounts {
            overruns: u64::from(st.tp_drops),
        }
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        let _ = self.flush_wait(true);
        // SAFETY: the mapping made in `open`, unmapped once; the descriptor closes after.
        unsafe { libc::munmap(self.map.cast(), self.map_len) };
    }
}

/// Checks interface `name` as `PacketSocket::open` does (exists, is up, a packet socket can be
/// opened on it), for ports that use another kind of socket: its index and MTU.
pub fn check_interface(name: &str) -> Result<(i32, usize), PortError> {
    checked_socket(name).map(|(_, ifindex, mtu)| (ifindex, mtu))
}

/// A packet socket that receives nothing yet, on an interface that exists and is up: the
/// socket, the interface's index and its MTU.
fn checked_socket(name: &str) -> Result<(OwnedFd, i32, usize), PortError> {
    let (fd, ifindex) = raw_socket(name, 0)?;
    let (flags, mtu) = interface_info(fd.as_raw_fd(), name)?;
    if flags & libc::IFF_UP as i16 == 0 {
        return Err(PortError::Down {
            name: name.to_string(),
        });
    }
    Ok((fd, ifindex, mtu))
}

/// Keeps interface `name` promiscuous while the descriptor returned is open (a packet socket
/// that receives nothing, holding a promiscuous membership).
pub fn promiscuous(name: &str, ifindex: i32) -> Result<OwnedFd, PortError> {
    let (fd, _) = raw_socket(name, 0)?;
    add_promiscuous(fd.as_raw_fd(), name, ifindex)?;
    Ok(fd)
}

/// A promiscuous membership of socket `fd` on interface `ifindex`: the kernel keeps the
/// interface promiscuous until the socket closes.
fn add_promiscuous(fd: RawFd, name: &str, ifindex: i32) -> Result<(), PortError> {
    let mreq = libc::packet_mreq {
        mr_ifindex: ifindex,
        mr_type: libc::PACKET_MR_PROMISC as u16,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    setsockopt(fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq).map_err(|error| {
        PortError::Os {
            name: name.to_string(),
            what: "cannot put it in promiscuous mode",
            error,
        }
    })
}

/// A packet socket for `protocol` (network order; 0 receives nothing) and the interface's
/// index, with the errors a user can act on.
fn raw_socket(name: &str, protocol: u16) -> Result<(OwnedFd, i32), PortError> {
    let bad = || PortError::BadName {
        name: name.to_string(),
    };
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(bad());
    }
    let cname = CString::new(name).map_err(|_| bad())?;
    // SAFETY: a NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) } as i32;
    if ifindex == 0 {
        return Err(PortError::NoSuchInterface {
            name: name.to_string(),
        });
    }
    // SAFETY: plain socket creation; the descriptor is owned below.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(protocol),
        )
    };
    if raw < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => PortError::Permission {
                name: name.to_string(),
            },
            _ => PortError::Os {
                name: name.to_string(),
                what: "cannot open a packet socket",
                error: e,
            },
        });
    }
    // SAFETY: `raw` is a new descriptor that nothing else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(raw) }, ifindex))
}

/// The 4 bytes beyond the MTU the kernel lets a frame have when it carries a VLAN tag.
pub fn vlan_room(frame: &[u8]) -> usize {
    match frame.get(12..14) {
        Some([0x81, 0x00]) | Some([0x88, 0xa8]) => 4,
        _ => 0,
    }
}

/// Waits until one of `fds` has something to read, or `timeout_ms` passes. An error pending
/// on a socket (its interface went down) is read and cleared, so that it does not wake the
/// caller again at once.
pub fn wait_readable(fds: &[RawFd], timeout_ms: i32) {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `p` holds `p.len()` pollfd structures.
    unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    for q in &p {
        if q.revents & libc::POLLERR != 0 {
            let mut e: i32 = 0;
            let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
            // SAFETY: reads (and so clears) the socket's pending error into `e`.
            unsafe {
                libc::getsockopt(
                    q.fd,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut e as *mut i32).cast(),
                    &mut len,
                )
            };
            // Still an error next time round: wait a little rather than spin.
            std::thread::sleep(std::time::Duration::from_millis(
                timeout_ms.clamp(0, 20) as u64
            ));
        }
    }
}

/// The interface's Ethernet address, from sysfs (for `show_ports`).
pub fn hardware_address(name: &str) -> Option<String> {
    if name.contains('/') || name.starts_with('.') {
        return None;
    }
    std::fs::read_to_string(format!("/sys/class/net/{name}/address"))
        .ok()
        .map(|s| s.trim().to_string())
}

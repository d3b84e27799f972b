//! Capture I/O: reading classic pcap (either byte order, µs or ns) and
//! pcapng (several interfaces, each with its own link type and timestamp
//! resolution) into memory, and writing classic little-endian pcap.

use std::fs::{self, File};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::Block;

mod stream;
use pcap_file::{Endianness, PcapError as LibError, TsResolution};
pub use stream::{CaptureReader, RecordRef, MAX_RECORD};
use thiserror::Error;

/// One captured packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub ts_sec: u64,
    pub ts_nsec: u32,
    pub linktype: u32,
    /// Length on the wire; never less than `data.len()`.
    pub orig_len: u32,
    /// The captured bytes (possibly cut short by the snaplen).
    pub data: Vec<u8>,
}

/// The records of a capture file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capture {
    pub records: Vec<Record>,
    /// Some record came from an input with a resolution finer than 1 µs.
    pub nanos: bool,
    /// Records longer than their capture's snaplen: read as they are, and said once (as
    /// Wireshark does), since such a file was written by a tool that ignored its own limit.
    pub over_snaplen: Option<OverSnaplen>,
}

/// The records of a capture that are longer than its snaplen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverSnaplen {
    pub count: u64,
    /// The first such record (counted from 1), its captured length and the snaplen.
    pub first: u64,
    pub len: usize,
    pub snaplen: u32,
}

impl OverSnaplen {
    fn note(this: &mut Option<OverSnaplen>, record: u64, len: usize, snaplen: u32) {
        if snaplen == 0 || len <= snaplen as usize {
            return;
        }
        match this {
            Some(o) => o.count += 1,
            None => {
                *this = Some(OverSnaplen {
                    count: 1,
                    first: record,
                    len,
                    snaplen,
                })
            }
        }
    }
}

impl std::fmt::Display for OverSnaplen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "record {} has {} bytes, more than the capture's snaplen of {}",
            self.first, self.len, self.snaplen
        )?;
        if self.count > 1 {
            write!(f, " ({} records do)", self.count)?;
        }
        write!(f, "; read as captured")
    }
}

impl Capture {
    /// The longest record's captured length: what a packet buffer must hold.
    pub fn max_len(&self) -> usize {
        self.records.iter().map(|r| r.data.len()).max().unwrap_or(0)
    }
}

/// A capture file that cannot be read or written. Record numbers count
/// from 1, like Wireshark's frame numbers; offsets are from the file start.
#[derive(Debug, Error)]
pub enum PcapError {
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}: not a pcap or pcapng file (it starts with {magic})", path.display())]
    NotACapture { path: PathBuf, magic: String },
    #[error(
        "{}: truncated: {what} at byte offset {offset} needs {needed} bytes, but only {available} remain",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        what: String,
        offset: u64,
        needed: u64,
        available: u64,
    },
    #[error("{}: {what} at byte offset {offset}: {reason}", path.display())]
    Malformed {
        path: PathBuf,
        what: String,
        offset: u64,
        reason: String,
    },
    #[error("{}: cannot write record {record}: {reason}", path.display())]
    Unwritable {
        path: PathBuf,
        record: u64,
        reason: String,
    },
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x4d, 0x3c, 0xb2, 0xa1],
];

/// Reads a whole pcap or pcapng file into memory (tests and `sluice bench`; a replay reads
/// its captures as streams, [`CaptureReader`]).
pub fn read_capture(path: &Path) -> Result<Capture, PcapError> {
    CaptureReader::open(path)?.read_all()
}

/// Parses the bytes of a pcap or pcapng file; `path` only names it in errors.
pub fn parse_capture(bytes: &[u8], path: &Path) -> Result<Capture, PcapError> {
    CaptureReader::new(Box::new(io::Cursor::new(bytes.to_vec())), path)?.read_all()
}

/// Where a pcapng record's timestamps come from.
struct Interface {
    linktype: u32,
    snaplen: u32,
    /// Timestamp units per second (10^n or 2^n, from if_tsresol).
    per_sec: u128,
    /// if_tsoffset: seconds added to every timestamp.
    offset_sec: i64,
    /// A record used this interface.
    used: bool,
}

fn len_u32(data: &[u8]) -> u32 {
    u32::try_from(data.len()).unwrap_or(u32::MAX)
}

/// Reads what a record needs from an IDB.
fn interface(idb: &InterfaceDescriptionBlock<'_>) -> Result<Interface, String> {
    let mut per_sec = 1_000_000;
    let mut offset_sec = 0;
    for opt in &idb.options {
        match *opt {
            InterfaceDescriptionOption::IfTsResol(r) => {
                let exp = u32::from(r & 0x7f);
                let base: u128 = if r & 0x80 == 0 { 10 } else { 2 };
                per_sec = base
                    .checked_pow(exp)
                    .ok_or_else(|| format!("if_tsresol {r:#04x} is too fine"))?;
            }
            // The field is signed; pcap-file reads it as u64.
            InterfaceDescriptionOption::IfTsOffset(o) => offset_sec = o as i64,
            _ => {}
        }
    }
    Ok(Interface {
        linktype: u32::from(idb.linktype),
        snaplen: idb.snaplen,
        per_sec,
        offset_sec,
        used: false,
    })
}

/// Splits a raw timestamp of `per_sec` units per second into seconds and
/// nanoseconds, adding `offset_sec`. `None` if the result is negative or
/// too large.
fn split_timestamp(raw: u64, per_sec: u128, offset_sec: i64) -> Option<(u64, u32)> {
    let raw = u128::from(raw);
    let secs = raw.checked_div(per_sec)?;
    // frac < 2^64, so frac * 10^9 cannot overflow.
    let nanos = (raw % per_sec) * 1_000_000_000 / per_sec;
    let secs = i128::try_from(secs).ok()? + i128::from(offset_sec);
    Some((u64::try_from(secs).ok()?, u32::try_from(nanos).ok()?))
}

/// A classic little-endian pcap being written, as tcpdump writes one: the 24-byte global
/// header, then a 16-byte header and the bytes of each record.
///
/// Records are gathered in a buffer of whole records and written to the file when it fills
/// or on [`PcapOut::flush`]: the file never holds half a record from this writer's side, so
/// a reader (tshark on a running switch's output) sees the records written so far.
pub struct PcapOut {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    nanos: bool,
    written: u64,
    /// Records cut to the snaplen so far.
    cut: u64,
    /// Records in `buf`, not yet in the file.
    buffered: u64,
    /// The file's length after the last write that succeeded: whole records.
    durable: u64,
}

/// How many bytes of whole records are gathered before they are written.
const OUT_BUFFER: usize = 256 * 1024;

impl PcapOut {
    /// Largest number of bytes kept per record.
    pub const SNAPLEN: u32 = 262_144;

    /// Creates the file and writes the global header: nanosecond
    /// timestamps iff `nanos`, link type `linktype`, snaplen 262144.
    pub fn create(path: &Path, linktype: u32, nanos: bool) -> Result<Self, PcapError> {
        let file = File::create(path).map_err(|error| PcapError::Io {
            path: path.to_owned(),
            error,
        })?;
        Self::start(file, path, linktype, nanos)
    }

    /// Like [`PcapOut::create`] for a file that must not exist yet (`O_CREAT | O_EXCL`: a
    /// link or anything else already at `path` is an error, never written through).
    pub fn create_new(path: &Path, linktype: u32, nanos: bool) -> Result<Self, PcapError> {
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|error| PcapError::Io {
                path: path.to_owned(),
                error,
            })?;
        Self::start(file, path, linktype, nanos)
    }

    fn start(file: File, path: &Path, linktype: u32, nanos: bool) -> Result<Self, PcapError> {
        let mut buf = Vec::with_capacity(OUT_BUFFER + 64 * 1024);
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        buf.extend_from_slice(&magic.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        buf.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        buf.extend_from_slice(&Self::SNAPLEN.to_le_bytes());
        buf.extend_from_slice(&linktype.to_le_bytes());
        let mut out = PcapOut {
            path: path.to_owned(),
            file,
            buf,
            nanos,
            written: 0,
            cut: 0,
            buffered: 0,
            durable: 0,
        };
        // The header at once: a reader of a fresh output finds a valid, empty capture.
        out.flush()?;
        Ok(out)
    }

    /// Whether a record with this timestamp can be written (classic pcap has 32 bits of
    /// seconds and a fraction below one second).
    pub fn can_hold(ts_sec: u64, ts_nsec: u32) -> bool {
        ts_sec <= u64::from(u32::MAX) && ts_nsec < 1_000_000_000
    }

    /// Writes the records gathered so far to the file. If that fails, they are lost (see
    /// [`PcapOut::buffered`] to count them first).
    pub fn flush(&mut self) -> Result<(), PcapError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all(&self.buf);
        let len = self.buf.len() as u64;
        self.buf.clear();
        self.buffered = 0;
        match r {
            Ok(()) => {
                self.durable += len;
                Ok(())
            }
            Err(error) => {
                // Part of the buffer may have reached the file (a disk that filled up, a
                // size limit): cut it back to the last whole record.
                let _ = self.file.set_len(self.durable);
                let _ = self.file.seek(io::SeekFrom::Start(self.durable));
                Err(PcapError::Io {
                    path: self.path.clone(),
                    error,
                })
            }
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records the file's new name after it was renamed.
    pub fn renamed(&mut self, path: &Path) {
        self.path = path.to_owned();
    }

    /// Records gathered and not yet written to the file.
    pub fn buffered(&self) -> u64 {
        self.buffered
    }

    /// How many records were cut to the snaplen.
    pub fn cut(&self) -> u64 {
        self.cut
    }

    /// Writes one record. Data beyond the snaplen is cut (and counted); `orig_len` is
    /// raised to the captured length if it is smaller. In a µs file the nanoseconds are
    /// truncated to microseconds.
    pub fn write(
        &mut self,
        ts_sec: u64,
        ts_nsec: u32,
        orig_len: u32,
        data: &[u8],
    ) -> Result<(), PcapError> {
        let record = self.written + 1;
        let unwritable = |reason: String| PcapError::Unwritable {
            path: self.path.clone(),
            record,
            reason,
        };
        let ts_sec = u32::try_from(ts_sec).map_err(|_| {
            unwritable(format!(
                "timestamp {ts_sec} s does not fit classic pcap's 32 bits"
            ))
        })?;
        if ts_nsec >= 1_000_000_000 {
            return Err(unwritable(format!("{ts_nsec} ns is not below one second")));
        }
        if data.len() > Self::SNAPLEN as usize {
            self.cut += 1;
        }
        let data = data.get(..Self::SNAPLEN as usize).unwrap_or(data);
        let incl_len = len_u32(data);
        let frac = if self.nanos { ts_nsec } else { ts_nsec / 1000 };
        for v in [ts_sec, frac, incl_len, orig_len.max(incl_len)] {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self.buf.extend_from_slice(data);
        self.written = record;
        self.buffered += 1;
        if self.buf.len() >= OUT_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes everything gathered to the file.
    pub fn finish(mut self) -> Result<(), PcapError> {
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_timestamps_in_any_resolution() {
        assert_eq!(
            split_timestamp(1_500_000, 1_000_000, 0),
            Some((1, 500_000_000))
        );
        assert_eq!(
            split_timestamp(1_000_000_001, 1_000_000_000, 0),
            Some((1, 1))
        );
        // 2^-10 s units: 1536 units = 1.5 s.
        assert_eq!(split_timestamp(1536, 1024, 0), Some((1, 500_000_000)));
        // 10^-12 s units keep the nanoseconds.
        assert_eq!(
            split_timestamp(2_000_000_123_999, 10u128.pow(12), 0),
            Some((2, 123))
        );
        assert_eq!(split_timestamp(5, 1, -3), Some((2, 0)));
        assert_eq!(split_timestamp(5, 1, -6), None);
        assert_eq!(split_timestamp(u64::MAX, 1, i64::MAX).map(|t| t.0), None);
        assert_eq!(split_timestamp(u64::MAX, 2u128.pow(127), 0), Some((0, 0)));
    }
}

//! Reading a capture as a stream: large reads into one buffer, records parsed where they lie
//! in it, and handed out one at a time, so that memory stays bounded whatever the capture's
//! size (a file, a FIFO, standard input).
//!
//! Rules: a record's bytes are valid until the next call that moves the reader; errors name
//! the record (counted from 1, as Wireshark numbers frames) and its byte offset from the
//! start of the stream.

use super::*;
use pcap_file::pcapng::PcapNgParser;
use std::io::Read;

/// The most a record (or a pcapng block) may claim: a length field gone wrong must not make
/// the reader allocate gigabytes before it finds out.
pub const MAX_RECORD: usize = 16 << 20;

/// How much is read at a time.
const READ_SIZE: usize = 1 << 20;

/// One record, borrowed from the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub ts_sec: u64,
    pub ts_nsec: u32,
    pub linktype: u32,
    /// Length on the wire; never less than `data.len()`.
    pub orig_len: u32,
    pub data: &'a [u8],
}

impl RecordRef<'_> {
    pub fn to_owned(&self) -> Record {
        Record {
            ts_sec: self.ts_sec,
            ts_nsec: self.ts_nsec,
            linktype: self.linktype,
            orig_len: self.orig_len,
            data: self.data.to_vec(),
        }
    }
}

enum Format {
    Pcap {
        endian: Endianness,
        nanos: bool,
        linktype: u32,
        snaplen: u32,
    },
    PcapNg {
        parser: Box<PcapNgParser>,
        endian: Endianness,
        interfaces: Vec<Interface>,
        blocks: u64,
    },
}

/// A capture being read (see the module comment).
pub struct CaptureReader {
    src: Box<dyn Read + Send>,
    path: PathBuf,
    buf: Vec<u8>,
    /// The unread bytes are `buf[pos..end]`; `base` is the stream offset of `buf[0]`.
    pos: usize,
    end: usize,
    base: u64,
    eof: bool,
    format: Format,
    records: u64,
    /// The record `peek` found: its fields, and where its data lies in `buf`.
    peeked: Option<(RecordRef<'static>, std::ops::Range<usize>, usize)>,
    /// Records longer than their capture's snaplen, so far.
    pub over_snaplen: Option<OverSnaplen>,
}

impl CaptureReader {
    /// Opens a capture file, or standard input for `-`.
    pub fn open(path: &Path) -> Result<CaptureReader, PcapError> {
        if path.as_os_str() == "-" {
            return CaptureReader::new(Box::new(io::stdin()), Path::new("<stdin>"));
        }
        let f = File::open(path).map_err(|error| PcapError::Io {
            path: path.to_owned(),
            error,
        })?;
        CaptureReader::new(Box::new(f), path)
    }

    /// Reads a capture from `src`; `path` names it in errors. The file header is read (and
    /// checked) here: a stream that is not a capture is refused after its first bytes.
    pub fn new(src: Box<dyn Read + Send>, path: &Path) -> Result<CaptureReader, PcapError> {
        let mut r = CaptureReader {
            src,
            path: path.to_owned(),
            buf: vec![0; READ_SIZE],
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
            format: Format::Pcap {
                endian: Endianness::Little,
                nanos: false,
                linktype: 1,
                snaplen: 0,
            },
            records: 0,
            peeked: None,
            over_snaplen: None,
        };
        r.format = r.header()?;
        Ok(r)
    }

    /// The stream offset of the next unread byte.
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Makes at least `n` unread bytes available, reading more (and growing the buffer for a
    /// long record) as needed; false if the stream ends first.
    fn fill(&mut self, n: usize) -> Result<bool, PcapError> {
        while self.end - self.pos < n {
            if self.eof {
                return Ok(false);
            }
            if self.pos > 0 {
                // Move the unread bytes to the front.
                self.buf.copy_within(self.pos..self.end, 0);
                self.base += self.pos as u64;
                self.end -= self.pos;
                self.pos = 0;
            }
            if self.buf.len() < n {
                self.buf.resize(n.next_power_of_two(), 0);
            }
            let got = loop {
                match self.src.read(&mut self.buf[self.end..]) {
                    Ok(got) => break got,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) => {
                        return Err(PcapError::Io {
                            path: self.path.clone(),
                            error,
                        })
                    }
                }
            };
            if got == 0 {
                self.eof = true;
            }
            self.end += got;
        }
        Ok(true)
    }

    fn truncated(&self, what: impl Into<String>, needed: u64) -> PcapError {
        PcapError::Truncated {
            path: self.path.clone(),
            what: what.into(),
            offset: self.offset(),
            needed,
            available: (self.end - self.pos) as u64,
        }
    }

    fn malformed(&self, what: impl Into<String>, reason: impl Into<String>) -> PcapError {
        PcapError::Malformed {
            path: self.path.clone(),
            what: what.into(),
            offset: self.offset(),
            reason: reason.into(),
        }
    }

    fn u32_at(&self, at: usize, endian: Endianness) -> u32 {
        let b: [u8; 4] = self.buf[self.pos + at..self.pos + at + 4]
            .try_into()
            .unwrap_or([0; 4]);
        match endian {
            Endianness::Big => u32::from_be_bytes(b),
            Endianness::Little => u32::from_le_bytes(b),
        }
    }

    /// Reads the file header (pcap) or the first section header (pcapng).
    fn header(&mut self) -> Result<Format, PcapError> {
        if !self.fill(4)? {
            return Err(self.truncated("file header", 4));
        }
        let magic: [u8; 4] = self.buf[..4].try_into().unwrap_or([0; 4]);
        if magic == PCAPNG_MAGIC {
            let len = self.block_len(None)?;
            let block = &self.buf[self.pos..self.pos + len];
            let (_, parser) = PcapNgParser::new(block)
                .map_err(|e| self.lib_error(e, "block 1 (section header)", len as u64))?;
            let endian = parser.section().endianness;
            self.pos += len;
            return Ok(Format::PcapNg {
                parser: Box::new(parser),
                endian,
                interfaces: Vec::new(),
                blocks: 1,
            });
        }
        if !PCAP_MAGICS.contains(&magic) {
            return Err(PcapError::NotACapture {
                path: self.path.clone(),
                magic: magic
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
        if !self.fill(24)? {
            return Err(self.truncated("file header", 24));
        }
        let (_, parser) = PcapParser::new(&self.buf[self.pos..self.pos + 24])
            .map_err(|e| self.lib_error(e, "file header", 24))?;
        let h = parser.header();
        self.pos += 24;
        Ok(Format::Pcap {
            endian: h.endianness,
            nanos: h.ts_resolution == TsResolution::NanoSecond,
            linktype: u32::from(h.datalink),
            snaplen: h.snaplen,
        })
    }

    /// Turns a pcap-file error into ours.
    fn lib_error(&self, err: LibError, what: &str, needed: u64) -> PcapError {
        match err {
            LibError::IncompleteBuffer => self.truncated(what, needed),
            other => self.malformed(what, other.to_string()),
        }
    }

    /// The length of the pcapng block at the read position (its whole block in the buffer
    /// after this), in the section's byte order (a section header says its own).
    fn block_len(&mut self, endian: Option<Endianness>) -> Result<usize, PcapError> {
        let label = |r: &Self| match &r.format {
            Format::PcapNg { blocks, .. } => format!("block {}", blocks + 1),
            Format::Pcap { .. } => "block 1 (section header)".to_string(),
        };
        if !self.fill(12)? {
            let avail = self.end - self.pos;
            if avail == 0 {
                return Ok(0);
            }
            let what = label(self);
            return Err(self.truncated(what, 12));
        }
        let is_shb = self.buf[self.pos..self.pos + 4] == PCAPNG_MAGIC;
        let endian = match endian {
            Some(e) if !is_shb => e,
            _ => match self.buf[self.pos + 8..self.pos + 12] {
                [0x1a, 0x2b, 0x3c, 0x4d] => Endianness::Big,
                _ => Endianness::Little,
            },
        };
        let len = self.u32_at(4, endian) as usize;
        if len > MAX_RECORD {
            let what = label(self);
            return Err(self.malformed(what, format!("a block of {len} bytes (more than 16 MiB)")));
        }
        if !self.fill(len.max(12))? {
            let what = label(self);
            return Err(self.truncated(what, len.max(12) as u64));
        }
        Ok(len.max(12))
    }

    /// The next record's fields, without moving past it (a replay merging several inputs
    /// looks at each one's next record before it takes one); None at the end.
    pub fn peek(&mut self) -> Result<Option<RecordRef<'_>>, PcapError> {
        if self.peeked.is_none() {
            self.peeked = self.parse_next()?;
        }
        Ok(self.peeked.as_ref().map(|(r, range, _)| RecordRef {
            data: &self.buf[range.clone()],
            ..*r
        }))
    }

    /// The next record (the one `peek` found, if it was called); None at the end.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<RecordRef<'_>>, PcapError> {
        let found = match self.peeked.take() {
            Some(p) => Some(p),
            None => self.parse_next()?,
        };
        let Some((r, range, len)) = found else {
            return Ok(None);
        };
        self.pos += len;
        // The bytes stay in the buffer until the reader moves again.
        Ok(Some(RecordRef {
            data: &self.buf[range],
            ..r
        }))
    }

    /// Moves past the record `peek` found.
    pub fn consume(&mut self) {
        if let Some((_, _, len)) = self.peeked.take() {
            self.pos += len;
        }
    }

    /// How many records have been read (or peeked).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes of the stream read so far (for progress).
    pub fn position(&self) -> u64 {
        self.offset()
    }

    /// The link type of the records so far (pcap: the file's; pcapng: the first
    /// interface's).
    pub fn linktype(&self) -> u32 {
        match &self.format {
            Format::Pcap { linktype, .. } => *linktype,
            Format::PcapNg { interfaces, .. } => interfaces.first().map_or(1, |i| i.linktype),
        }
    }

    /// Whether timestamps finer than 1 µs have been seen: a nanosecond pcap, or a pcapng
    /// interface described so far with a finer resolution.
    pub fn nanos(&self) -> bool {
        match &self.format {
            Format::Pcap { nanos, .. } => *nanos,
            Format::PcapNg { interfaces, .. } => interfaces.iter().any(|i| i.per_sec > 1_000_000),
        }
    }

    /// Parses the record at the read position without moving past it: its fields, the range
    /// of its data in the buffer, and its length in the stream.
    #[allow(clippy::type_complexity)]
    fn parse_next(
        &mut self,
    ) -> Result<Option<(RecordRef<'static>, std::ops::Range<usize>, usize)>, PcapError> {
        match self.format {
            Format::Pcap { .. } => self.pcap_record(),
            Format::PcapNg { .. } => self.pcapng_record(),
        }
    }

    fn pcap_record(
        &mut self,
    ) -> Result<Option<(RecordRef<'static>, std::ops::Range<usize>, usize)>, PcapError> {
        let Format::Pcap {
            endian,
            nanos,
            linktype,
            snaplen,
        } = self.format
        else {
            return Ok(None);
        };
        // Only an error names the record: no string per record.
        let record_no = self.records + 1;
        let what = || format!("record {record_no}");
        if !self.fill(16)? {
            if self.end == self.pos {
                return Ok(None);
            }
            return Err(self.truncated(what(), 16));
        }
        let ts_sec = self.u32_at(0, endian);
        let ts_frac = self.u32_at(4, endian);
        let incl = self.u32_at(8, endian) as usize;
        let orig_len = self.u32_at(12, endian);
        if incl > MAX_RECORD {
            return Err(self.malformed(
                what(),
                format!("a record of {incl} bytes (more than 16 MiB)"),
            ));
        }
        if !self.fill(16 + incl)? {
            return Err(self.truncated(what(), 16 + incl as u64));
        }
        let frac_limit = if nanos { 1_000_000_000 } else { 1_000_000 };
        if ts_frac >= frac_limit {
            let unit = if nanos { "nanoseconds" } else { "microseconds" };
            return Err(self.malformed(
                what(),
                format!("timestamp fraction {ts_frac} is not below one second in {unit}"),
            ));
        }
        self.records += 1;
        OverSnaplen::note(&mut self.over_snaplen, self.records, incl, snaplen);
        let start = self.pos + 16;
        Ok(Some((
            RecordRef {
                ts_sec: u64::from(ts_sec),
                ts_nsec: if nanos { ts_frac } else { ts_frac * 1000 },
                linktype,
                orig_len: orig_len.max(len_u32_of(incl)),
                data: &[],
            },
            start..start + incl,
            16 + incl,
        )))
    }

    fn pcapng_record(
        &mut self,
    ) -> Result<Option<(RecordRef<'static>, std::ops::Range<usize>, usize)>, PcapError> {
        loop {
            let endian = match &self.format {
                Format::PcapNg { endian, .. } => *endian,
                Format::Pcap { .. } => return Ok(None),
            };
            let len = self.block_len(Some(endian))?;
            if len == 0 {
                return Ok(None);
            }
            let Format::PcapNg {
                parser,
                endian,
                interfaces,
                blocks,
            } = &mut self.format
            else {
                return Ok(None);
            };
            *blocks += 1;
            let block_no = *blocks;
            let bytes = &self.buf[self.pos..self.pos + len];
            let parsed = parser.next_block(bytes).map(|(_, b)| b);
            let block = match parsed {
                Ok(b) => b,
                Err(e) => return Err(self.lib_error(e, &format!("block {block_no}"), len as u64)),
            };
            let record_no = self.records + 1;
            let what = || format!("record {record_no} (block {block_no})");
            // The obsolete Packet Block and the EPB carry a raw timestamp in if_tsresol
            // units; pcap-file's EPB wrongly calls them nanoseconds.
            let (interface_id, raw_ts, orig_len, data): (u32, u64, u32, &[u8]) = match block {
                Block::SectionHeader(shb) => {
                    *endian = shb.endianness;
                    interfaces.clear();
                    self.pos += len;
                    continue;
                }
                Block::InterfaceDescription(idb) => match interface(&idb) {
                    Ok(i) => {
                        interfaces.push(i);
                        self.pos += len;
                        continue;
                    }
                    Err(reason) => return Err(self.malformed(format!("block {block_no}"), reason)),
                },
                Block::EnhancedPacket(epb) => {
                    let raw = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
                    (
                        epb.interface_id,
                        raw,
                        epb.original_len,
                        borrow(&epb.data, bytes),
                    )
                }
                Block::Packet(pb) => (
                    u32::from(pb.interface_id),
                    pb.timestamp,
                    pb.original_len,
                    borrow(&pb.data, bytes),
                ),
                Block::SimplePacket(spb) => {
                    // No length field: the body is the packet plus padding, cut at
                    // orig_len and at interface 0's snaplen. No timestamp.
                    let snaplen = interfaces.first().map_or(0, |i| i.snaplen);
                    let mut cap = spb.original_len as usize;
                    if snaplen != 0 {
                        cap = cap.min(snaplen as usize);
                    }
                    let data = borrow(&spb.data, bytes);
                    (0, 0, spb.original_len, data.get(..cap).unwrap_or(data))
                }
                _ => {
                    self.pos += len;
                    continue;
                }
            };
            let count = interfaces.len();
            let Some(iface) = interfaces.get_mut(interface_id as usize) else {
                return Err(self.malformed(
                    what(),
                    format!("interface {interface_id} is not described (the section has {count})"),
                ));
            };
            iface.used = true;
            let Some((ts_sec, ts_nsec)) = split_timestamp(raw_ts, iface.per_sec, iface.offset_sec)
            else {
                return Err(self.malformed(what(), "timestamp out of range"));
            };
            let (linktype, snaplen) = (iface.linktype, iface.snaplen);
            // Where the data lies in the buffer: it is a slice of the block's bytes.
            let start = self.pos + (data.as_ptr() as usize - bytes.as_ptr() as usize);
            let n = data.len();
            self.records += 1;
            OverSnaplen::note(&mut self.over_snaplen, self.records, n, snaplen);
            return Ok(Some((
                RecordRef {
                    ts_sec,
                    ts_nsec,
                    linktype,
                    orig_len: orig_len.max(len_u32_of(n)),
                    data: &[],
                },
                start..start + n,
                len,
            )));
        }
    }

    /// Reads what is left into memory (tests and `bench`, which need every record at once).
    pub fn read_all(mut self) -> Result<Capture, PcapError> {
        let mut records = Vec::new();
        while let Some(r) = self.next()? {
            records.push(r.to_owned());
        }
        let nanos = match &self.format {
            Format::Pcap { nanos, .. } => *nanos,
            Format::PcapNg { interfaces, .. } => {
                interfaces.iter().any(|i| i.used && i.per_sec > 1_000_000)
            }
        };
        Ok(Capture {
            records,
            nanos,
            over_snaplen: self.over_snaplen,
        })
    }
}

/// The packet data pcap-file parsed, which borrows `block` (the block's bytes in the
/// reader's buffer); pcap-file gives it as a `Cow`, always borrowed for these blocks.
fn borrow<'a>(data: &std::borrow::Cow<'a, [u8]>, block: &'a [u8]) -> &'a [u8] {
    match data {
        std::borrow::Cow::Borrowed(b) => b,
        // Not produced for packet blocks; an empty record rather than a wrong one.
        std::borrow::Cow::Owned(_) => &block[..0],
    }
}

fn len_u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

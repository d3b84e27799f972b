//! Packet buffers with headroom, so that pushed headers (tunnel encapsulation) go in front of
//! the packet without moving its payload.

/// Room after the packet: 16 bytes of slack so that a wide load at the end of a header stays
/// inside the buffer, and room for a 16-byte AEAD tag appended in each of the five passes a
/// packet may make (`seal`).
pub const TAILROOM: usize = SLACK + 5 * 16;

/// The part of the tailroom that wide loads may read: zeroed after every load (and after a
/// tag that `seal` appends), so that what they read is the same every time.
pub const SLACK: usize = 16;

/// One packet: `buf[head..head + len]` is the data; `buf[..head]` is free headroom.
#[derive(Clone, Debug)]
pub struct PacketBuf {
    buf: Vec<u8>,
    head: usize,
    len: usize,
    /// The wire length (pcap's orig_len): larger than `len` for a capture cut by its snaplen.
    pub orig_len: u32,
}

impl PacketBuf {
    /// An empty buffer that can hold `max_len` bytes with `headroom` bytes in front.
    pub fn with_capacity(headroom: usize, max_len: usize) -> PacketBuf {
        PacketBuf {
            buf: vec![0; headroom + max_len + TAILROOM],
            head: headroom,
            len: 0,
            orig_len: 0,
        }
    }

    /// Loads `data` with `headroom` bytes in front, reusing the allocation when it is big enough.
    pub fn load(&mut self, headroom: usize, data: &[u8], orig_len: u32) {
        let need = headroom + data.len() + TAILROOM;
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        self.head = headroom;
        self.len = data.len();
        self.buf[headroom..headroom + data.len()].copy_from_slice(data);
        // Zero the slack so that wide loads past the end read deterministic bytes.
        self.buf[headroom + data.len()..headroom + data.len() + SLACK].fill(0);
        self.orig_len = orig_len.max(data.len() as u32);
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[self.head..self.head + self.len]
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.head..self.head + self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn headroom(&self) -> usize {
        self.head
    }

    /// The whole allocation and the data's start and length, for generated code that works
    /// in place.
    pub fn raw_parts_mut(&mut self) -> (&mut [u8], usize, usize) {
        (&mut self.buf, self.head, self.len)
    }

    /// Sets the data window after generated code moved it within the allocation. Returns
    /// false (and changes nothing) if the window does not fit. Inline: the switch loop calls
    /// it for every packet whose headers were pushed or popped.
    #[inline]
    pub fn set_window(&mut self, head: usize, len: usize) -> bool {
        self.set_window_from(head, len, self.orig_len, self.len)
    }

    /// `set_window` for a window that was `len_before` bytes with wire length `orig_before`
    /// just before this change (not necessarily this buffer's last window: generated code
    /// that recirculates moves the window several times and reports the last move).
    #[inline]
    pub fn set_window_from(
        &mut self,
        head: usize,
        len: usize,
        orig_before: u32,
        len_before: usize,
    ) -> bool {
        if head.checked_add(len).is_none_or(|end| end > self.buf.len()) {
            return false;
        }
        self.head = head;
        self.len = len;
        let orig = i64::from(orig_before) + len as i64 - len_before as i64;
        self.orig_len = orig.clamp(len as i64, i64::from(u32::MAX)) as u32;
        true
    }

    /// Replaces the first `consumed` bytes (the parsed headers) with `headers`, keeping the
    /// payload where it is. Returns false if there is not enough headroom.
    pub fn replace_front(&mut self, consumed: usize, headers: &[u8]) -> bool {
        let consumed = consumed.min(self.len);
        let payload_start = self.head + consumed;
        let Some(new_head) = payload_start.checked_sub(headers.len()) else {
            return false;
        };
        self.buf[new_head..payload_start].copy_from_slice(headers);
        self.set_window(new_head, self.len - consumed + headers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_pop_keep_the_payload_in_place() {
        let mut p = PacketBuf::with_capacity(64, 100);
        p.load(64, &[1, 2, 3, 4, 5, 6], 60);
        // Replace a 2-byte header with a 5-byte one: the payload 3..6 does not move.
        assert!(p.replace_front(2, &[9, 9, 9, 9, 9]));
        assert_eq!(p.data(), &[9, 9, 9, 9, 9, 3, 4, 5, 6]);
        assert_eq!(p.headroom(), 61);
        assert_eq!(p.orig_len, 63);
        // Pop it back to nothing.
        assert!(p.replace_front(5, &[]));
        assert_eq!(p.data(), &[3, 4, 5, 6]);
        assert_eq!(p.orig_len, 58);
        // Not enough headroom: refused, unchanged.
        assert!(!p.replace_front(0, &[0; 100]));
        assert_eq!(p.data(), &[3, 4, 5, 6]);
    }
}

/// What the switch knows of a packet besides its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketMeta {
    pub ingress_port: u16,
    pub ts_sec: u64,
    pub ts_nsec: u32,
}

/// The fate of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Forward(u16),
    /// The reason's id in the program's drop reason table.
    Drop(u16),
}

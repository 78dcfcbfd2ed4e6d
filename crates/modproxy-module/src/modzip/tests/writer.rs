//! A small zip writer for the tests: entries laid out exactly as given
//! (sizes, CRCs, flags and bodies may lie), optionally with ZIP64 records,
//! data before the zip, or a comment; and hand-made deflate streams.

use std::io::Cursor;

use super::super::{content, crc32};

/// One entry as the writer lays it out. Sizes and CRC are what gets
/// recorded (in both headers); `body` is what follows the local header.
#[derive(Clone)]
pub(super) struct Ent {
    pub(super) name: Vec<u8>,
    pub(super) method: u16,
    pub(super) flags: u16,
    pub(super) body: Vec<u8>,
    pub(super) crc32: u32,
    pub(super) uncompressed: u64,
    /// Written after the body (for flag bit 3).
    pub(super) descriptor: Vec<u8>,
}

pub(super) fn crc(data: &[u8]) -> u32 {
    let mut c = crc32::Crc32::default();
    c.update(data);
    c.sum()
}

impl Ent {
    pub(super) fn stored(name: &str, data: &[u8]) -> Ent {
        Ent::stored_raw(name.as_bytes(), data)
    }
    pub(super) fn stored_raw(name: &[u8], data: &[u8]) -> Ent {
        Ent {
            name: name.to_vec(),
            method: content::METHOD_STORE,
            flags: 0,
            body: data.to_vec(),
            crc32: crc(data),
            uncompressed: data.len() as u64,
            descriptor: Vec::new(),
        }
    }
    pub(super) fn deflated(name: &str, data: &[u8]) -> Ent {
        Ent {
            method: content::METHOD_DEFLATE,
            body: miniz_oxide::deflate::compress_to_vec(data, 6),
            ..Ent::stored(name, data)
        }
    }
    /// Moves the CRC to a data descriptor (with or without signature).
    pub(super) fn with_descriptor(mut self, signature: bool, crc32: u32) -> Ent {
        self.flags |= 0x8;
        if signature {
            self.descriptor
                .extend_from_slice(&0x0807_4b50u32.to_le_bytes());
        }
        self.descriptor.extend_from_slice(&crc32.to_le_bytes());
        self.descriptor
            .extend_from_slice(&(self.body.len() as u32).to_le_bytes());
        self.descriptor
            .extend_from_slice(&(self.uncompressed as u32).to_le_bytes());
        self
    }
}

#[derive(Default)]
pub(super) struct Layout {
    /// Bytes before the zip proper (a self-extractor stub, say); offsets
    /// stay relative to the zip proper, as when files are concatenated.
    pub(super) prepend: Vec<u8>,
    /// Write ZIP64 records: sizes and offsets in zip64 extra fields, and
    /// a zip64 end of central directory with its locator.
    pub(super) zip64: bool,
    pub(super) comment: Vec<u8>,
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn u64le(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(super) fn build_with(entries: &[Ent], layout: &Layout) -> Vec<u8> {
    let mut out = layout.prepend.clone();
    let base = out.len();
    let mut cd = Vec::new();
    for e in entries {
        let offset = (out.len() - base) as u64;
        let name_len = e.name.len() as u16;
        u32le(&mut out, 0x0403_4b50);
        u16le(&mut out, 20);
        u16le(&mut out, e.flags);
        u16le(&mut out, e.method);
        u16le(&mut out, 0);
        u16le(&mut out, 0x21);
        u32le(&mut out, e.crc32);
        u32le(&mut out, e.body.len() as u32);
        u32le(&mut out, e.uncompressed as u32);
        u16le(&mut out, name_len);
        u16le(&mut out, 0);
        out.extend_from_slice(&e.name);
        out.extend_from_slice(&e.body);
        out.extend_from_slice(&e.descriptor);

        let (csize, usize_, off32, extra) = if layout.zip64 {
            let mut extra = Vec::new();
            u16le(&mut extra, 1);
            u16le(&mut extra, 24);
            u64le(&mut extra, e.uncompressed);
            u64le(&mut extra, e.body.len() as u64);
            u64le(&mut extra, offset);
            (u32::MAX, u32::MAX, u32::MAX, extra)
        } else {
            (
                e.body.len() as u32,
                e.uncompressed as u32,
                offset as u32,
                Vec::new(),
            )
        };
        u32le(&mut cd, 0x0201_4b50);
        u16le(&mut cd, if layout.zip64 { 45 } else { 20 });
        u16le(&mut cd, if layout.zip64 { 45 } else { 20 });
        u16le(&mut cd, e.flags);
        u16le(&mut cd, e.method);
        u16le(&mut cd, 0);
        u16le(&mut cd, 0x21);
        u32le(&mut cd, e.crc32);
        u32le(&mut cd, csize);
        u32le(&mut cd, usize_);
        u16le(&mut cd, name_len);
        u16le(&mut cd, extra.len() as u16);
        u16le(&mut cd, 0);
        u16le(&mut cd, 0);
        u16le(&mut cd, 0);
        u32le(&mut cd, 0o100644 << 16);
        u32le(&mut cd, off32);
        cd.extend_from_slice(&e.name);
        cd.extend_from_slice(&extra);
    }
    let cd_offset = (out.len() - base) as u64;
    out.extend_from_slice(&cd);
    let n = entries.len() as u64;
    if layout.zip64 {
        let end64 = (out.len() - base) as u64;
        u32le(&mut out, 0x0606_4b50);
        u64le(&mut out, 44);
        u16le(&mut out, 45);
        u16le(&mut out, 45);
        u32le(&mut out, 0);
        u32le(&mut out, 0);
        u64le(&mut out, n);
        u64le(&mut out, n);
        u64le(&mut out, cd.len() as u64);
        u64le(&mut out, cd_offset);
        u32le(&mut out, 0x0706_4b50);
        u32le(&mut out, 0);
        u64le(&mut out, end64);
        u32le(&mut out, 1);
    }
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    let (records, size32, offset32) = if layout.zip64 {
        (0xffff, u32::MAX, u32::MAX)
    } else {
        (n as u16, cd.len() as u32, cd_offset as u32)
    };
    u16le(&mut out, records);
    u16le(&mut out, records);
    u32le(&mut out, size32);
    u32le(&mut out, offset32);
    u16le(&mut out, layout.comment.len() as u16);
    out.extend_from_slice(&layout.comment);
    out
}

pub(super) fn build(entries: &[Ent]) -> Vec<u8> {
    build_with(entries, &Layout::default())
}

/// A raw deflate stream (one fixed-Huffman block) of `len` zero bytes: a
/// literal, copies of 258 bytes at distance 1, literals for the rest; about
/// `len / 159` bytes.
pub(super) fn deflate_zeros(len: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        /// `len` bits of `v`, least significant first.
        fn put(&mut self, v: u64, len: u32) {
            self.acc |= v << self.n;
            self.n += len;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// A Huffman code, most significant bit first.
        fn code(&mut self, code: u64, len: u32) {
            let reversed = code.reverse_bits() >> (64 - len);
            self.put(reversed, len);
        }
    }
    let mut b = Bits {
        out: Vec::with_capacity(len / 150 + 300),
        acc: 0,
        n: 0,
    };
    b.put(1, 1); // final block
    b.put(1, 2); // fixed Huffman codes
    let matches = len.saturating_sub(1) / 258;
    for _ in 0..len - matches * 258 {
        b.code(0x30, 8); // literal 0
    }
    for _ in 0..matches {
        b.code(0b1100_0101, 8); // length 258 (symbol 285)
        b.code(0, 5); // distance 1
    }
    b.code(0, 7); // end of block
    b.put(0, 7);
    b.out
}

/// A cursor that counts the bytes read through it.
pub(super) struct Counting<'a> {
    pub(super) inner: Cursor<&'a [u8]>,
    pub(super) read: u64,
}

impl std::io::Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for Counting<'_> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn deflate_zeros_is_a_valid_stream() {
    for len in [0, 1, 2, 258, 259, 260, 1000, 100_000] {
        let out = miniz_oxide::inflate::decompress_to_vec(&deflate_zeros(len)).unwrap();
        assert_eq!(out, vec![0u8; len], "{len}");
    }
}

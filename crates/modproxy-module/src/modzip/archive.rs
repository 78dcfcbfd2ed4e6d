//! The zip container's directory, read the way Go's `archive/zip` reads
//! it: where the end of central directory record is searched for, the
//! ZIP64 records, the tolerance for prepended data (`baseOffset`), and how
//! many central directory headers are read. Entry contents are read by
//! `content.rs`.

use std::io::{self, Read, Seek, SeekFrom};

use super::ZipError;

const DIRECTORY_HEADER_SIGNATURE: u32 = 0x0201_4b50;
const DIRECTORY64_LOC_SIGNATURE: u32 = 0x0706_4b50;
const DIRECTORY64_END_SIGNATURE: u32 = 0x0606_4b50;
const DIRECTORY_HEADER_LEN: usize = 46;
const DIRECTORY_END_LEN: usize = 22;
const DIRECTORY64_LOC_LEN: usize = 20;
const DIRECTORY64_END_LEN: usize = 56;
const ZIP64_EXTRA_ID: u16 = 0x0001;
/// Bytes moved at a time; also the inflate window (a power of two, as
/// miniz_oxide's wrapping output buffer requires).
pub(super) const CHUNK: usize = 32 << 10;

/// One central directory entry (the fields Go's reader acts on).
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub name: Vec<u8>,
    pub flags: u16,
    pub method: u16,
    pub crc32: u32,
    pub compressed: u64,
    pub uncompressed: u64,
    /// Offset of the local header, `baseOffset` included (Go's int64).
    pub header_offset: i64,
}

impl Entry {
    pub(super) fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// The first `size` bytes of a seekable reader, read like Go's
/// `io.ReaderAt` over a file of that size.
pub(super) struct Source<'a, R> {
    r: &'a mut R,
    size: u64,
}

impl<'a, R: Read + Seek> Source<'a, R> {
    pub(super) fn new(r: &'a mut R, size: u64) -> Self {
        Source { r, size }
    }

    /// A reader of the bytes from `off` to at most `len` further (and
    /// never past `size`).
    pub(super) fn section(&mut self, off: u64, len: u64) -> io::Result<io::Take<&mut R>> {
        let len = len.min(self.size.saturating_sub(off));
        if len > 0 {
            self.r.seek(SeekFrom::Start(off))?;
        }
        Ok((&mut *self.r).take(len))
    }

    /// Fills as much of `buf` as the data at `off` allows; returns how much
    /// (less than `buf.len()` means the end was reached).
    pub(super) fn read_at(&mut self, off: i64, buf: &mut [u8]) -> Result<usize, ZipError> {
        let Ok(off) = u64::try_from(off) else {
            return Err(ZipError::Format("negative offset".into()));
        };
        let mut rd = self.section(off, buf.len() as u64)?;
        Ok(read_full(&mut rd, buf)?)
    }
}

/// Reads until `buf` is full or the reader ends; returns the count.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Little-endian field reader over a byte slice (Go's `readBuf`).
pub(super) struct Buf<'b>(pub(super) &'b [u8]);

impl<'b> Buf<'b> {
    pub(super) fn take(&mut self, n: usize) -> &'b [u8] {
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    pub(super) fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take(2).try_into().unwrap_or_default())
    }
    pub(super) fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap_or_default())
    }
    pub(super) fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().unwrap_or_default())
    }
}

/// Why reading one central directory header stopped (Go's error values).
enum HeaderError {
    /// No bytes at all (`io.EOF`).
    Eof,
    /// A partial header (`io.ErrUnexpectedEOF`).
    UnexpectedEof,
    /// Not a central directory header (`ErrFormat`).
    Format,
    Io(io::Error),
}

/// `readDirectoryHeader`.
fn read_directory_header(r: &mut impl Read) -> Result<Entry, HeaderError> {
    let mut fixed = [0u8; DIRECTORY_HEADER_LEN];
    match read_full(r, &mut fixed).map_err(HeaderError::Io)? {
        0 => return Err(HeaderError::Eof),
        DIRECTORY_HEADER_LEN => {}
        _ => return Err(HeaderError::UnexpectedEof),
    }
    let mut b = Buf(&fixed);
    if b.u32() != DIRECTORY_HEADER_SIGNATURE {
        return Err(HeaderError::Format);
    }
    b.take(4); // creator and reader versions
    let flags = b.u16();
    let method = b.u16();
    b.take(4); // modified time and date
    let crc32 = b.u32();
    let compressed32 = b.u32();
    let uncompressed32 = b.u32();
    let name_len = usize::from(b.u16());
    let extra_len = usize::from(b.u16());
    let comment_len = usize::from(b.u16());
    b.take(8); // disk number start, internal and external attributes
    let offset32 = b.u32();
    let mut var = vec![0u8; name_len + extra_len + comment_len];
    let got = read_full(r, &mut var).map_err(HeaderError::Io)?;
    if got == 0 && !var.is_empty() {
        return Err(HeaderError::Eof);
    }
    if got < var.len() {
        return Err(HeaderError::UnexpectedEof);
    }
    let mut entry = Entry {
        name: var[..name_len].to_vec(),
        flags,
        method,
        crc32,
        compressed: u64::from(compressed32),
        uncompressed: u64::from(uncompressed32),
        header_offset: i64::from(offset32),
    };
    let mut extra = Buf(&var[name_len..name_len + extra_len]);
    while extra.0.len() >= 4 {
        let tag = extra.u16();
        let size = usize::from(extra.u16());
        if extra.0.len() < size {
            break;
        }
        let mut field = Buf(extra.take(size));
        if tag != ZIP64_EXTRA_ID {
            continue;
        }
        // Consulted only for the fields whose 32-bit value is maxed out.
        if uncompressed32 == u32::MAX {
            if field.0.len() < 8 {
                return Err(HeaderError::Format);
            }
            entry.uncompressed = field.u64();
        }
        if compressed32 == u32::MAX {
            if field.0.len() < 8 {
                return Err(HeaderError::Format);
            }
            entry.compressed = field.u64();
        }
        if offset32 == u32::MAX {
            if field.0.len() < 8 {
                return Err(HeaderError::Format);
            }
            entry.header_offset = field.u64() as i64;
        }
    }
    Ok(entry)
}

/// `findSignatureInBlock`: the last end of central directory record whose
/// comment fits in the block.
fn find_signature_in_block(b: &[u8]) -> Option<usize> {
    let last = b.len().checked_sub(DIRECTORY_END_LEN)?;
    for i in (0..=last).rev() {
        if b[i..i + 4] == *b"PK\x05\x06" {
            let n = usize::from(u16::from_le_bytes([
                b[i + DIRECTORY_END_LEN - 2],
                b[i + DIRECTORY_END_LEN - 1],
            ]));
            if n + DIRECTORY_END_LEN + i > b.len() {
                // Truncated comment: Go gives up rather than look further.
                return None;
            }
            return Some(i);
        }
    }
    None
}

struct DirectoryEnd {
    records: u64,
    size: u64,
    offset: u64,
}

/// `readDirectoryEnd`: the directory end record and the base offset.
fn read_directory_end<R: Read + Seek>(
    src: &mut Source<'_, R>,
) -> Result<(DirectoryEnd, i64), ZipError> {
    let size = src.size;
    let mut found = None;
    for (i, want) in [1024u64, 65 * 1024].into_iter().enumerate() {
        let len = want.min(size);
        let mut buf = vec![0u8; len as usize];
        src.read_at((size - len) as i64, &mut buf)?;
        if let Some(p) = find_signature_in_block(&buf) {
            found = Some((buf, p, size - len + p as u64));
            break;
        }
        if i == 1 || len == size {
            break;
        }
    }
    let Some((buf, p, end_offset)) = found else {
        return Err(ZipError::Format(
            "no end of central directory record".into(),
        ));
    };
    let mut end_offset = end_offset as i64;
    let mut b = Buf(&buf[p + 4..]);
    b.take(4); // disk numbers
    b.take(2); // records on this disk
    let mut d = DirectoryEnd {
        records: u64::from(b.u16()),
        size: u64::from(b.u32()),
        offset: u64::from(b.u32()),
    };
    let comment_len = usize::from(b.u16());
    if comment_len > b.0.len() {
        return Err(ZipError::Format("invalid comment length".into()));
    }
    if d.records == 0xffff || d.size == 0xffff_ffff || d.offset == 0xffff_ffff {
        if let Some(p) = find_directory64_end(src, end_offset)? {
            end_offset = p;
            read_directory64_end(src, p, &mut d)?;
        }
    }
    let max = i64::MAX as u64;
    if d.size > max || d.offset > max {
        return Err(ZipError::Format(
            "central directory size or offset out of range".into(),
        ));
    }
    // Go's int64 arithmetic; it cannot wrap for an offset that passes.
    let mut base = end_offset
        .wrapping_sub(d.size as i64)
        .wrapping_sub(d.offset as i64);
    let start = base.wrapping_add(d.offset as i64);
    if start < 0 || start as u64 >= size {
        return Err(ZipError::Format(
            "central directory offset out of range".into(),
        ));
    }
    // Some writers record a base offset that is not really there: prefer
    // 0 when a central directory header sits at the recorded offset.
    if base > 0 {
        let mut rd = src.section(d.offset, u64::MAX)?;
        if read_directory_header(&mut rd).is_ok() {
            base = 0;
        }
    }
    Ok((d, base))
}

/// `findDirectory64End`: the offset recorded by a valid ZIP64 locator just
/// before the directory end record, if there is one.
fn find_directory64_end<R: Read + Seek>(
    src: &mut Source<'_, R>,
    end_offset: i64,
) -> Result<Option<i64>, ZipError> {
    let loc = end_offset - DIRECTORY64_LOC_LEN as i64;
    if loc < 0 {
        return Ok(None);
    }
    let mut buf = [0u8; DIRECTORY64_LOC_LEN];
    if src.read_at(loc, &mut buf)? < buf.len() {
        return Err(ZipError::Format("truncated zip64 locator".into()));
    }
    let mut b = Buf(&buf);
    if b.u32() != DIRECTORY64_LOC_SIGNATURE || b.u32() != 0 {
        return Ok(None);
    }
    let p = b.u64() as i64;
    if b.u32() != 1 || p < 0 {
        return Ok(None);
    }
    Ok(Some(p))
}

/// `readDirectory64End`.
fn read_directory64_end<R: Read + Seek>(
    src: &mut Source<'_, R>,
    offset: i64,
    d: &mut DirectoryEnd,
) -> Result<(), ZipError> {
    let mut buf = [0u8; DIRECTORY64_END_LEN];
    if src.read_at(offset, &mut buf)? < buf.len() {
        return Err(ZipError::Format(
            "truncated zip64 end of central directory record".into(),
        ));
    }
    let mut b = Buf(&buf);
    if b.u32() != DIRECTORY64_END_SIGNATURE {
        return Err(ZipError::Format(
            "bad zip64 end of central directory signature".into(),
        ));
    }
    b.take(12 + 4 + 4 + 8); // record size, versions, disk numbers, records on this disk
    d.records = b.u64();
    d.size = b.u64();
    d.offset = b.u64();
    Ok(())
}

/// `zip.NewReader`: the central directory entries, in order.
pub(super) fn read_central_directory<R: Read + Seek>(
    src: &mut Source<'_, R>,
) -> Result<Vec<Entry>, ZipError> {
    let (end, base) = read_directory_end(src)?;
    let start = base.wrapping_add(end.offset as i64) as u64;
    let mut rd = io::BufReader::with_capacity(CHUNK, src.section(start, u64::MAX)?);
    let mut entries = Vec::new();
    // The entry count is only 16 bits in the plain record: read headers
    // until one is bad, then compare counts modulo 65536, as Go does.
    loop {
        match read_directory_header(&mut rd) {
            Ok(mut e) => {
                e.header_offset = e.header_offset.wrapping_add(base);
                entries.push(e);
            }
            Err(HeaderError::Format | HeaderError::UnexpectedEof) => break,
            Err(HeaderError::Eof) => {
                return Err(ZipError::Format("truncated central directory".into()))
            }
            Err(HeaderError::Io(e)) => return Err(ZipError::Io(e)),
        }
    }
    if entries.len() as u16 != end.records as u16 {
        return Err(ZipError::Format(format!(
            "{} central directory entries, but the end record says {}",
            entries.len(),
            end.records
        )));
    }
    Ok(entries)
}

//! Entry contents, delivered the way Go's `archive/zip` delivers them:
//! the local header lookup, the two supported methods (stored and
//! deflate), the declared-size and CRC-32 checks of `checksumReader`, and
//! data descriptors.

use std::io::{self, Read, Seek};

use miniz_oxide::inflate::core::inflate_flags::{
    TINFL_FLAG_HAS_MORE_INPUT, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
};
use miniz_oxide::inflate::core::{decompress, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

use super::archive::{Buf, Entry, Source, CHUNK};
use super::crc32::Crc32;
use super::ZipError;

const FILE_HEADER_SIGNATURE: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR_SIGNATURE: u32 = 0x0807_4b50;
const FILE_HEADER_LEN: usize = 30;
/// General purpose flag bit 3: sizes and CRC follow the data.
const FLAG_DATA_DESCRIPTOR: u16 = 0x8;

pub(super) const METHOD_STORE: u16 = 0;
pub(super) const METHOD_DEFLATE: u16 = 8;

/// Reusable buffers for reading entries.
pub(super) struct Buffers {
    input: Vec<u8>,
    window: Vec<u8>,
    inflater: Box<DecompressorOxide>,
}

impl Buffers {
    pub(super) fn new() -> Self {
        Buffers {
            input: vec![0; CHUNK],
            window: vec![0; CHUNK],
            inflater: Box::default(),
        }
    }
}

/// Streams the content of `e` to `sink` the way Go's `File.Open` and its
/// `checksumReader` deliver it: a valid local header is required, content
/// beyond the declared uncompressed size is an error as soon as it
/// appears (so a lying header cannot make this read more than it
/// declares), and the CRC-32 (and data descriptor, if flagged) is checked
/// at the end. Directory entries (names ending in `/`) have no content.
pub(super) fn read_entry<R: Read + Seek>(
    src: &mut Source<'_, R>,
    e: &Entry,
    bufs: &mut Buffers,
    sink: &mut dyn FnMut(&[u8]),
) -> Result<(), ZipError> {
    let name = || e.display_name();
    // findBodyOffset
    let mut header = [0u8; FILE_HEADER_LEN];
    if src.read_at(e.header_offset, &mut header)? < FILE_HEADER_LEN {
        return Err(ZipError::Format(format!(
            "local header of {} is missing or truncated",
            name()
        )));
    }
    let mut b = Buf(&header);
    if b.u32() != FILE_HEADER_SIGNATURE {
        return Err(ZipError::Format(format!(
            "bad local header signature for {}",
            name()
        )));
    }
    b.take(22);
    let body = (FILE_HEADER_LEN + usize::from(b.u16()) + usize::from(b.u16())) as i64;

    if e.name.ends_with(b"/") {
        // Go tolerates a compressed size on directories, not content.
        if e.uncompressed != 0 {
            return Err(ZipError::Format(format!(
                "directory entry {} has content",
                name()
            )));
        }
        return Ok(());
    }
    if e.method != METHOD_STORE && e.method != METHOD_DEFLATE {
        return Err(ZipError::UnsupportedMethod {
            name: name(),
            method: e.method,
        });
    }
    let Some(start) = e
        .header_offset
        .checked_add(body)
        .and_then(|s| u64::try_from(s).ok())
    else {
        return Err(ZipError::Format(format!("bad offset for {}", name())));
    };
    // io.NewSectionReader: a size that does not fit in an int64 makes an
    // unbounded section.
    let section_len = i64::try_from(e.compressed).map_or(u64::MAX, |n| n as u64);

    let mut crc = Crc32::default();
    let mut nread: u64 = 0;
    let mut feed = |chunk: &[u8]| -> Result<(), ZipError> {
        crc.update(chunk);
        nread += chunk.len() as u64;
        if nread > e.uncompressed {
            return Err(ZipError::LargerThanDeclared {
                name: name(),
                declared: e.uncompressed,
            });
        }
        sink(chunk);
        Ok(())
    };
    let mut rd = src.section(start, section_len)?;
    if e.method == METHOD_STORE {
        loop {
            let n = match rd.read(&mut bufs.input) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(ZipError::Io(err)),
            };
            feed(&bufs.input[..n])?;
        }
    } else {
        inflate(&mut rd, bufs, &mut feed).map_err(|err| match err {
            InflateError::Sink(err) => err,
            InflateError::Io(err) => ZipError::Io(err),
            InflateError::Truncated => ZipError::UnexpectedEof { name: name() },
            InflateError::Corrupt => ZipError::CorruptDeflate { name: name() },
        })?;
    }
    if nread != e.uncompressed {
        return Err(ZipError::UnexpectedEof { name: name() });
    }
    if e.flags & FLAG_DATA_DESCRIPTOR != 0 {
        let desc = e
            .header_offset
            .wrapping_add(body)
            .wrapping_add(e.compressed as i64);
        check_data_descriptor(src, desc, e)?;
        if crc.sum() != e.crc32 {
            return Err(ZipError::Checksum { name: name() });
        }
    } else if e.crc32 != 0 && crc.sum() != e.crc32 {
        // Without a descriptor Go checks the CRC only if one was recorded.
        return Err(ZipError::Checksum { name: name() });
    }
    Ok(())
}

/// `readDataDescriptor`: its CRC-32 must be the central directory's.
fn check_data_descriptor<R: Read + Seek>(
    src: &mut Source<'_, R>,
    offset: i64,
    e: &Entry,
) -> Result<(), ZipError> {
    let truncated = || ZipError::UnexpectedEof {
        name: e.display_name(),
    };
    // The signature is optional; the descriptor is 12 or 16 bytes.
    let mut buf = [0u8; 16];
    let got = src.read_at(offset, &mut buf)?;
    let crc_at = if buf[..4] == DATA_DESCRIPTOR_SIGNATURE.to_le_bytes() {
        4
    } else {
        0
    };
    if got < crc_at + 12 {
        return Err(truncated());
    }
    let recorded = u32::from_le_bytes([
        buf[crc_at],
        buf[crc_at + 1],
        buf[crc_at + 2],
        buf[crc_at + 3],
    ]);
    if recorded != e.crc32 {
        return Err(ZipError::Checksum {
            name: e.display_name(),
        });
    }
    Ok(())
}

enum InflateError {
    Sink(ZipError),
    Io(io::Error),
    /// The compressed data ended before the deflate stream did.
    Truncated,
    Corrupt,
}

/// Inflates a raw deflate stream from `rd` through a 32 KiB window,
/// handing each piece of output to `feed` (which may stop it).
///
/// Until the window first fills, the output so far sits at its start, and
/// miniz_oxide is told the buffer does not wrap: that makes it refuse a
/// distance reaching back before the start of the output, as Go's flate
/// does ("corrupt input"). After that every distance deflate can express
/// is within the output.
fn inflate(
    rd: &mut impl Read,
    bufs: &mut Buffers,
    feed: &mut dyn FnMut(&[u8]) -> Result<(), ZipError>,
) -> Result<(), InflateError> {
    bufs.inflater.init();
    let (mut lo, mut hi) = (0usize, 0usize);
    let mut eof = false;
    let mut out_pos = 0usize;
    let mut wrapped = false;
    loop {
        if lo == hi && !eof {
            lo = 0;
            hi = loop {
                match rd.read(&mut bufs.input) {
                    Ok(n) => break n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return Err(InflateError::Io(err)),
                }
            };
            eof = hi == 0;
        }
        let mut flags = if eof { 0 } else { TINFL_FLAG_HAS_MORE_INPUT };
        if !wrapped {
            flags |= TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
        }
        let (status, used, produced) = decompress(
            &mut bufs.inflater,
            &bufs.input[lo..hi],
            &mut bufs.window,
            out_pos,
            flags,
        );
        lo += used;
        if produced > 0 {
            feed(&bufs.window[out_pos..out_pos + produced]).map_err(InflateError::Sink)?;
        }
        out_pos += produced;
        if out_pos == CHUNK {
            out_pos = 0;
            wrapped = true;
        }
        match status {
            TINFLStatus::Done => return Ok(()),
            TINFLStatus::NeedsMoreInput | TINFLStatus::HasMoreOutput => {}
            TINFLStatus::FailedCannotMakeProgress => return Err(InflateError::Truncated),
            _ => return Err(InflateError::Corrupt),
        }
    }
}

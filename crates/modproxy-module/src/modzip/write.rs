//! Writing module zips: the "stored" (uncompressed) layout the go command
//! accepts, for zips this proxy builds itself (tests, benchmarks, and
//! modules assembled from version control): all at once from memory
//! ([`stored_zip`]) or streamed entry by entry ([`ZipWriter`]).

use std::io::{self, Read, Write};

use super::crc32::Crc32;

/// A zip holding `files` (full names, e.g. `example.com/m@v1.0.0/go.mod`),
/// uncompressed, in the given order, written by [`ZipWriter`]. Names and
/// sizes must fit the classic (non-ZIP64) format: each file under 4 GiB,
/// fewer than 65 535 files.
pub fn stored_zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = ZipWriter::new(Vec::new());
    for (name, data) in files {
        w.add(name, &data[..], data.len() as u64)
            .expect("a zip in memory within the classic limits");
    }
    w.finish()
        .expect("a zip in memory within the classic limits")
}

const LOCAL_HEADER_SIGNATURE: u32 = 0x0403_4b50;
const CENTRAL_HEADER_SIGNATURE: u32 = 0x0201_4b50;
const END_SIGNATURE: u32 = 0x0605_4b50;
const DATA_DESCRIPTOR_SIGNATURE: u32 = 0x0807_4b50;
const LOCAL_HEADER_LEN: u64 = 30;
const CENTRAL_HEADER_LEN: u64 = 46;
const DATA_DESCRIPTOR_LEN: u64 = 16;
/// General purpose flag bit 3: the CRC-32 and sizes follow the data.
const FLAG_DATA_DESCRIPTOR: u16 = 0x0008;
/// General purpose flag bit 11: the name is UTF-8.
const FLAG_UTF8: u16 = 0x0800;
/// The most entries, and (exclusive) the largest size or offset, the
/// classic format holds: Go's `archive/zip` writer switches to ZIP64 from
/// 0xffff entries and from 0xffff_ffff bytes.
const MAX_ENTRIES: usize = 0xfffe;
const MAX_32: u64 = 0xffff_ffff;
/// Bytes copied at a time.
const COPY_BUFFER: usize = 32 << 10;

/// A zip written entry after entry to `W`, uncompressed ("stored"), then
/// finished with the central directory.
///
/// Each entry's size is given up front and its CRC-32 computed while its
/// content is copied, so nothing is buffered but a 32 KiB copy buffer and
/// the central directory: the local header has bit 3 set and zero CRC and
/// sizes, and a data descriptor (with signature) follows the content, as
/// Go's `archive/zip` writer does. Go's reader and [`check_zip`] use the
/// central directory's sizes and check the descriptor's CRC-32.
///
/// Only the classic (non-ZIP64) format is written: [`add`] refuses an
/// entry that would make more than 65 534 entries, or put a size or an
/// offset at 4 GiB or beyond (a module zip is at most 500 MiB).
///
/// Names are written as given: a module zip wants
/// `module@version/` + [`Selected::name`]. Once an error has happened
/// in the middle of an entry (reading its content, writing, or a size
/// other than the declared one), part of it is written: the writer
/// refuses any further work, and what `W` holds is not a valid zip.
///
/// [`check_zip`]: super::check_zip
/// [`add`]: ZipWriter::add
/// [`Selected::name`]: super::Selected::name
pub struct ZipWriter<W: Write> {
    w: W,
    /// Bytes written so far: the offset of the next local header.
    offset: u64,
    central: Vec<u8>,
    entries: usize,
    buf: Vec<u8>,
    /// An entry was left half written.
    broken: bool,
}

impl<W: Write> ZipWriter<W> {
    /// A writer that starts the zip at the current position of `w` (the
    /// offsets it records count from there).
    pub fn new(w: W) -> Self {
        ZipWriter {
            w,
            offset: 0,
            central: Vec::new(),
            entries: 0,
            buf: Vec::new(),
            broken: false,
        }
    }

    /// Writes the entry `name` with the content `data`, which must be
    /// exactly `size` bytes long: more (detected before anything past
    /// `size` is written) or fewer is an `InvalidData` error. Limits of the
    /// format are `InvalidInput` errors, reported before anything is
    /// written.
    pub fn add(&mut self, name: &str, data: impl Read, size: u64) -> io::Result<()> {
        if self.broken {
            return Err(broken());
        }
        let name_len = u16::try_from(name.len())
            .map_err(|_| invalid_input(format!("zip entry name too long: {} bytes", name.len())))?;
        if self.entries >= MAX_ENTRIES {
            return Err(invalid_input(format!(
                "too many zip entries (limit is {MAX_ENTRIES} without ZIP64)"
            )));
        }
        // Every term is below 2^32 (offset by the previous check), so the
        // sums cannot overflow.
        let size32 = size.min(MAX_32);
        let end =
            self.offset + LOCAL_HEADER_LEN + u64::from(name_len) + size32 + DATA_DESCRIPTOR_LEN;
        let central_len = self.central.len() as u64 + CENTRAL_HEADER_LEN + u64::from(name_len);
        if size >= MAX_32 || end >= MAX_32 || central_len >= MAX_32 {
            return Err(invalid_input(format!(
                "zip entry {name:?} ({size} bytes) would take the zip past 4 GiB, which needs ZIP64"
            )));
        }
        self.broken = true;
        let flags = if name.is_ascii() {
            FLAG_DATA_DESCRIPTOR
        } else {
            FLAG_DATA_DESCRIPTOR | FLAG_UTF8
        };
        let mut header = Vec::with_capacity(LOCAL_HEADER_LEN as usize + name.len());
        header.extend_from_slice(&LOCAL_HEADER_SIGNATURE.to_le_bytes());
        header.extend_from_slice(&20u16.to_le_bytes()); // version needed
        header.extend_from_slice(&flags.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes()); // method: stored
        header.extend_from_slice(&[0, 0, 0x21, 0]); // time, date (1980-01-01)
        header.extend_from_slice(&[0; 12]); // CRC-32 and sizes: in the descriptor
        header.extend_from_slice(&name_len.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes()); // extra length
        header.extend_from_slice(name.as_bytes());
        self.w.write_all(&header)?;

        let crc = self.copy(name, data, size)?;
        let size32 = size as u32;
        let mut descriptor = Vec::with_capacity(DATA_DESCRIPTOR_LEN as usize);
        descriptor.extend_from_slice(&DATA_DESCRIPTOR_SIGNATURE.to_le_bytes());
        descriptor.extend_from_slice(&crc.to_le_bytes());
        descriptor.extend_from_slice(&size32.to_le_bytes());
        descriptor.extend_from_slice(&size32.to_le_bytes());
        self.w.write_all(&descriptor)?;

        let c = &mut self.central;
        c.extend_from_slice(&CENTRAL_HEADER_SIGNATURE.to_le_bytes());
        c.extend_from_slice(&20u16.to_le_bytes()); // version made by (MS-DOS)
        c.extend_from_slice(&20u16.to_le_bytes()); // version needed
        c.extend_from_slice(&flags.to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes()); // method: stored
        c.extend_from_slice(&[0, 0, 0x21, 0]);
        c.extend_from_slice(&crc.to_le_bytes());
        c.extend_from_slice(&size32.to_le_bytes());
        c.extend_from_slice(&size32.to_le_bytes());
        c.extend_from_slice(&name_len.to_le_bytes());
        c.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attrs
        c.extend_from_slice(&0u32.to_le_bytes()); // external attrs
        c.extend_from_slice(&(self.offset as u32).to_le_bytes());
        c.extend_from_slice(name.as_bytes());
        self.offset = end;
        self.entries += 1;
        self.broken = false;
        Ok(())
    }

    /// Copies exactly `size` bytes of `data` to the zip; returns their
    /// CRC-32.
    fn copy(&mut self, name: &str, data: impl Read, size: u64) -> io::Result<u32> {
        if self.buf.is_empty() {
            self.buf = vec![0; COPY_BUFFER];
        }
        // One byte more than declared shows a longer content.
        let mut data = data.take(size + 1);
        let mut crc = Crc32::default();
        let mut copied = 0u64;
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            if copied + n as u64 > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("file {name:?} is larger than declared size ({size} bytes)"),
                ));
            }
            crc.update(&self.buf[..n]);
            self.w.write_all(&self.buf[..n])?;
            copied += n as u64;
        }
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "file {name:?} is smaller ({copied} bytes) than declared size ({size} bytes)"
                ),
            ));
        }
        Ok(crc.sum())
    }

    /// Writes the central directory and its end record, flushes, and
    /// returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.broken {
            return Err(broken());
        }
        // add keeps the entry count, the directory's offset and its size
        // within the classic format's fields.
        let count = self.entries as u16;
        let mut end = Vec::with_capacity(22);
        end.extend_from_slice(&END_SIGNATURE.to_le_bytes());
        end.extend_from_slice(&[0; 4]); // disk numbers
        end.extend_from_slice(&count.to_le_bytes());
        end.extend_from_slice(&count.to_le_bytes());
        end.extend_from_slice(&(self.central.len() as u32).to_le_bytes());
        end.extend_from_slice(&(self.offset as u32).to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes()); // comment length
        self.w.write_all(&self.central)?;
        self.w.write_all(&end)?;
        self.w.flush()?;
        Ok(self.w)
    }
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn broken() -> io::Error {
    io::Error::other("zip writer: an earlier entry was left half written")
}

#[cfg(test)]
mod tests {
    use sha2::Digest as _;

    use super::*;

    #[test]
    fn a_written_zip_passes_the_module_zip_check() {
        let files = vec![
            (
                "example.com/m@v1.0.0/go.mod".to_string(),
                b"module example.com/m\n".to_vec(),
            ),
            (
                "example.com/m@v1.0.0/m.go".to_string(),
                b"package m\n".to_vec(),
            ),
        ];
        let zip = stored_zip(&files);
        let report = crate::modzip::check_zip(
            &mut std::io::Cursor::new(&zip),
            zip.len() as u64,
            "example.com/m",
            "v1.0.0",
        )
        .unwrap();
        assert_eq!(report.files, 2);
        assert_eq!(
            report.gomod.as_deref(),
            Some(&b"module example.com/m\n"[..])
        );
    }

    fn check(zip: &[u8]) -> Result<crate::modzip::ZipReport, crate::modzip::ZipError> {
        crate::modzip::check_zip(
            &mut std::io::Cursor::new(zip),
            zip.len() as u64,
            "example.com/m",
            "v1.0.0",
        )
    }

    #[test]
    fn zip_writer_streams_entries_with_data_descriptors() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let files: Vec<(String, &[u8])> = vec![
            (
                "example.com/m@v1.0.0/go.mod".into(),
                b"module example.com/m\n",
            ),
            ("example.com/m@v1.0.0/big".into(), &big),
            ("example.com/m@v1.0.0/empty".into(), b""),
            ("example.com/m@v1.0.0/\u{4e16}.go".into(), b"package m\n"),
        ];
        let mut zw = ZipWriter::new(Vec::new());
        for (name, data) in &files {
            // A reader that hands out at most 1000 bytes at a time.
            let r = std::io::BufReader::with_capacity(1000, *data);
            zw.add(name, r, data.len() as u64).unwrap();
        }
        let zip = zw.finish().unwrap();
        let report = check(&zip).unwrap();
        let mut sums = files
            .iter()
            .map(|(n, d)| (n.clone(), sha2::Sha256::digest(d).into()))
            .collect();
        assert_eq!(report.h1, crate::modzip::hash1(&mut sums));
        assert_eq!(report.files, 4);
        assert_eq!(report.uncompressed, 200_000 + 21 + 10);
        // Bit 3 in the local header; the UTF-8 flag for the non-ASCII name.
        assert_eq!(zip[6..8], [0x08, 0]);
        let at = zip.len() - 22 - (46 + files[3].0.len());
        assert_eq!(zip[at..at + 4], 0x0201_4b50u32.to_le_bytes());
        assert_eq!(zip[at + 8..at + 10], [0x08, 0x08]);
    }

    #[test]
    fn zip_writer_without_entries() {
        let zip = ZipWriter::new(Vec::new()).finish().unwrap();
        assert_eq!(zip.len(), 22);
        assert_eq!(check(&zip).unwrap().files, 0);
    }

    #[test]
    fn zip_writer_refuses_a_wrong_size_and_then_everything() {
        let name = "example.com/m@v1.0.0/a";
        let mut zw = ZipWriter::new(Vec::new());
        let e = zw.add(name, &b"abcd"[..], 3).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("larger than declared size"), "{e}");
        assert!(zw.add(name, &b""[..], 0).is_err());
        assert!(zw.finish().is_err());

        let mut zw = ZipWriter::new(Vec::new());
        let e = zw.add(name, &b"ab"[..], 3).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("smaller"), "{e}");
        assert!(zw.finish().is_err());

        // Nothing past the declared size is written.
        let mut zw = ZipWriter::new(Vec::new());
        zw.add(name, &[7u8; 100][..], 40).unwrap_err();
        assert!(zw.w.len() < 30 + name.len() + 41);
    }

    #[test]
    fn zip_writer_refuses_what_needs_zip64_before_writing() {
        let mut zw = ZipWriter::new(Vec::new());
        let e = zw
            .add("a", std::io::empty(), u64::from(u32::MAX))
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        let e = zw.add("a", std::io::empty(), u64::MAX).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        let long = "a".repeat(70_000);
        let e = zw.add(&long, std::io::empty(), 0).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        // Refused before anything was written: the writer still works.
        assert!(zw.w.is_empty());
        zw.add("example.com/m@v1.0.0/a", &b"x"[..], 1).unwrap();
        assert_eq!(check(&zw.finish().unwrap()).unwrap().files, 1);

        let mut zw = ZipWriter::new(std::io::sink());
        for i in 0..MAX_ENTRIES {
            zw.add(&format!("f{i}"), std::io::empty(), 0).unwrap();
        }
        let e = zw.add("one-more", std::io::empty(), 0).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        zw.finish().unwrap();
    }
}

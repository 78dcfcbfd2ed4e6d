//! Writing module zips: the "stored" (uncompressed) layout the go command
//! accepts, for zips this proxy builds itself (tests, benchmarks, and
//! modules assembled from version control).

use super::crc32::Crc32;

/// A zip holding `files` (full names, e.g. `example.com/m@v1.0.0/go.mod`),
/// uncompressed, in the given order. Names and sizes must fit the classic
/// (non-ZIP64) format: each file under 4 GiB, fewer than 65 535 files.
pub fn stored_zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let mut crc = Crc32::default();
        crc.update(data);
        let crc = crc.sum();
        let offset = out.len() as u32;
        let (size, name_len) = (data.len() as u32, name.len() as u16);
        // Local file header.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&0u16.to_le_bytes()); // method: stored
        out.extend_from_slice(&[0, 0, 0x21, 0]); // time, date (1980-01-01)
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra length
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        // Central directory entry.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        central.extend_from_slice(&20u16.to_le_bytes()); // version needed
        central.extend_from_slice(&0u16.to_le_bytes()); // flags
        central.extend_from_slice(&0u16.to_le_bytes()); // method
        central.extend_from_slice(&[0, 0, 0x21, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attrs
        central.extend_from_slice(&0u32.to_le_bytes()); // external attrs
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let (cd_offset, cd_size, count) = (out.len() as u32, central.len() as u32, files.len() as u16);
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    out
}

#[cfg(test)]
mod tests {
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
}

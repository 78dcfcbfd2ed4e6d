//! CRC-32 (IEEE 802.3, reflected polynomial `0xedb88320`), as zip uses and
//! Go's `hash/crc32.NewIEEE` computes. Slicing-by-8 over const tables.

const POLY: u32 = 0xedb8_8320;

const TABLES: [[u32; 256]; 8] = make_tables();

const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            k += 1;
        }
        i += 1;
    }
    t
}

/// A running CRC-32.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Crc32 {
    /// The complemented running value (0 for the empty input).
    sum: u32,
}

impl Crc32 {
    pub(super) fn update(&mut self, data: &[u8]) {
        let mut crc = !self.sum;
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            crc = TABLES[7][(lo & 0xff) as usize]
                ^ TABLES[6][((lo >> 8) & 0xff) as usize]
                ^ TABLES[5][((lo >> 16) & 0xff) as usize]
                ^ TABLES[4][(lo >> 24) as usize]
                ^ TABLES[3][c[4] as usize]
                ^ TABLES[2][c[5] as usize]
                ^ TABLES[1][c[6] as usize]
                ^ TABLES[0][c[7] as usize];
        }
        for &b in chunks.remainder() {
            crc = TABLES[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
        }
        self.sum = !crc;
    }

    pub(super) fn sum(&self) -> u32 {
        self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::Crc32;

    fn crc(data: &[u8]) -> u32 {
        let mut c = Crc32::default();
        c.update(data);
        c.sum()
    }

    #[test]
    fn known_values() {
        assert_eq!(crc(b""), 0);
        assert_eq!(crc(b"a"), 0xe8b7_be43);
        assert_eq!(crc(b"123456789"), 0xcbf4_3926);
        assert_eq!(
            crc(b"The quick brown fox jumps over the lazy dog"),
            0x414f_a339
        );
    }

    #[test]
    fn incremental_matches_one_shot() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let want = crc(&data);
        for split in [0, 1, 7, 8, 9, 63, 500, 999, 1000] {
            let mut c = Crc32::default();
            c.update(&data[..split]);
            c.update(&data[split..]);
            assert_eq!(c.sum(), want, "split {split}");
        }
    }
}

//! GUIDs as GPT stores them: the text form's first three groups little-endian, the rest
//! as written.

use crate::error::DiskError;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Parses `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`.
    pub fn parse(text: &str) -> Result<Guid, DiskError> {
        let bad = || DiskError::BadGuid(text.to_string());
        let groups: Vec<&str> = text.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        if lengths != [8, 4, 4, 4, 12] {
            return Err(bad());
        }
        let hex: String = groups.concat();
        let mut raw = [0u8; 16];
        for (i, byte) in raw.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        // The text's bytes in order; GPT stores the first three groups reversed.
        raw[0..4].reverse();
        raw[4..6].reverse();
        raw[6..8].reverse();
        Ok(Guid(raw))
    }

    /// A random (version 4) GUID from 16 random bytes.
    pub fn from_random(mut bytes: [u8; 16]) -> Guid {
        // Version in the high nibble of the third group (stored little-endian: byte 7),
        // variant 10xx in byte 8.
        bytes[7] = (bytes[7] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Guid(bytes)
    }

    /// A random GUID from the kernel's generator.
    pub fn random() -> Result<Guid, DiskError> {
        use std::io::Read;
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|source| DiskError::Io {
                what: "reading /dev/urandom for a GUID".into(),
                source,
            })?;
        Ok(Guid::from_random(bytes))
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        for byte in &b[10..] {
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back_with_gpt_byte_order() {
        let esp = Guid::parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B").unwrap();
        assert_eq!(&esp.0[..4], &[0x28, 0x73, 0x2A, 0xC1]);
        assert_eq!(&esp.0[8..10], &[0xBA, 0x4B]);
        assert_eq!(esp.to_string(), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        assert_eq!(
            Guid::parse("c12a7328-f81f-11d2-ba4b-00a0c93ec93b").unwrap(),
            esp
        );
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "C12A7328F81F11D2BA4B00A0C93EC93B",
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93",
            "G12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            "é2A7328-F81F-11D2-BA4B-00A0C93EC93B",
        ] {
            assert!(Guid::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn random_guids_carry_version_4() {
        let g = Guid::from_random([0xff; 16]);
        assert_eq!(&g.to_string()[14..15], "4");
        assert_eq!(g.0[8] & 0xc0, 0x80);
    }
}

//! `write_files`: content and its encodings, modes, owners, and the target.

use super::*;

/// How a `write_files` entry's content is encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    #[default]
    Plain,
    Base64,
    Gzip,
    GzipBase64,
}

impl Encoding {
    fn from_name(s: &str) -> Result<Encoding, crate::ConfigError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "" | "text/plain" | "plain" => Encoding::Plain,
            "b64" | "base64" => Encoding::Base64,
            "gz" | "gzip" => Encoding::Gzip,
            "gz+base64" | "gzip+base64" | "gz+b64" | "gzip+b64" => Encoding::GzipBase64,
            _ => {
                return Err(crate::ConfigError::Invalid {
                    value: s.to_string(),
                    problem: "is not an encoding Corral knows; use b64, gzip or gz+b64 (or leave \
                              it out for plain text)"
                        .into(),
                })
            }
        })
    }
}

impl<'de> Deserialize<'de> for Encoding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = d.deserialize_any(ScalarVisitor(|s| Encoding::from_name(s).map(|_| ())))?;
        Encoding::from_name(&s).map_err(serde::de::Error::custom)
    }
}

/// The largest file `write_files` writes (after decoding).
pub const MAX_FILE: usize = 1 << 20;

/// Decodes `content` as `encoding` says.
pub fn decode(content: &str, encoding: Encoding) -> Result<Vec<u8>, crate::ConfigError> {
    let b64 = |s: &str| {
        let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(clean)
            .map_err(|e| crate::ConfigError::Content {
                encoding: "base64",
                detail: e.to_string(),
            })
    };
    let gunzip = |b: &[u8]| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .take(MAX_FILE as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| crate::ConfigError::Content {
                encoding: "gzip",
                detail: e.to_string(),
            })?;
        if out.len() > MAX_FILE {
            return Err(crate::ConfigError::ContentTooLarge { max: MAX_FILE });
        }
        Ok(out)
    };
    match encoding {
        Encoding::Plain => Ok(content.as_bytes().to_vec()),
        Encoding::Base64 => b64(content),
        Encoding::Gzip => gunzip(content.as_bytes()),
        Encoding::GzipBase64 => gunzip(&b64(content)?),
    }
}

/// A file mode: `"0644"`, `"644"`, `0o644` or the number itself (`420`), as cloud-init
/// reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u32),
            S(String),
        }
        let bad = |what: String| {
            serde::de::Error::custom(format!(
                "{what} is not a file mode; write it in octal as a string, like \"0644\""
            ))
        };
        let mode = match Raw::deserialize(d).map_err(|_| bad("this".into()))? {
            Raw::N(n) => n,
            Raw::S(s) => {
                let digits = s.trim().trim_start_matches("0o");
                u32::from_str_radix(digits, 8).map_err(|_| bad(format!("{s:?}")))?
            }
        };
        if mode > 0o7777 {
            return Err(bad(format!("{mode:o} (octal)")));
        }
        Ok(Mode(mode))
    }
}

/// One `write_files` entry, its content decoded and checked as it is read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawWriteFile")]
pub struct WriteFile {
    pub path: AbsPath,
    /// The decoded bytes.
    pub content: Vec<u8>,
    /// Default 0644.
    pub permissions: Mode,
    /// `user`, `user:group`, or numeric ids; default root.
    pub owner: Option<String>,
    pub append: bool,
    /// A service to write the file into, instead of the host.
    pub container: Option<ServiceName>,
}

#[derive(Deserialize)]
pub(crate) struct RawWriteFile {
    path: AbsPath,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    encoding: Encoding,
    #[serde(default)]
    permissions: Option<Mode>,
    #[serde(default)]
    owner: Option<Scalar>,
    #[serde(default)]
    append: bool,
    #[serde(default)]
    container: Option<ServiceName>,
}

impl TryFrom<RawWriteFile> for WriteFile {
    type Error = crate::ConfigError;

    fn try_from(raw: RawWriteFile) -> Result<Self, crate::ConfigError> {
        let bad = |problem: String| crate::ConfigError::WriteFile {
            path: raw.path.to_string(),
            problem,
        };
        let content = decode(raw.content.as_deref().unwrap_or_default(), raw.encoding)
            .map_err(|e| bad(e.to_string()))?;
        if content.len() > MAX_FILE {
            return Err(bad(format!("more than {MAX_FILE} bytes")));
        }
        if let Some(owner) = &raw.owner {
            let ok = owner.0.split(':').count() <= 2
                && owner.0.split(':').all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                });
            if !ok {
                return Err(bad(format!(
                    "owner {:?} is not `user` or `user:group`",
                    owner.0
                )));
            }
        }
        Ok(WriteFile {
            path: raw.path,
            content,
            permissions: raw.permissions.unwrap_or(Mode(0o644)),
            owner: raw.owner.map(|o| o.0),
            append: raw.append,
            container: raw.container,
        })
    }
}

//! Incremental builds: a stage records a fingerprint of its inputs next to its output and
//! is skipped when the fingerprint is unchanged and the output still exists.

use crate::error::{BuildError, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

/// A fingerprint under construction: labelled inputs, order-sensitive.
#[derive(Default)]
pub struct Fingerprint(Sha256);

impl Fingerprint {
    pub fn new(stage: &str) -> Self {
        let mut f = Fingerprint::default();
        f.text("stage", stage);
        f
    }
    pub fn text(&mut self, label: &str, value: &str) -> &mut Self {
        self.0.update(label.as_bytes());
        self.0.update([0]);
        self.0.update(value.len().to_le_bytes());
        self.0.update(value.as_bytes());
        self
    }
    /// A file by content. A missing file hashes as missing, so creating it is a change.
    pub fn file(&mut self, path: &Path) -> Result<&mut Self> {
        let content = if path.exists() {
            crate::apt::sha256_file(path)?
        } else {
            "missing".into()
        };
        Ok(self.text(&path.to_string_lossy(), &content))
    }
    pub fn finish(&self) -> String {
        hex::encode(self.0.clone().finalize())
    }
}

fn stamp_of(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".stamp");
    output.with_file_name(name)
}

/// Whether `output` was made from inputs with this fingerprint.
pub fn fresh(output: &Path, fingerprint: &str) -> bool {
    output.exists()
        && fs::read_to_string(stamp_of(output))
            .map(|s| s.trim() == fingerprint)
            .unwrap_or(false)
}

/// Records that `output` was made from inputs with this fingerprint.
pub fn mark(output: &Path, fingerprint: &str) -> Result<()> {
    let stamp = stamp_of(output);
    fs::write(&stamp, fingerprint).map_err(BuildError::write(stamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_is_fresh_only_for_the_same_inputs_and_an_existing_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("root.squashfs");
        let input = dir.path().join("input");
        fs::write(&input, "one").expect("write");
        let fp = |_: ()| {
            Fingerprint::new("squashfs")
                .file(&input)
                .expect("hash")
                .finish()
        };
        let first = fp(());
        assert!(!fresh(&out, &first), "no output yet");
        fs::write(&out, "image").expect("write");
        mark(&out, &first).expect("mark");
        assert!(fresh(&out, &first));
        fs::write(&input, "two").expect("write");
        assert!(!fresh(&out, &fp(())), "input changed");
        fs::remove_file(&out).expect("rm");
        assert!(!fresh(&out, &first), "output gone");
    }

    #[test]
    fn labels_separate_values() {
        let a = Fingerprint::new("s").text("a", "bc").finish();
        let b = Fingerprint::new("s").text("ab", "c").finish();
        assert_ne!(a, b);
    }
}

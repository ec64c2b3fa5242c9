//! build/rootfs.yml: which Debian packages and kernel modules make the root image.

use crate::error::{BuildError, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RootfsSpec {
    /// The Debian suite of the root's packages.
    #[serde(default)]
    pub suite: crate::apt::Suite,
    pub packages: Vec<String>,
    #[serde(default)]
    pub skip: Vec<String>,
    /// Packages named only to settle a dependency's alternatives; never unpacked.
    #[serde(default)]
    pub choose: Vec<String>,
    /// Paths (relative to the root) removed after the packages are unpacked.
    #[serde(default)]
    pub drop: Vec<String>,
    /// Symlinks made after the packages, as images have them.
    #[serde(default)]
    pub links: Vec<crate::image::LinkSpec>,
    pub kernel: KernelSpec,
    /// Packages of the same suite that make the boot media (GRUB, isolinux, mke2fs),
    /// unpacked into a folder on the build host and run from there; not in the root.
    #[serde(default)]
    pub bootloaders: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KernelSpec {
    pub flavour: String,
    pub boot: Vec<String>,
    pub load: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
}

impl KernelSpec {
    /// The Debian metapackage for the flavour: cloud -> linux-image-cloud-amd64,
    /// generic -> linux-image-amd64.
    pub fn metapackage(&self) -> Result<String> {
        match self.flavour.as_str() {
            "cloud" => Ok("linux-image-cloud-amd64".into()),
            "generic" => Ok("linux-image-amd64".into()),
            other => Err(BuildError::Spec {
                path: "build/rootfs.yml".into(),
                detail: format!("kernel.flavour is {other:?}; use cloud or generic"),
            }),
        }
    }
}

impl RootfsSpec {
    pub fn load(path: &Path) -> Result<RootfsSpec> {
        let text = std::fs::read_to_string(path).map_err(BuildError::read(path))?;
        let spec: RootfsSpec = yaml_serde::from_str(&text).map_err(|e| BuildError::Spec {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        spec.kernel.metapackage()?;
        for l in &spec.links {
            l.check().map_err(|detail| BuildError::Spec {
                path: path.to_path_buf(),
                detail,
            })?;
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_spec_parses() {
        let spec = RootfsSpec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs.yml"))
            .expect("build/rootfs.yml parses");
        assert!(spec.packages.contains(&"docker.io".to_string()));
        assert_eq!(
            spec.kernel.metapackage().expect("flavour"),
            "linux-image-cloud-amd64"
        );
        assert!(spec.kernel.boot.contains(&"squashfs".to_string()));
        assert!(spec
            .links
            .iter()
            .any(|l| l.path == "/usr/sbin/iptables" && l.target == "xtables-nft-multi"));
    }

    #[test]
    fn unknown_keys_and_flavours_are_rejected_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("rootfs.yml");
        std::fs::write(
            &p,
            "packages: []\nkernel: {flavour: rt, boot: [], load: []}\n",
        )
        .expect("write");
        let err = RootfsSpec::load(&p).expect_err("rt is not a flavour");
        assert!(err.to_string().contains("use cloud or generic"), "{err}");
        std::fs::write(
            &p,
            "packages: []\npackagez: []\nkernel: {flavour: cloud, boot: [], load: []}\n",
        )
        .expect("write");
        let err = RootfsSpec::load(&p).expect_err("typo");
        assert!(err.to_string().contains("packagez"), "{err}");
        std::fs::write(
            &p,
            "packages: []\nlinks: [{path: usr/sbin/x, target: y}]\nkernel: {flavour: cloud, boot: [], load: []}\n",
        )
        .expect("write");
        let err = RootfsSpec::load(&p).expect_err("relative link");
        assert!(err.to_string().contains("must be absolute"), "{err}");
    }
}

//! `mounts`: cloud-init's four-field entries.

use super::*;

/// One `mounts` entry: `[device, mount point, type, options]`; type defaults to `auto`
/// and options to `defaults` (cloud-init's fstab columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub target: AbsPath,
    pub fstype: String,
    pub options: String,
}

impl<'de> Deserialize<'de> for Mount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hint = "a mount is a list: [device, mount point, type, options], like [/dev/vdb, /mnt/data, ext4, defaults]";
        let fields: Vec<Option<Scalar>> =
            Vec::deserialize(d).map_err(|_| serde::de::Error::custom(hint))?;
        let field = |i: usize| {
            fields
                .get(i)
                .cloned()
                .flatten()
                .map(|s| s.0)
                .filter(|s| !s.trim().is_empty())
        };
        let (Some(device), Some(target)) = (field(0), field(1)) else {
            return Err(serde::de::Error::custom(hint));
        };
        if !target.starts_with('/') || target.split('/').any(|p| p == "..") {
            return Err(serde::de::Error::custom(format!(
                "mount point {target:?} is not an absolute path"
            )));
        }
        Ok(Mount {
            device,
            target: AbsPath(target),
            fstype: field(2).unwrap_or_else(|| "auto".into()),
            options: field(3).unwrap_or_else(|| "defaults".into()),
        })
    }
}

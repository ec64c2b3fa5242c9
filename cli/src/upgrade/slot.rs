//! Writing a release into the inactive slot: a new ext4 filesystem labelled as the
//! slot, each verified file copied in while its sha256 is taken again and compared with
//! the signed metadata's (the file on the state partition could have changed since it
//! was verified), each file synced, the filesystem unmounted. The boot state marks the
//! slot empty before this starts and on trial only after it ends, so a write cut short
//! is never booted.

use super::machine::SCRATCH;
use super::UpgradeError;
use crate::install::host::Host;
use corral_update::bundle::Blob;
use corral_update::release::Part;
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

fn sys(what: String) -> impl FnOnce(std::io::Error) -> UpgradeError {
    move |e| UpgradeError::System(format!("{what}: {e}"))
}

/// Copies `blob` to `to`, checking its sha256 against `part`'s.
fn copy_checked(
    blob: &Blob,
    part: &Part,
    to: &Path,
    bar: &ProgressBar,
) -> Result<(), UpgradeError> {
    let mut from =
        fs::File::open(&blob.file).map_err(sys(format!("opening {}", blob.file.display())))?;
    from.seek(SeekFrom::Start(blob.offset))
        .map_err(sys(format!("reading {}", blob.file.display())))?;
    let mut from = from.take(blob.size);
    let mut out = fs::File::create(to).map_err(sys(format!("writing {}", to.display())))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut copied = 0u64;
    loop {
        let n = from
            .read(&mut buf)
            .map_err(sys(format!("reading {}", blob.file.display())))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(sys(format!("writing {}", to.display())))?;
        copied += n as u64;
        bar.inc(n as u64);
    }
    out.sync_all()
        .map_err(sys(format!("syncing {}", to.display())))?;
    let digest: [u8; 32] = hash.finalize().into();
    if copied != part.size || digest != part.sha256 {
        return Err(UpgradeError::User(format!(
            "{} changed after it was verified ({} bytes, sha256 {}; the metadata says {} bytes, {}); \
             the slot was left unbootable; run the upgrade again",
            part.target,
            copied,
            hex::encode(digest),
            part.size,
            hex::encode(part.sha256)
        )));
    }
    Ok(())
}

/// Makes the slot's filesystem on `device` (labelled `label`) and fills it.
pub fn write(
    host: &dyn Host,
    device: &Path,
    label: &str,
    files: &[(Part, Blob)],
    bar: &ProgressBar,
) -> Result<(), UpgradeError> {
    let dev = device.to_string_lossy();
    host.run("mkfs.ext4", &["-q", "-F", "-L", label, &dev])
        .map_err(sys(format!("making the filesystem on {dev}")))?;
    let dir = Path::new(SCRATCH).join("slot");
    fs::create_dir_all(&dir).map_err(sys(format!("making {}", dir.display())))?;
    host.mount(device, &dir, "ext4", false)
        .map_err(sys(format!("mounting {dev}")))?;
    let mut result = Ok(());
    for (part, blob) in files {
        bar.set_message(part.name.clone());
        result = copy_checked(blob, part, &dir.join(&part.name), bar);
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(sys(format!("syncing {}", dir.display())));
    }
    host.sync();
    if let Err(e) = host.unmount(&dir) {
        log::warn!("unmounting {}: {e}", dir.display());
    }
    result
}

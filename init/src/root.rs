//! The root filesystem: the read-only squashfs image (from the initrd or the boot medium,
//! `medium.rs`), under a tmpfs upper layer, as one overlay; then the switch into it. The
//! lower and upper layers are mounted under /run/corral so they stay visible after the
//! switch.

use crate::error::{InitError, Result};
use crate::mounts::MOVED_AT_SWITCH;
use corral_host::sys::Sys;
use nix::mount::MsFlags;
use std::path::{Path, PathBuf};

/// Where the new root is assembled before the switch.
pub const NEW_ROOT: &str = "/sysroot";
pub use corral_host::layout::LOWER;
const RW: &str = "/run/corral/rw";

/// Mounts the root image `image` read-only with a tmpfs upper layer at [`NEW_ROOT`].
pub fn assemble(sys: &dyn Sys, image: &Path) -> Result<()> {
    if !sys.exists(image) {
        return Err(InitError::MissingRootImage {
            path: image.to_path_buf(),
        });
    }
    for dir in [LOWER, RW, NEW_ROOT] {
        sys.mkdir_all(Path::new(dir))?;
    }
    let device = sys.attach_loop(image)?;
    let device = device.to_string_lossy();
    sys.mount(
        Some(&device),
        Path::new(LOWER),
        Some("squashfs"),
        MsFlags::MS_RDONLY,
        None,
    )?;
    sys.mount(
        Some("root-rw"),
        Path::new(RW),
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    )?;
    let upper = Path::new(RW).join("upper");
    let work = Path::new(RW).join("work");
    sys.mkdir_all(&upper)?;
    sys.mkdir_all(&work)?;
    let options = format!(
        "lowerdir={LOWER},upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    sys.mount(
        Some("overlay"),
        Path::new(NEW_ROOT),
        Some("overlay"),
        MsFlags::empty(),
        Some(&options),
    )?;
    Ok(())
}

/// Moves the API filesystems into the new root and switches into it, then makes `/`
/// recursively shared (container runtimes rely on mount propagation from the host).
pub fn switch(sys: &dyn Sys) -> Result<()> {
    for dir in MOVED_AT_SWITCH {
        let target: PathBuf = Path::new(NEW_ROOT).join(dir.trim_start_matches('/'));
        sys.mkdir_all(&target)?;
        sys.mount(Some(dir), &target, None, MsFlags::MS_MOVE, None)?;
    }
    sys.switch_root(Path::new(NEW_ROOT))?;
    sys.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_SHARED,
        None,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::medium::ROOT_IMAGE;
    use corral_host::sys::fake::{Call, FakeSys};

    #[test]
    fn assemble_stacks_tmpfs_over_the_squashfs_image() {
        let sys = FakeSys::default().with_file(ROOT_IMAGE, "");
        assemble(&sys, Path::new(ROOT_IMAGE)).expect("assemble");
        let calls = sys.calls();
        assert!(calls.contains(&Call::AttachLoop(ROOT_IMAGE.into())));
        let overlay = calls
            .iter()
            .find_map(|c| match c {
                Call::Mount {
                    fstype: Some(t),
                    target,
                    data,
                    ..
                } if t == "overlay" => Some((target.clone(), data.clone())),
                _ => None,
            })
            .expect("overlay mounted");
        assert_eq!(overlay.0, Path::new(NEW_ROOT));
        assert_eq!(
            overlay.1.as_deref(),
            Some("lowerdir=/run/corral/lower,upperdir=/run/corral/rw/upper,workdir=/run/corral/rw/work")
        );
        let squashfs = calls.iter().any(|c| {
            matches!(c,
            Call::Mount { fstype: Some(t), flags, source: Some(s), .. }
                if t == "squashfs" && flags.contains(MsFlags::MS_RDONLY) && s == "/dev/loop0")
        });
        assert!(squashfs, "{calls:?}");
    }

    #[test]
    fn assemble_without_the_image_says_how_to_fix_it() {
        let err = assemble(&FakeSys::default(), Path::new(ROOT_IMAGE)).expect_err("no image");
        assert!(err.to_string().contains("make dist"), "{err}");
    }

    #[test]
    fn switch_moves_api_filesystems_before_switching_and_shares_root() {
        let sys = FakeSys::default();
        switch(&sys).expect("switch");
        let calls = sys.calls();
        let moved: Vec<_> = calls
            .iter()
            .filter_map(|c| match c {
                Call::Mount { flags, target, .. } if *flags == MsFlags::MS_MOVE => {
                    Some(target.clone())
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            moved,
            [
                "/sysroot/dev",
                "/sysroot/proc",
                "/sysroot/sys",
                "/sysroot/run"
            ]
            .map(PathBuf::from)
        );
        let switch_at = calls
            .iter()
            .position(|c| *c == Call::SwitchRoot(NEW_ROOT.into()));
        let last = calls.last().expect("calls");
        assert_eq!(switch_at, Some(calls.len() - 2));
        assert!(matches!(last, Call::Mount { flags, .. } if flags.contains(MsFlags::MS_SHARED)));
    }
}

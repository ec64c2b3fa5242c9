//! The Debian 13 baseline of `make bench`: what a cloud user would run instead of
//! Corral. mmdebstrap makes Debian 13 with systemd, openssh-server and docker.io and
//! Debian 13's cloud kernel package (`linux-image-<release>-cloud-amd64`, the one
//! Corral's vmlinuz comes from: the same file), with the initramfs Debian's own
//! initramfs-tools makes, into a raw ext4 image. The benchmark boots that kernel and
//! initramfs with the same QEMU flags and Corral's kernel command line plus `root=`.
//!
//! Like Corral it gets an ssh key (root's authorized_keys) and an image to preload, which
//! a systemd unit loads once docker.service runs, as Corral's manager loads
//! `/var/lib/corral/preload/docker/`. The image is made once and kept while its recipe
//! ([`Recipe::stamp`]) is unchanged. mmdebstrap and mkfs.ext4 of a root-owned tree need
//! root: as root it runs directly, otherwise through sudo.

use crate::error::{BuildError, Result};
use crate::{host, rootfs};
use corral_harness::bench::sh_quote;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's archive, as Corral's packages come from it (the kernel is in security).
pub const SOURCES: &[&str] = &[
    "deb http://deb.debian.org/debian trixie main",
    "deb http://deb.debian.org/debian trixie-updates main",
    "deb http://deb.debian.org/debian-security trixie-security main",
];

/// The packages on top of mmdebstrap's `apt` variant (Essential plus apt, no
/// recommends): a small Debian 13 server with systemd, sshd and Docker. `{kernel}` is
/// Corral's kernel release.
pub const PACKAGES: &[&str] = &[
    "systemd-sysv",
    "udev",
    "dbus",
    "openssh-server",
    "docker.io",
    // What `apt install docker.io` brings by recommendation and a cloud user needs: the
    // docker command (Debian 13 ships it apart from the daemon), the CA bundle for
    // registries, and AppArmor (without it, Debian's kernel with AppArmor on and dockerd
    // refuse to start containers). Its other recommends (git, needrestart,
    // dbus-user-session, xz-utils) run nothing at boot and are left out.
    "docker-cli",
    "ca-certificates",
    "apparmor",
    "iproute2",
    "procps",
    "kmod",
    "initramfs-tools",
    "linux-image-{kernel}",
];

/// Where the preloaded archive goes in the image.
const PRELOAD: &str = "var/lib/bench/preload";

/// The size of the image (sparse), as big as the Corral disk in the same benchmark.
pub const IMAGE_BYTES: u64 = 3 << 30;

/// What the image is made from; any change makes it anew.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// Corral's kernel release (dist/manifest.json), e.g. `6.12.118+deb13-cloud-amd64`.
    pub kernel: String,
    /// root's authorized_keys line.
    pub public_key: String,
    /// A `docker save` archive to preload, and its sha256.
    pub archive: PathBuf,
    pub archive_sha256: String,
}

/// The baseline's image and the initramfs to boot it with.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub image: PathBuf,
    pub initrd: PathBuf,
}

impl Baseline {
    pub fn in_dir(dir: &Path) -> Baseline {
        Baseline {
            image: dir.join("debian.img"),
            initrd: dir.join("initrd.img"),
        }
    }

    /// The kernel command line: Corral's, with the root file system.
    pub fn cmdline(corral: &str) -> String {
        format!("root=/dev/vda rw {corral}")
    }
}

impl Recipe {
    pub fn packages(&self) -> Vec<String> {
        PACKAGES
            .iter()
            .map(|p| p.replace("{kernel}", &self.kernel))
            .collect()
    }

    /// The text kept next to the image: the image is made again when it changes.
    pub fn stamp(&self) -> String {
        format!(
            "recipe 1\nsources {}\npackages {}\nkey {}\narchive {}\n",
            SOURCES.join(" | "),
            self.packages().join(","),
            self.public_key.trim(),
            self.archive_sha256
        )
    }

    /// The files laid over the installed system (path, mode, contents).
    pub fn files(&self) -> Vec<(String, u32, Vec<u8>)> {
        let text = |p: &str, mode: u32, t: &str| (p.to_string(), mode, t.as_bytes().to_vec());
        vec![
            text("etc/hostname", 0o644, "debian-bench\n"),
            text(
                "etc/hosts",
                0o644,
                "127.0.0.1 localhost\n127.0.1.1 debian-bench\n",
            ),
            text(
                "etc/fstab",
                0o644,
                "/dev/vda / ext4 rw,errors=remount-ro 0 1\n",
            ),
            text(
                "etc/systemd/network/10-dhcp.network",
                0o644,
                "[Match]\nName=en*\n\n[Network]\nDHCP=yes\n",
            ),
            text(
                "root/.ssh/authorized_keys",
                0o600,
                &format!("{}\n", self.public_key.trim()),
            ),
            text(
                "etc/systemd/system/bench-preload.service",
                0o644,
                &format!(
                    "[Unit]\nDescription=Load the preloaded images into Docker\n\
                     Requires=docker.service\nAfter=docker.service\n\n\
                     [Service]\nType=oneshot\n\
                     ExecStart=/bin/sh -c 'for a in /{PRELOAD}/*.tar; do /usr/bin/docker load -i \"$a\"; done'\n\n\
                     [Install]\nWantedBy=multi-user.target\n"
                ),
            ),
        ]
    }

    /// The root shell script that makes the image in `work`: mmdebstrap into
    /// `work/root` with `work/files` laid over it, the initramfs copied out, the tree
    /// into an ext4 image, both handed to `owner` (uid:gid), the tree removed.
    pub fn script(&self, work: &Path, owner: &str) -> String {
        let q = |p: &Path| sh_quote(&p.display().to_string());
        let root = work.join("root");
        let out = Baseline::in_dir(work);
        let mirrors: Vec<String> = SOURCES.iter().map(|s| sh_quote(s)).collect();
        format!(
            "set -eu\n\
             rm -rf {root}\n\
             mmdebstrap --mode=root --variant=apt --include={packages} \\\n\
             \x20 --customize-hook={copy} \\\n\
             \x20 --customize-hook='chroot \"$1\" systemctl enable systemd-networkd bench-preload.service' \\\n\
             \x20 trixie {root} {mirrors}\n\
             cp {root}/boot/initrd.img-{kernel} {initrd}\n\
             rm -f {image}\n\
             truncate -s {bytes} {image}\n\
             mkfs.ext4 -q -F -L debian -d {root} {image}\n\
             chown {owner} {image} {initrd}\n\
             rm -rf {root}\n",
            root = q(&root),
            packages = self.packages().join(","),
            copy = sh_quote(&format!(
                "cp -R --preserve=mode {}/. \"$1\"/",
                q(&work.join("files"))
            )),
            mirrors = mirrors.join(" "),
            kernel = self.kernel,
            initrd = q(&out.initrd),
            image = q(&out.image),
            bytes = IMAGE_BYTES,
        )
    }
}

/// Makes the baseline in `work` unless the one there has the same recipe. Returns it.
pub fn ensure(recipe: &Recipe, work: &Path) -> Result<Baseline> {
    let out = Baseline::in_dir(work);
    let stamp_path = work.join("stamp");
    let stamp = recipe.stamp();
    if out.image.exists()
        && out.initrd.exists()
        && fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str())
    {
        return Ok(out);
    }
    host::require("mmdebstrap")?;
    let _ = fs::remove_file(&stamp_path);
    let files = work.join("files");
    let _ = fs::remove_dir_all(&files);
    for (path, mode, data) in recipe.files() {
        rootfs::write(&files, &path, &data, mode)?;
    }
    // cp --preserve=mode gives directories these modes too: root's home stays private.
    for dir in ["root", "root/.ssh"] {
        fs::set_permissions(files.join(dir), fs::Permissions::from_mode(0o700))
            .map_err(BuildError::write(files.join(dir)))?;
    }
    let preload = files.join(PRELOAD);
    fs::create_dir_all(&preload).map_err(BuildError::write(&preload))?;
    let name = recipe
        .archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image.tar".into());
    fs::copy(&recipe.archive, preload.join(&name))
        .map_err(BuildError::write(preload.join(&name)))?;

    let uid = id("-u")?;
    let script = recipe.script(work, &format!("{uid}:{}", id("-g")?));
    let script_path = work.join("make-baseline.sh");
    fs::write(&script_path, &script).map_err(BuildError::write(&script_path))?;
    let mut cmd = if uid == "0" {
        Command::new("sh")
    } else {
        let mut c = Command::new("sudo");
        c.arg("sh");
        c
    };
    cmd.arg(&script_path);
    host::run(&mut cmd)?;
    fs::write(&stamp_path, stamp).map_err(BuildError::write(&stamp_path))?;
    let _ = fs::remove_dir_all(&files);
    Ok(out)
}

/// `id -u` / `id -g` of this process.
fn id(flag: &str) -> Result<String> {
    Ok(host::run(Command::new("id").arg(flag))?.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe() -> Recipe {
        Recipe {
            kernel: "6.12.118+deb13-cloud-amd64".into(),
            public_key: "ssh-ed25519 AAAA bench\n".into(),
            archive: PathBuf::from("/x/busybox.tar"),
            archive_sha256: "abc".into(),
        }
    }

    #[test]
    fn the_image_has_corrals_kernel_sshd_and_docker() {
        let r = recipe();
        let p = r.packages();
        for want in [
            "linux-image-6.12.118+deb13-cloud-amd64",
            "openssh-server",
            "docker.io",
            "docker-cli",
            "systemd-sysv",
        ] {
            assert!(p.iter().any(|x| x == want), "{want} in {p:?}");
        }
        let script = r.script(Path::new("/w b"), "1000:1000");
        assert!(
            script.contains(
                "cp '/w b/root'/boot/initrd.img-6.12.118+deb13-cloud-amd64 '/w b/initrd.img'"
            ),
            "{script}"
        );
        assert!(script.contains("mkfs.ext4 -q -F -L debian -d '/w b/root' '/w b/debian.img'"));
        assert!(script.contains("'deb http://deb.debian.org/debian-security trixie-security main'"));
        assert!(script.contains("chown 1000:1000"));
        assert!(script.contains("systemctl enable systemd-networkd bench-preload.service"));
        let files = r.files();
        let key = files
            .iter()
            .find(|(p, _, _)| p == "root/.ssh/authorized_keys")
            .unwrap();
        assert_eq!(
            (key.1, key.2.as_slice()),
            (0o600, &b"ssh-ed25519 AAAA bench\n"[..])
        );
        assert!(Baseline::cmdline("console=ttyS0").starts_with("root=/dev/vda rw "));
    }

    #[test]
    fn a_changed_input_changes_the_stamp() {
        let a = recipe();
        let mut b = recipe();
        assert_eq!(a.stamp(), b.stamp());
        b.archive_sha256 = "def".into();
        assert_ne!(a.stamp(), b.stamp());
        let mut c = recipe();
        c.kernel = "6.12.119+deb13-cloud-amd64".into();
        assert_ne!(a.stamp(), c.stamp());
    }

    #[test]
    fn a_made_image_with_the_same_recipe_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let r = recipe();
        let out = Baseline::in_dir(dir.path());
        fs::write(&out.image, b"img").unwrap();
        fs::write(&out.initrd, b"initrd").unwrap();
        fs::write(dir.path().join("stamp"), r.stamp()).unwrap();
        // No mmdebstrap run (the archive does not even exist): the image is kept.
        let got = ensure(&r, dir.path()).unwrap();
        assert_eq!(fs::read(got.image).unwrap(), b"img");
    }
}

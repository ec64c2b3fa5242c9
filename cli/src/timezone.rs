//! cloud-init's `timezone`, in the console: `/etc/localtime` a link to the zone's file in
//! the console's tzdata and `/etc/timezone` its name, so that `date`, `ls -l` and logs
//! read in a login show local time. Without the setting (or with one the console's
//! tzdata lacks) the console is on UTC. Containers on the engines keep their own (a
//! `TZ` in their environment). Every path is taken under a root, for tests.

use crate::console::under;
use std::path::Path;

/// Where the console's tzdata keeps the zones.
pub const ZONEINFO: &str = "/usr/share/zoneinfo";
/// The zone without a setting.
pub const DEFAULT: &str = "Etc/UTC";

/// Sets the console's zone under `root` to `tz` (`None`: [`DEFAULT`]) and returns the
/// zone set; a zone the console's tzdata lacks sets [`DEFAULT`] and is the error. Both
/// files are replaced whole (a link and a file renamed into place), never written
/// through a link.
pub fn apply(root: &Path, tz: Option<&str>) -> Result<String, String> {
    let wanted = tz.unwrap_or(DEFAULT);
    let (zone, missing) = if under(root, &Path::new(ZONEINFO).join(wanted)).is_file() {
        (wanted, None)
    } else {
        (
            DEFAULT,
            Some(format!(
                "timezone {wanted}: the console's tzdata has no such zone ({ZONEINFO}/{wanted}); the console is on UTC"
            )),
        )
    };
    install(root, zone).map_err(|e| format!("setting the time zone {zone}: {e}"))?;
    match missing {
        Some(why) => Err(why),
        None => Ok(zone.to_string()),
    }
}

fn install(root: &Path, zone: &str) -> std::io::Result<()> {
    let etc = under(root, Path::new("/etc"));
    let link = etc.join(".localtime.corral");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(Path::new(ZONEINFO).join(zone), &link)?;
    std::fs::rename(&link, etc.join("localtime"))?;
    let (dir, name) = crate::nofollow::parent_dir(root, Path::new("etc/timezone"))?;
    crate::nofollow::replace(&dir, &name, format!("{zone}\n").as_bytes(), 0o644, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for zone in ["Etc/UTC", "Europe/Paris"] {
            let f = dir.path().join("usr/share/zoneinfo").join(zone);
            std::fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
            std::fs::write(&f, b"TZif").expect("zone");
        }
        std::fs::create_dir_all(dir.path().join("etc")).expect("etc");
        dir
    }

    fn set(root: &Path) -> (String, String) {
        (
            std::fs::read_link(root.join("etc/localtime"))
                .expect("link")
                .display()
                .to_string(),
            std::fs::read_to_string(root.join("etc/timezone")).expect("name"),
        )
    }

    #[test]
    fn the_zone_is_linked_and_named_and_utc_without_one() {
        let dir = tree();
        assert_eq!(
            apply(dir.path(), Some("Europe/Paris")),
            Ok("Europe/Paris".into())
        );
        assert_eq!(
            set(dir.path()),
            (
                "/usr/share/zoneinfo/Europe/Paris".into(),
                "Europe/Paris\n".into()
            )
        );
        assert_eq!(apply(dir.path(), None), Ok("Etc/UTC".into()));
        assert_eq!(set(dir.path()).1, "Etc/UTC\n");
    }

    #[test]
    fn a_zone_the_console_lacks_is_utc_and_said() {
        let dir = tree();
        // What was there before is replaced, not written through.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, b"keep").expect("w");
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("etc/timezone")).expect("ln");
        let why = apply(dir.path(), Some("Mars/Olympus_Mons")).expect_err("no such zone");
        assert!(why.contains("has no such zone"), "{why}");
        assert_eq!(set(dir.path()).1, "Etc/UTC\n");
        assert_eq!(std::fs::read(&elsewhere).expect("r"), b"keep");
    }
}

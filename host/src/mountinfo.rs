//! `/proc/<pid>/mountinfo` read: which device is mounted where. The install, the
//! upgrade and the manager ask it what holds the state partition.

use crate::layout::STATE;

/// A device number (major, minor).
pub type DevNum = (u32, u32);

/// "8:16\n" as (8, 16).
pub fn parse_dev(text: &str) -> Option<DevNum> {
    let (major, minor) = text.trim().split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The mounted devices in a mountinfo text: (device number, mount point).
pub fn mounted(mountinfo: &str) -> Vec<(DevNum, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            Some((parse_dev(f.get(2)?)?, f.get(4)?.to_string()))
        })
        .collect()
}

/// The device of the state filesystem mounted at [`STATE`]; `None` when the machine
/// runs from RAM.
pub fn state_device(mountinfo: &str) -> Option<DevNum> {
    mounted(mountinfo)
        .into_iter()
        .find_map(|(dev, at)| (at == STATE).then_some(dev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_device_and_mount_point() {
        let text = "22 1 0:21 / / rw shared:1 - overlay overlay rw\n\
                    40 22 259:5 / /run/corral/state rw,relatime shared:9 - ext4 /dev/nvme0n1p5 rw\n\
                    41 22 259:5 /docker /var/lib/docker rw - ext4 /dev/nvme0n1p5 rw\n\
                    bad line\n";
        assert_eq!(
            mounted(text),
            vec![
                ((0, 21), "/".to_string()),
                ((259, 5), "/run/corral/state".to_string()),
                ((259, 5), "/var/lib/docker".to_string())
            ]
        );
        assert_eq!(state_device(text), Some((259, 5)));
        assert_eq!(
            state_device("22 1 0:20 / / rw - overlay overlay rw\n"),
            None
        );
        assert_eq!(parse_dev("8:16\n"), Some((8, 16)));
        assert_eq!(parse_dev("8"), None);
    }
}

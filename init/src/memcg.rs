//! Brings the first memory cgroup online while PID 1 is the only process, so that the
//! kernel's one-time switch to memory-cgroup accounting happens on a quiet machine.
//!
//! The first non-root memory cgroup that comes online turns on a static key that guards
//! kernel-memory accounting in the slab allocator (Linux 6.1: `memcg_kmem_enabled_key`,
//! checked in `kmem_cache_alloc`). Turning a static key on rewrites kernel text with
//! breakpoints while the other CPUs run it. Left to itself, that happens when runc
//! creates the first service container's cgroup, with the engine, runc and the
//! container's init all allocating on both CPUs. Under QEMU's TCG (our test machines)
//! that concurrent rewrite has left both vCPUs looping on the breakpoint in
//! `kmem_cache_alloc` for good (soft lockups, a boot that never powers off). Done here,
//! before any other process exists, the rewrite has nothing to race with; on real
//! hardware it costs one mkdir and one rmdir. The key stays on once turned on, so the
//! cgroup is removed again.

use crate::error::Result;
use corral_host::cmdline::Cgroup;
use corral_host::sys::Sys;
use std::path::{Path, PathBuf};

/// The cgroup made and removed again, under the memory hierarchy.
pub const WARMUP: &str = "corral-warmup";

/// Where the memory hierarchy is, per the cgroup version PID 1 mounted; `None` when the
/// kernel has no memory controller (nothing to warm).
pub fn memory_hierarchy(sys: &dyn Sys, cgroup: Cgroup) -> Option<PathBuf> {
    match cgroup {
        Cgroup::V2 => {
            let root = Path::new("/sys/fs/cgroup");
            let controllers = sys.read_to_string(&root.join("cgroup.controllers")).ok()?;
            controllers
                .split_whitespace()
                .any(|c| c == "memory")
                .then(|| root.to_path_buf())
        }
        Cgroup::V1 => {
            let dir = Path::new("/sys/fs/cgroup/memory");
            sys.exists(dir).then(|| dir.to_path_buf())
        }
    }
}

/// Makes a memory cgroup and removes it. Under v2 the memory controller is first handed
/// to the root's children (what the engines do anyway when they make their cgroups).
/// Returns whether there was a memory controller to warm.
pub fn warm(sys: &dyn Sys, cgroup: Cgroup) -> Result<bool> {
    let Some(hierarchy) = memory_hierarchy(sys, cgroup) else {
        return Ok(false);
    };
    if cgroup == Cgroup::V2 {
        sys.write(&hierarchy.join("cgroup.subtree_control"), "+memory")?;
    }
    let dir = hierarchy.join(WARMUP);
    sys.mkdir_all(&dir)?;
    sys.remove_dir(&dir)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_host::sys::fake::{Call, FakeSys};

    #[test]
    fn v2_hands_memory_down_then_makes_and_removes_a_child() {
        let sys = FakeSys::default().with_file(
            "/sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        );
        assert!(warm(&sys, Cgroup::V2).unwrap());
        assert_eq!(
            sys.calls(),
            vec![
                Call::Write(
                    "/sys/fs/cgroup/cgroup.subtree_control".into(),
                    "+memory".into()
                ),
                Call::Mkdir("/sys/fs/cgroup/corral-warmup".into()),
                Call::Rmdir("/sys/fs/cgroup/corral-warmup".into()),
            ]
        );
    }

    #[test]
    fn v1_uses_the_memory_hierarchy() {
        let sys = FakeSys::default().with_file("/sys/fs/cgroup/memory", "");
        assert!(warm(&sys, Cgroup::V1).unwrap());
        assert_eq!(
            sys.calls(),
            vec![
                Call::Mkdir("/sys/fs/cgroup/memory/corral-warmup".into()),
                Call::Rmdir("/sys/fs/cgroup/memory/corral-warmup".into()),
            ]
        );
    }

    #[test]
    fn no_memory_controller_means_nothing_to_do() {
        let sys = FakeSys::default().with_file("/sys/fs/cgroup/cgroup.controllers", "cpu pids\n");
        assert!(!warm(&sys, Cgroup::V2).unwrap());
        assert!(sys.calls().is_empty());
        assert!(!warm(&FakeSys::default(), Cgroup::V1).unwrap());
    }

    #[test]
    fn a_failed_mkdir_is_reported_and_nothing_is_removed() {
        let sys = FakeSys::default()
            .with_file("/sys/fs/cgroup/cgroup.controllers", "memory\n")
            .failing("/sys/fs/cgroup/corral-warmup");
        assert!(warm(&sys, Cgroup::V2).is_err());
        assert!(!sys
            .calls()
            .contains(&Call::Rmdir("/sys/fs/cgroup/corral-warmup".into())));
    }
}

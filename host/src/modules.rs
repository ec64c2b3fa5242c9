//! Kernel module loading without modprobe: `modules.dep` (written by depmod at build time)
//! gives each module's path and dependencies; dependencies load first; built-in and
//! already-loaded modules are skipped.

use crate::error::{HostError, Result};
use crate::sys::Sys;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module that `modules.dep` does not list (nor `modules.builtin`), by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingModule(pub String);

/// A module's name as the kernel reports it: file stem with '-' as '_'.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

/// modules.dep parsed: name -> (relative path, dependency names).
#[derive(Debug, Default)]
pub struct DepMap {
    modules: BTreeMap<String, (String, Vec<String>)>,
    builtin: BTreeSet<String>,
}

impl DepMap {
    /// Parses the text of `modules.dep` and `modules.builtin`.
    pub fn parse(modules_dep: &str, modules_builtin: &str) -> DepMap {
        let mut modules = BTreeMap::new();
        for line in modules_dep.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let deps = deps.split_whitespace().map(module_name).collect();
            modules.insert(module_name(path), (path.trim().to_string(), deps));
        }
        let builtin = modules_builtin.lines().map(module_name).collect();
        DepMap { modules, builtin }
    }

    /// Every module: (name, path relative to the modules directory).
    pub fn modules(&self) -> impl Iterator<Item = (&str, &str)> {
        self.modules
            .iter()
            .map(|(name, (path, _))| (name.as_str(), path.as_str()))
    }

    /// The modules to load for `wanted`, dependencies first, each once, built-ins left
    /// out. An unknown name is an error naming the name.
    pub fn load_order(
        &self,
        wanted: &[String],
    ) -> std::result::Result<Vec<(String, String)>, MissingModule> {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        for name in wanted {
            self.visit(&name.replace('-', "_"), &mut seen, &mut order)?;
        }
        Ok(order)
    }

    fn visit(
        &self,
        name: &str,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<(String, String)>,
    ) -> std::result::Result<(), MissingModule> {
        if self.builtin.contains(name) || !seen.insert(name.to_string()) {
            return Ok(());
        }
        let (path, deps) = self
            .modules
            .get(name)
            .ok_or_else(|| MissingModule(name.to_string()))?;
        for dep in deps {
            self.visit(dep, seen, order)?;
        }
        order.push((name.to_string(), path.clone()));
        Ok(())
    }
}

/// Loads `wanted` and their dependencies from `modules_dir` (`/lib/modules/<release>`).
/// An entry may carry parameters after the name (`loop max_loop=64`), as
/// `/etc/modules` does; they go to that module only.
/// A module that fails to load is logged and the rest still load; the count of failures
/// is returned so the caller can decide whether that is fatal.
pub fn load(sys: &dyn Sys, modules_dir: &Path, wanted: &[String]) -> Result<usize> {
    let dep_file = modules_dir.join("modules.dep");
    let deps = sys.read_to_string(&dep_file)?;
    let builtin = sys
        .read_to_string(&modules_dir.join("modules.builtin"))
        .unwrap_or_default();
    let map = DepMap::parse(&deps, &builtin);
    let mut failures = 0;
    let mut order = Vec::new();
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for entry in wanted {
        let (name, args) = entry
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((entry.trim(), ""));
        let name = name.to_string();
        if !args.trim().is_empty() {
            params.insert(module_name(&name), args.trim().to_string());
        }
        match map.load_order(std::slice::from_ref(&name)) {
            Ok(more) => order.extend(more),
            Err(MissingModule(missing)) => {
                failures += 1;
                log::warn!(
                    "{}",
                    HostError::UnknownModule {
                        name: missing,
                        dep_file: dep_file.clone()
                    }
                );
            }
        }
    }
    let mut loaded = BTreeSet::new();
    for (name, rel) in order {
        if !loaded.insert(name.clone()) || sys.exists(&PathBuf::from("/sys/module").join(&name)) {
            continue;
        }
        let args = params.get(&name).map(String::as_str).unwrap_or_default();
        if let Err(e) = sys.load_module(&name, &modules_dir.join(&rel), args) {
            failures += 1;
            log::warn!("{e}");
        }
    }
    Ok(failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::{Call, FakeSys};

    const DEP: &str = "kernel/fs/overlayfs/overlay.ko:\n\
        kernel/net/bridge/br_netfilter.ko: kernel/net/bridge/bridge.ko kernel/net/802/stp.ko kernel/net/llc/llc.ko\n\
        kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko\n\
        kernel/net/802/stp.ko: kernel/net/llc/llc.ko\n\
        kernel/net/llc/llc.ko:\n\
        kernel/drivers/block/virtio-blk.ko:\n";
    const BUILTIN: &str = "kernel/fs/ext4/ext4.ko\n";

    #[test]
    fn names_follow_the_kernel_convention() {
        assert_eq!(
            module_name("kernel/drivers/block/virtio-blk.ko"),
            "virtio_blk"
        );
        assert_eq!(module_name("kernel/fs/overlayfs/overlay.ko.xz"), "overlay");
    }

    #[test]
    fn dependencies_load_first_and_once() {
        let map = DepMap::parse(DEP, BUILTIN);
        let order = map
            .load_order(&["br_netfilter".into(), "bridge".into(), "virtio-blk".into()])
            .expect("known modules");
        let names: Vec<_> = order.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["llc", "stp", "bridge", "br_netfilter", "virtio_blk"]
        );
    }

    #[test]
    fn builtin_modules_are_skipped_and_unknown_ones_named() {
        let map = DepMap::parse(DEP, BUILTIN);
        assert_eq!(map.load_order(&["ext4".into()]), Ok(vec![]));
        assert_eq!(
            map.load_order(&["nosuch".into()]),
            Err(MissingModule("nosuch".to_string()))
        );
    }

    #[test]
    fn load_skips_loaded_modules_and_counts_unknown_ones() {
        let sys = FakeSys::default()
            .with_file("/lib/modules/6.1/modules.dep", DEP)
            .with_file("/sys/module/llc", "");
        let failures = load(
            &sys,
            Path::new("/lib/modules/6.1"),
            &["bridge forward_delay=0".into(), "nosuch".into()],
        )
        .expect("modules.dep is readable");
        assert_eq!(failures, 1);
        assert_eq!(
            sys.calls(),
            [
                Call::LoadModule(
                    "stp".into(),
                    "/lib/modules/6.1/kernel/net/802/stp.ko".into()
                ),
                Call::LoadModule(
                    "bridge forward_delay=0".into(),
                    "/lib/modules/6.1/kernel/net/bridge/bridge.ko".into()
                ),
            ]
        );
    }
}

//! Host tools the build drives, each with the Debian package that provides it, and one
//! helper that runs a tool and turns a failure into an error naming the command.

use crate::error::{BuildError, Result};
use std::path::Path;
use std::process::Command;

/// (tool, Debian package). `make setup` installs every package listed here.
pub const TOOLS: &[(&str, &str)] = &[
    ("apt-get", "apt"),
    ("dpkg-deb", "dpkg"),
    ("depmod", "kmod"),
    ("mksquashfs", "squashfs-tools"),
    ("xorriso", "xorriso"),
    ("mkfs.vfat", "dosfstools"),
    ("mcopy", "mtools"),
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("dockerd", "docker.io"),
    ("mmdebstrap", "mmdebstrap"),
    ("xz", "xz-utils"),
];

/// Finds `tool` in PATH (and the sbin directories, which a non-root PATH may lack).
pub fn find(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| Path::new(dir).join(tool))
        .find(|p| p.is_file());
    found
}

/// Fails with the install command when a tool the build needs is missing.
pub fn require(tool: &str) -> Result<std::path::PathBuf> {
    find(tool).ok_or_else(|| BuildError::MissingTool {
        tool: tool.to_string(),
        package: TOOLS
            .iter()
            .find(|(t, _)| *t == tool)
            .map(|(_, p)| p.to_string())
            .unwrap_or_else(|| tool.to_string()),
    })
}

/// Runs a command to completion and returns its stdout (through the project's one command
/// runner); on failure, the error names the command and carries its stderr's last lines.
pub fn run(cmd: &mut Command) -> Result<String> {
    Ok(corral_host::command::output(cmd)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_its_package() {
        let err = require("no-such-tool-anywhere").expect_err("missing");
        assert!(err
            .to_string()
            .contains("apt-get install no-such-tool-anywhere"));
        assert!(TOOLS
            .iter()
            .any(|(t, p)| *t == "mksquashfs" && *p == "squashfs-tools"));
    }

    #[test]
    fn a_failing_command_reports_its_stderr() {
        let err = run(Command::new("sh").args(["-c", "echo boom >&2; exit 3"])).expect_err("fails");
        let text = err.to_string();
        assert!(
            text.contains("boom") && text.contains("exit status: 3"),
            "{text}"
        );
    }
}

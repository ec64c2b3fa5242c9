//! `runcmd`, a `#!` user-data script, then RancherOS's start scripts
//! (`/opt/rancher/bin/start.sh`, `/etc/rc.local`), run in the console after it starts,
//! every boot, one after the other, in RancherOS's order. Each command's exit code and
//! output go to the log and to [`LOG`]; a failing command does not stop the next.

use corral_config::schema::Command;
use std::io::Write;
use std::path::Path;

/// Where the manager leaves a `#!` user-data script for the console.
pub const SCRIPT: &str = corral_config::store::USER_SCRIPT;
/// The commands' record.
pub const LOG: &str = "/var/log/runcmd.log";
/// The scripts RancherOS's console ran at every boot after the user-data script, when
/// they exist: its "custom console startup" (`/opt` is the host's, kept on the state
/// partition) and the classic `rc.local`.
pub const START_SCRIPTS: [&str; 2] = ["/opt/rancher/bin/start.sh", "/etc/rc.local"];

/// The start scripts that exist under `root`.
pub fn start_scripts(root: &Path) -> Vec<std::path::PathBuf> {
    START_SCRIPTS
        .iter()
        .map(|s| root.join(s.trim_start_matches('/')))
        .filter(|p| p.exists())
        .collect()
}

/// Runs the commands, then the script if there is one, then the start scripts (each
/// must be executable, as RancherOS required); returns a report line each.
pub fn run(
    commands: &[Command],
    script: Option<&Path>,
    starts: &[std::path::PathBuf],
) -> Vec<String> {
    let mut argvs: Vec<(String, Vec<String>)> = commands
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("runcmd[{i}] `{c}`"), c.argv()))
        .collect();
    if let Some(s) = script {
        argvs.push((
            format!("user-data script {}", s.display()),
            vec![s.display().to_string()],
        ));
    }
    let mut report = Vec::new();
    for start in starts {
        use std::os::unix::fs::PermissionsExt;
        let executable =
            std::fs::metadata(start).is_ok_and(|m| m.permissions().mode() & 0o100 != 0);
        if executable {
            argvs.push((
                format!("start script {}", start.display()),
                vec![start.display().to_string()],
            ));
        } else {
            report.push(format!(
                "start script {}: not run: it is not executable (chmod +x it, or give it permissions: \"0755\" in write_files)",
                start.display()
            ));
        }
    }
    for (what, argv) in argvs {
        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        report.push(corral_host::command::report(&what, &mut cmd, None));
    }
    report
}

/// Appends the report to `log`, readable by root only: commands' output may carry
/// secrets.
pub fn record(log: &Path, report: &[String]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)?;
    // A log made before (0644) is made private too.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    for line in report {
        writeln!(f, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn commands_then_the_script_each_with_its_exit_and_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/bin/sh\necho from script\n").expect("w");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let marker = dir.path().join("m");
        let cmds: Vec<Command> = yaml_serde::from_str(&format!(
            "- echo hi > {m}\n- [sh, -c, 'echo oops >&2; exit 2']\n- [/nonexistent/prog]\n",
            m = marker.display()
        ))
        .expect("yaml");
        let report = run(&cmds, Some(&script), &[]);
        assert!(marker.exists(), "the first command ran");
        assert!(report[0].ends_with(": exit 0"), "{report:?}");
        assert_eq!(
            report[1],
            "runcmd[1] `sh -c echo oops >&2; exit 2`: exit 2\n    oops"
        );
        assert!(report[2].contains("could not start"), "{report:?}");
        assert!(report[3].ends_with("exit 0\n    from script"), "{report:?}");
        let log = dir.path().join("log");
        std::fs::write(&log, "an older line\n").expect("an older log");
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        record(&log, &report).expect("record");
        let text = std::fs::read_to_string(&log).expect("read");
        assert!(text.starts_with("an older line\n") && text.contains("from script"));
        assert_eq!(
            std::fs::metadata(&log).expect("log").permissions().mode() & 0o777,
            0o600,
            "root only"
        );
    }

    #[test]
    fn rancheros_start_scripts_run_last_when_executable() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(start_scripts(dir.path()).is_empty());
        let start = dir.path().join("opt/rancher/bin/start.sh");
        std::fs::create_dir_all(start.parent().expect("parent")).expect("mkdir");
        std::fs::write(&start, "#!/bin/sh\necho started\n").expect("w");
        std::fs::set_permissions(&start, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let rc = dir.path().join("etc/rc.local");
        std::fs::create_dir_all(rc.parent().expect("parent")).expect("mkdir");
        std::fs::write(&rc, "#!/bin/sh\necho rc\n").expect("w");
        let starts = start_scripts(dir.path());
        assert_eq!(starts, [start.clone(), rc.clone()]);
        let cmds: Vec<Command> = yaml_serde::from_str("- echo first").expect("yaml");
        let report = run(&cmds, None, &starts);
        assert!(report[0].contains("not executable"), "{report:?}");
        assert!(report[1].starts_with("runcmd[0]"), "{report:?}");
        assert!(report[2].ends_with("exit 0\n    started"), "{report:?}");
        assert_eq!(report.len(), 3);
    }
}

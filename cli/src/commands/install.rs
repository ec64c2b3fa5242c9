//! `corral install -d DEVICE`: checks, asks, writes (`crate::install`), reboots.

use super::{SYSTEM_ERROR, USER_ERROR};
use crate::args::InstallArgs;
use crate::install::{self, host::Host};
use std::process::ExitCode;

pub(super) fn install(args: &InstallArgs) -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "corral: install writes a whole disk and needs root: sudo corral install -d {}",
            args.device.display()
        );
        return ExitCode::from(USER_ERROR);
    }
    let req = install::Request {
        device: args.device.clone(),
        cloud_config: args.cloud_config.clone(),
        force: args.force,
        reboot: !args.no_reboot,
        work: std::env::temp_dir().join(format!("corral-install.{}", std::process::id())),
    };
    let host = install::host::Linux::default();
    let mut ask = |question: &str| -> std::io::Result<bool> {
        eprint!("{question}");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        Ok(install::devices::is_yes(&answer))
    };
    let started = std::time::Instant::now();
    match install::install(&host, &req, &mut ask) {
        Ok(done) => {
            println!(
                "Corral is installed on {} (from {}): boot slot A, state partition {:.1} GiB{} ({:.1}s).",
                done.disk.display(),
                done.source.display(),
                done.state_bytes as f64 / (1u64 << 30) as f64,
                done.cloud_config
                    .as_ref()
                    .map(|c| format!(", cloud-config from {}", c.display()))
                    .unwrap_or_default(),
                started.elapsed().as_secs_f64()
            );
            if !req.reboot {
                println!("Remove the ISO (or boot from the disk) and reboot to start it.");
                return ExitCode::SUCCESS;
            }
            println!("Rebooting; remove the ISO if the machine boots it first.");
            match host.reboot() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("corral: asking PID 1 to reboot: {e}; run sudo reboot");
                    ExitCode::from(SYSTEM_ERROR)
                }
            }
        }
        Err(e) => {
            eprintln!("corral install: {e}");
            ExitCode::from(if e.is_user_error() {
                USER_ERROR
            } else {
                SYSTEM_ERROR
            })
        }
    }
}

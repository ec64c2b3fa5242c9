//! PID 1, and the `poweroff` / `reboot` / `halt` commands by the name they are run as.

use corral_host::power::{self, Action};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    if let Some(action) = Action::from_program(&argv0) {
        let rest: Vec<String> = args.collect();
        if rest.iter().any(|a| a == "-h" || a == "--help") {
            println!("usage: {argv0} [-f]\n  asks PID 1 to stop the machine cleanly; -f skips the clean stop");
            return ExitCode::SUCCESS;
        }
        let force = rest.iter().any(|a| a == "-f" || a == "--force");
        return match power::request(action, force) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{argv0}: {e}");
                ExitCode::from(1)
            }
        };
    }
    if nix::unistd::getpid().as_raw() != 1 {
        eprintln!(
            "corral-init runs as PID 1 only; to stop this machine run poweroff, reboot or halt"
        );
        return ExitCode::from(2);
    }
    corral_init::run()
}

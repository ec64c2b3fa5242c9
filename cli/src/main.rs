//! `corral`: the host CLI. `config` and `install` work on their own; `os version`,
//! `service ...`, `engine ...`, `tls generate` and `boot-report` ask the manager over
//! /run/corral/api.sock; `poweroff` and `reboot` ask PID 1; and the console container's
//! entrypoint (`corral console-init`, which starts `corral runcmd`). The arguments are
//! `corral_cli::args`, what each command does `corral_cli::commands`.

use clap::Parser;
use corral_cli::args::Cli;
use corral_cli::commands::{self, USER_ERROR};
use std::process::ExitCode;

fn main() -> ExitCode {
    match Cli::try_parse() {
        Ok(cli) => commands::run(cli),
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                ExitCode::from(USER_ERROR)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

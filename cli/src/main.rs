//! `corral`: the host CLI. `config` and `install` work on their own; `os version`,
//! `service ...`, `engine ...`, `tls generate` and `boot-report` ask the manager over
//! /run/corral/api.sock; `poweroff` and `reboot` ask PID 1; and the console container's
//! entrypoint (`corral console-init`, which starts `corral runcmd`). The arguments are
//! `corral_cli::args`, what each command does `corral_cli::commands`. Called as `ros`,
//! it takes RancherOS's arguments (`corral_cli::ros`).

use clap::Parser;
use corral_cli::args::Cli;
use corral_cli::commands::{self, USER_ERROR};
use corral_cli::ros::Ros;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let program = args.next().unwrap_or_default();
    let called_ros = std::path::Path::new(&program)
        .file_name()
        .is_some_and(|n| n == "ros");
    let parsed = if called_ros {
        let rest: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
        match corral_cli::ros::translate(&rest) {
            Ros::Corral(words) => {
                Cli::try_parse_from(std::iter::once("corral".to_string()).chain(words))
            }
            Ros::Said(text) => {
                println!("{text}");
                return ExitCode::SUCCESS;
            }
            Ros::Refused(text) => {
                eprintln!("{text}");
                return ExitCode::from(USER_ERROR);
            }
        }
    } else {
        Cli::try_parse()
    };
    match parsed {
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

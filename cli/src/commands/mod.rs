//! What each `corral` command does, one module per command family (youki's
//! `commands/<verb>.rs`): `config`, `service`, `swarm`, `install`, `console_init` (the console
//! container's entrypoint and its runcmd); the manager's and PID 1's requests here.
//! Exit codes: 0 done, 1 the user's error (fix the command or its input), 2 the
//! machine's.

mod config;
mod console_init;
mod consoles;
mod install;
mod os;
mod service;
mod swarm;

use crate::api::{Failure, Format};
use crate::args::{Cli, Command, EngineCommand, TlsCommand};
use clap::CommandFactory;
use corral_api::protocol::Request;
use std::path::Path;
use std::process::ExitCode;

/// Exit code of a refusal the user can fix.
pub const USER_ERROR: u8 = 1;
/// Exit code of a failure of the machine.
pub const SYSTEM_ERROR: u8 = 2;

/// Runs the command the arguments name.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::ConsoleInit => console_init::console_init(),
        Command::Runcmd => console_init::runcmd(),
        Command::Config { command } => return config::config(command),
        Command::Install(args) => return install::install(&args),
        Command::Service { command } => return service::service(command),
        Command::Os { command } => return os::os(command),
        Command::Swarm { command } => return swarm::swarm(command),
        Command::BootReport { format } => return manager(vec![Request::BootReport], format),
        Command::Engine {
            command: EngineCommand::List { format },
        } => return manager(vec![Request::EngineList], format),
        Command::Engine {
            command: EngineCommand::Switch { image },
        } => return manager(vec![Request::EngineSwitch { image }], Format::Table),
        Command::Console { command } => return consoles::console(command),
        Command::Tls {
            command: TlsCommand::Generate { hostnames, format },
        } => return manager(vec![Request::TlsGenerate { hostnames }], format),
        Command::Poweroff => return power(corral_host::power::Action::Poweroff),
        Command::Reboot => return power(corral_host::power::Action::Reboot),
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "corral", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral: {e:#}");
            ExitCode::from(SYSTEM_ERROR)
        }
    }
}

/// Prints a failure; exit 1 for the user's, 2 for the machine's.
pub(crate) fn failed(f: &Failure) -> ExitCode {
    eprintln!("corral: {}", f.message);
    ExitCode::from(match f.kind {
        corral_api::ErrorKind::User => USER_ERROR,
        corral_api::ErrorKind::System => SYSTEM_ERROR,
    })
}

/// Sends each request to the manager in turn, printing each answer; stops at the first
/// failure, with exit 1 for the user's and 2 for the machine's.
pub(crate) fn manager(requests: Vec<Request>, format: Format) -> ExitCode {
    let socket = Path::new(corral_api::SOCKET);
    for request in requests {
        if let Err(f) = crate::api::run(socket, request, format) {
            return failed(&f);
        }
    }
    ExitCode::SUCCESS
}

fn power(action: corral_host::power::Action) -> ExitCode {
    match corral_host::power::request(action, false) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral: {e}");
            ExitCode::from(USER_ERROR)
        }
    }
}

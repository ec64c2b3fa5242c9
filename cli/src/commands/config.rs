//! `corral config get|set|merge|export|validate`, and `state-seed` for PID 1.

use super::{failed, USER_ERROR};
use crate::args::ConfigCommand;
use std::path::Path;
use std::process::ExitCode;

pub(super) fn config(command: ConfigCommand) -> ExitCode {
    use crate::config;
    use corral_config::edit::Machine;
    type Run = Box<dyn FnOnce(&Machine) -> Result<String, crate::api::Failure>>;
    let (name, run): (&str, Run) = match command {
        ConfigCommand::Get { key } => ("get", Box::new(move |m| config::get(m, &key))),
        ConfigCommand::Set { key, value } => {
            ("set", Box::new(move |m| config::set(m, &key, &value)))
        }
        ConfigCommand::Merge { input } => (
            "merge",
            Box::new(move |m| config::merge(m, input.as_deref())),
        ),
        ConfigCommand::Export { full } => ("export", Box::new(move |m| config::export(m, full))),
        ConfigCommand::Validate { input } => return validate(input.as_deref()),
        ConfigCommand::StateSeed => return state_seed(),
    };
    // Root first: nothing is read or written for anyone else.
    if let Err(f) = config::need_root(name) {
        return failed(&f);
    }
    match run(&Machine::here()) {
        Ok(text) if text.is_empty() => ExitCode::SUCCESS,
        Ok(text) => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(f) => failed(&f),
    }
}

/// The state settings of a local datasource, for PID 1 (see corral-config's
/// `state_seed`). Always exits 0: what went wrong is in the `warning:` lines.
fn state_seed() -> ExitCode {
    use corral_config::{datasource, state_seed, store};
    let cmdline = std::fs::read_to_string(corral_config::PROC_CMDLINE).unwrap_or_default();
    // Before the state is mounted, nothing is saved: the OEM file and the command line.
    let effective = store::effective(
        &store::Store::new(store::CONF_DIR),
        Path::new(store::OEM_FILE),
        &cmdline,
    );
    let (sources, env) = datasource::configured(&effective.config.corral);
    print!("{}", state_seed::read(&sources, &env).lines());
    ExitCode::SUCCESS
}

fn validate(input: Option<&Path>) -> ExitCode {
    let (what, report) = match input {
        None => (
            "this machine's configuration".to_string(),
            crate::validate::this_machine(),
        ),
        Some(file) => match crate::validate::file(file) {
            Ok(r) => (file.display().to_string(), r),
            Err(e) => {
                eprintln!("corral: reading {}: {e}", file.display());
                return ExitCode::from(USER_ERROR);
            }
        },
    };
    if crate::validate::print(&what, &report) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(USER_ERROR)
    }
}

//! `corral os upgrade|list|status|rollback` (`crate::upgrade`); `os version` asks the
//! manager.

use super::{SYSTEM_ERROR, USER_ERROR};
use crate::api::Format;
use crate::args::OsCommand;
use crate::install::host::{Host, Linux};
use crate::upgrade::{self, UpgradeError};
use std::process::ExitCode;

fn failed(command: &str, e: &UpgradeError) -> ExitCode {
    eprintln!("corral os {command}: {e}");
    ExitCode::from(if e.is_user_error() {
        USER_ERROR
    } else {
        SYSTEM_ERROR
    })
}

fn need_root(command: &str) -> Option<ExitCode> {
    if nix::unistd::geteuid().is_root() {
        return None;
    }
    eprintln!("corral: os {command} reads and writes the boot disk and needs root: sudo corral os {command}");
    Some(ExitCode::from(USER_ERROR))
}

fn print<T: serde::Serialize>(value: &T, format: Format, table: impl Fn(&T) -> String) {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Format::Table => print!("{}", table(value)),
    }
}

pub(super) fn os(command: OsCommand) -> ExitCode {
    let host = Linux::default();
    match command {
        OsCommand::Version { format } => {
            super::manager(vec![corral_api::protocol::Request::OsVersion], format)
        }
        OsCommand::Upgrade {
            from,
            version,
            no_reboot,
            force,
        } => {
            if let Some(code) = need_root("upgrade") {
                return code;
            }
            let req = upgrade::Request {
                from,
                version,
                force,
            };
            match upgrade::upgrade(&host, &req) {
                Ok(done) => {
                    println!(
                        "slot {} holds Corral {} and boots next, on trial (3 tries); it is kept once it comes up healthy, else {} comes back by itself",
                        done.slot, done.to, done.from.version
                    );
                    if no_reboot {
                        println!("reboot to start it: sudo corral reboot");
                        return ExitCode::SUCCESS;
                    }
                    println!("rebooting");
                    match host.reboot() {
                        Ok(()) => ExitCode::SUCCESS,
                        Err(e) => {
                            eprintln!(
                                "corral: asking PID 1 to reboot: {e}; run sudo corral reboot"
                            );
                            ExitCode::from(SYSTEM_ERROR)
                        }
                    }
                }
                Err(e) => failed("upgrade", &e),
            }
        }
        OsCommand::List { from, format } => match upgrade::list(from.as_deref()) {
            Ok(offered) => {
                print(&offered, format, |list| {
                    let mut out = format!(
                        "{:<14} {:<14} {:<8} {:>9}\n",
                        "VERSION", "BUILD", "ARCH", "MB"
                    );
                    for r in list {
                        out.push_str(&format!(
                            "{:<14} {:<14} {:<8} {:>9.1}{}\n",
                            r.version,
                            r.build_id,
                            r.arch,
                            r.bytes as f64 / 1e6,
                            if r.running { "  (running)" } else { "" }
                        ));
                    }
                    out
                });
                ExitCode::SUCCESS
            }
            Err(e) => failed("list", &e),
        },
        OsCommand::Status { format } => {
            if let Some(code) = need_root("status") {
                return code;
            }
            match upgrade::status(&host) {
                Ok(s) => {
                    print(&s, format, upgrade::status_table);
                    ExitCode::SUCCESS
                }
                Err(e) => failed("status", &e),
            }
        }
        OsCommand::Rollback => {
            if let Some(code) = need_root("rollback") {
                return code;
            }
            match upgrade::rollback(&host) {
                Ok(slot) => {
                    println!("slot {slot} boots next; reboot to start it: sudo corral reboot");
                    ExitCode::SUCCESS
                }
                Err(e) => failed("rollback", &e),
            }
        }
    }
}

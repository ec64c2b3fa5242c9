//! `corral swarm status|token|leave`: straight to the user engine's socket (root, or a
//! member of group docker), through corral-user-docker's `swarm::cli`.

use super::{SYSTEM_ERROR, USER_ERROR};
use crate::args::{SwarmCommand, SwarmTokenRole};
use corral_user_docker::swarm::cli::{self, Failure, TokenRole};
use corral_user_docker::swarm::status;
use std::path::Path;
use std::process::ExitCode;

pub(super) fn swarm(command: SwarmCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&Failure::System(format!("starting the runtime: {e}"))),
    };
    let result = runtime.block_on(async {
        let Some(docker) = corral_user_docker::client::connect().await else {
            return Err(Failure::System(format!(
                "the user engine does not answer on {} (`sudo corral service list` shows \
                 the docker service)",
                corral_user_docker::SOCKET
            )));
        };
        match command {
            SwarmCommand::Status { format } => {
                let json = format == crate::api::Format::Json;
                cli::status(&docker, Path::new(status::STATUS_FILE), json).await
            }
            SwarmCommand::Token { role } => {
                let role = match role {
                    SwarmTokenRole::Worker => TokenRole::Worker,
                    SwarmTokenRole::Manager => TokenRole::Manager,
                };
                cli::token(&docker, role).await
            }
            SwarmCommand::Leave { force } => {
                if !nix::unistd::geteuid().is_root() {
                    return Err(Failure::User(
                        "run it with sudo: the record that this node left, which keeps the \
                         next boot from joining again, is root's"
                            .into(),
                    ));
                }
                let role = match corral_config::load() {
                    Ok((config, _)) => config.corral.swarm.role,
                    Err(e) => {
                        return Err(Failure::System(format!(
                            "reading the configuration in force: {e}"
                        )))
                    }
                };
                cli::leave(&docker, force, &role, Path::new(status::LEFT_FILE)).await
            }
        }
    });
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(f) => fail(&f),
    }
}

fn fail(f: &Failure) -> ExitCode {
    match f {
        Failure::User(m) => {
            eprintln!("corral: {m}");
            ExitCode::from(USER_ERROR)
        }
        Failure::System(m) => {
            eprintln!("corral: {m}");
            ExitCode::from(SYSTEM_ERROR)
        }
    }
}

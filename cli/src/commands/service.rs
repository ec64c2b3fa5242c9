//! `corral service list|start|stop|restart|logs|enable|disable|up`: requests to the
//! manager.

use super::{failed, manager};
use crate::api::Format;
use crate::args::ServiceCommand;
use corral_api::protocol::Request;
use std::process::ExitCode;

pub(super) fn service(command: ServiceCommand) -> ExitCode {
    let each =
        |names: Vec<String>, make: fn(String) -> Request| names.into_iter().map(make).collect();
    match command {
        ServiceCommand::List { format } => manager(vec![Request::ServiceList], format),
        ServiceCommand::Start { names } => manager(
            each(names, |name| Request::ServiceStart { name }),
            Format::Table,
        ),
        ServiceCommand::Stop { names } => manager(
            each(names, |name| Request::ServiceStop { name }),
            Format::Table,
        ),
        ServiceCommand::Restart { names } => manager(
            each(names, |name| Request::ServiceRestart { name }),
            Format::Table,
        ),
        ServiceCommand::Logs {
            lines,
            follow,
            format,
            name,
        } => manager(
            vec![Request::ServiceLogs {
                name,
                lines,
                follow,
            }],
            format,
        ),
        ServiceCommand::Enable { service } => match crate::api::enable_request(&service) {
            Ok(request) => manager(vec![request], Format::Table),
            Err(f) => failed(&f),
        },
        ServiceCommand::Disable { name } => {
            manager(vec![Request::ServiceDisable { name }], Format::Table)
        }
        ServiceCommand::Up { names, format } => manager(vec![Request::ServiceUp { names }], format),
    }
}

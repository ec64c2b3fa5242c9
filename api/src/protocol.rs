//! Requests and answers. Each is one JSON object on one line; requests are tagged by
//! `command`, answers by `status`.

use serde::{Deserialize, Serialize};

/// What the CLI asks the manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    /// Corral's, the kernel's and the engines' versions.
    OsVersion,
    /// Every service the manager runs, with its state.
    ServiceList,
    /// Starts a stopped service's container.
    ServiceStart { name: String },
    /// Stops a service's container (it stays stopped until started or the next boot).
    ServiceStop { name: String },
    /// Restarts a service's container.
    ServiceRestart { name: String },
    /// The last `lines` lines of a service's output (all of it when `None`); with
    /// `follow`, then each new line as it comes, one answer per batch, until the client
    /// hangs up.
    ServiceLogs {
        name: String,
        lines: Option<u32>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        follow: bool,
    },
    /// Turns a service on for this boot's `up` and every later boot: from the built-in
    /// catalogue by `name`, or `definition` (a services file's text, from a file or URL)
    /// kept under `name`.
    ServiceEnable {
        name: String,
        definition: Option<String>,
    },
    /// Turns a service off: stopped and removed now, and not started at later boots.
    ServiceDisable { name: String },
    /// Brings services up as the saved configuration defines them (all when `names` is
    /// empty): creates what is missing, starts what is stopped, recreates what changed.
    ServiceUp { names: Vec<String> },
    /// This boot's timeline.
    BootReport,
    /// The user engine images there are, the one in use marked.
    EngineList,
    /// Makes `image` the user engine (kept in the saved configuration): an engine's
    /// name (`docker-26.1`, what is saved then) or an engine image's reference.
    EngineSwitch { image: String },
    /// The consoles there are: the default one, named console images, kept archives;
    /// the one running and the one configured marked.
    ConsoleList,
    /// Makes `name` the console (kept in the saved configuration as `corral.console`):
    /// `default`, a console's name or an image; at once with `now` (the console is
    /// replaced, and put back if the new one does not stay up), else from the next boot.
    ConsoleSwitch {
        name: String,
        now: bool,
        /// An image archive the CLI put under `/var/lib/corral/consoles/` (`--from`):
        /// loaded first, and kept as the console's archive.
        #[serde(default)]
        archive: Option<String>,
    },
    /// Makes the user engine a new CA and server and client certificates, the server's
    /// for the machine's names and `hostnames`, and gives the `corral` user the client's.
    TlsGenerate {
        #[serde(default)]
        hostnames: Vec<String>,
    },
}

impl Request {
    /// Whether the request only reads: the commands users in group docker may run
    /// through sudo's read-only rule (docs/cli.md).
    pub fn read_only(&self) -> bool {
        matches!(
            self,
            Request::OsVersion
                | Request::ServiceList
                | Request::ServiceLogs { .. }
                | Request::BootReport
                | Request::EngineList
                | Request::ConsoleList
        )
    }
}

/// Whose fault a failure is: the CLI exits 1 for the user's, 2 for the machine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// A name that does not exist, a request that makes no sense: fix the command.
    User,
    /// The engine or the machine failed.
    System,
}

/// The manager's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Response {
    /// Done; `body` is the request's data (`null` for an action).
    Ok { body: serde_json::Value },
    /// Not done; `message` says why and what to do.
    Error { kind: ErrorKind, message: String },
}

impl Response {
    pub fn ok<T: Serialize>(body: &T) -> Response {
        match serde_json::to_value(body) {
            Ok(body) => Response::Ok { body },
            Err(e) => Response::system(format!("encoding the answer: {e}")),
        }
    }

    pub fn user(message: impl Into<String>) -> Response {
        Response::Error {
            kind: ErrorKind::User,
            message: message.into(),
        }
    }

    pub fn system(message: impl Into<String>) -> Response {
        Response::Error {
            kind: ErrorKind::System,
            message: message.into(),
        }
    }
}

/// One service, as `corral service list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub image: String,
    /// The container's state (`running`, `exited`, `created`, ...). A service without a
    /// container (never created: its image is missing, or what it waits for failed) is
    /// not listed.
    pub state: String,
    /// The health check's verdict, when the service has one.
    pub health: Option<String>,
    /// When it entered its state (RFC 3339, from the engine).
    pub since: Option<String>,
    /// For a service the machine does not run but can (state `available`): where it
    /// comes from (`catalogue`, `repository NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_by: Option<String>,
}

/// `corral os version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Corral's version (`VERSION_ID` in /etc/os-release).
    pub os: String,
    /// The kernel's release.
    pub kernel: String,
    /// The system engine's Docker version.
    pub system_engine: String,
    /// The system engine's default OCI runtime (`crun`).
    #[serde(default)]
    pub system_runtime: Option<String>,
    /// The user engine's Docker version, when it answers.
    pub user_engine: Option<String>,
    /// The user engine's name (`docker-28.5`), from its image's label.
    #[serde(default)]
    pub user_engine_name: Option<String>,
    /// The user engine's default OCI runtime, when it answers.
    #[serde(default)]
    pub user_runtime: Option<String>,
    /// The build that made the running root (`BUILD_ID` in /etc/os-release).
    pub build_id: Option<String>,
}

/// A user engine image, as `corral engine list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engine {
    pub image: String,
    /// Its name by Docker's major.minor (`docker-28.5`, label `io.corral.engine`), the
    /// one to switch by: a saved name survives a package bump.
    #[serde(default)]
    pub name: Option<String>,
    /// The Docker version it carries (label `io.corral.engine.version`).
    #[serde(default)]
    pub version: Option<String>,
    /// Whether the user engine runs it now.
    pub current: bool,
}

/// A console, as `corral console list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Console {
    /// `default`, a console's name (label `io.corral.console`), or an image.
    pub name: String,
    pub image: String,
    /// Whether it runs now.
    pub current: bool,
    /// Whether the configuration names it (`corral.console`): it runs from the next boot.
    pub configured: bool,
}

/// What `corral service up` did to one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Brought {
    pub name: String,
    /// Whether it is where it should be (running, created, or a one-shot completed).
    pub ok: bool,
    /// What happened (`running (created)`, `failed: ...`).
    pub outcome: String,
}

/// What `corral tls generate` made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tls {
    /// The folder of the engine's files (CA, server and client).
    pub dir: String,
    /// The names the server certificate is good for.
    pub names: Vec<String>,
    /// The client's copies (`ca.pem`, `cert.pem`, `key.pem`) given to the `corral` user.
    pub client: Vec<String>,
    /// Whether `corral.docker.tls` is on, so that the engine serves them once restarted.
    pub enabled: bool,
}

/// `corral service logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logs {
    pub lines: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_by_command() {
        let r = Request::ServiceLogs {
            name: "syslog".into(),
            lines: Some(5),
            follow: false,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"command":"service-logs","name":"syslog","lines":5}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), r);
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"command":"boot-report"}"#).unwrap(),
            Request::BootReport
        );
        assert!(serde_json::from_str::<Request>(r#"{"command":"format-disk"}"#).is_err());
        assert!(Request::BootReport.read_only());
        assert!(!Request::ServiceStop { name: "ntp".into() }.read_only());
        let follow: Request = serde_json::from_str(
            r#"{"command":"service-logs","name":"a","lines":null,"follow":true}"#,
        )
        .unwrap();
        assert!(matches!(follow, Request::ServiceLogs { follow: true, .. }));
        assert!(!Request::ServiceDisable { name: "ntp".into() }.read_only());
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"command":"tls-generate"}"#).unwrap(),
            Request::TlsGenerate {
                hostnames: Vec::new()
            }
        );
        assert!(!Request::TlsGenerate {
            hostnames: Vec::new()
        }
        .read_only());
    }

    #[test]
    fn answers_say_whose_fault_an_error_is() {
        let text = serde_json::to_string(&Response::user("no service x")).unwrap();
        assert_eq!(
            text,
            r#"{"status":"error","kind":"user","message":"no service x"}"#
        );
        let ok = Response::ok(&Logs {
            lines: vec!["a".into()],
        });
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"status":"ok","body":{"lines":["a"]}}"#
        );
    }
}

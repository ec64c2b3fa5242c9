//! # corral-api
//!
//! The protocol between the `corral` command and the manager (`corral-manager`) on
//! `/run/corral/api.sock`: one JSON request per line, one JSON answer per line
//! ([`protocol`](src/protocol.rs)); the boot report's timeline and its critical path
//! ([`report`](src/report.rs)); and the blocking client the CLI uses
//! ([`client`](src/client.rs)). The manager serves it (`manager/src/api.rs`).
//!
//! - **Owns:** the wire format, the size limit of a message, the boot report's shape and
//!   how its critical path is found.
//! - **Must not touch:** engines, files or processes: it is types, framing and a socket
//!   client, nothing that acts on the machine.
//! - **Talks to:** the manager's socket (the client only).

pub mod client;
pub mod protocol;
pub mod report;

pub use protocol::{ErrorKind, Request, Response, Service, Version};
pub use report::{BootReport, Step};

/// The manager's control socket.
pub const SOCKET: &str = "/run/corral/api.sock";

/// The most a request or an answer may hold; a longer line is refused.
pub const MAX_MESSAGE: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("connecting to the manager at {path}: {source}; is this machine running Corral, and are you root (sudo)?")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("talking to the manager: {0}")]
    Io(#[from] std::io::Error),
    #[error("the manager's answer is not understood: {0}")]
    Decode(String),
    #[error("a message is longer than {MAX_MESSAGE} bytes")]
    TooLong,
}

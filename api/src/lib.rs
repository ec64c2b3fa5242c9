//! # corral-api: the `corral` command's protocol with the manager
//!
//! The manager listens on [`SOCKET`] (root only). A client writes one [`Request`] as a
//! JSON line and reads one [`Response`] as a JSON line; each connection carries one
//! exchange. Listings come back as data (never as text to parse), so the CLI prints
//! them as a table or as JSON.
//!
//! - **Owns:** the wire format and the boot report's shape.
//! - **Must not touch:** anything on the machine; it is types and a client.
//! - **Talks to:** [`SOCKET`] (the client).

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

//! # corral-compose: services files
//!
//! The services that make up a Corral machine are described in docker-compose format
//! with RancherOS's labels (`io.rancher.os.after`, `detach`, `createonly`, `scope`), so
//! a service copied from RancherOS's os-config parses unchanged, and so does a service
//! file of RancherOS's repositories (compose's first format: no `services:`, the
//! services at the top level). This crate reads such
//! files into a model (`ServicesFile`, `Service`), checks them (size capped, keys Corral
//! does not act on kept as warnings, a file that does not parse an error naming the
//! file, the service and the line), merges several in order, and orders their services
//! for start-up (`graph`: dependencies from the labels and `links`, cycles named).
//!
//! - **Owns:** the services file's model, parsing, merging and start order.
//! - **Must not touch:** engines or containers (the manager creates them from the model),
//!   files other than the ones it is asked to read.
//! - **Talks to:** nothing; the manager and corral-user-docker use it as a library.

pub mod error;
mod file;
pub mod graph;

pub use error::ComposeError;
pub use file::*;

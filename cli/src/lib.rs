//! # corral-cli
//!
//! Lands with its issue; see README.md in this folder for what it will own.

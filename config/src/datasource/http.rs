//! HTTP for the network sources: one client with a time limit, bodies capped at the
//! user-data limit, 404 as "nothing there", 5xx and 429 as worth another try.

use super::{fatal, retry};
use crate::error::Result;
use crate::userdata::MAX_USER_DATA;
use std::io::Read;
use std::time::Duration;

/// An HTTP client whose every request ends within `timeout`, statuses left to the caller.
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// A body, capped; `Ok(None)` on 404.
pub(crate) fn body(
    what: &str,
    response: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Option<Vec<u8>>> {
    let mut response = response.map_err(|e| retry(what, e))?;
    let status = response.status().as_u16();
    match status {
        200 => {
            let mut out = Vec::new();
            response
                .body_mut()
                .as_reader()
                .take(MAX_USER_DATA as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| retry(format!("{what}: reading the answer"), e))?;
            Ok(Some(out))
        }
        404 => Ok(None),
        s if s >= 500 || s == 429 => Err(retry(what, format!("HTTP {s}"))),
        s => Err(fatal(what, format!("HTTP {s}"))),
    }
}

/// A document at `url` (at most [`MAX_USER_DATA`] bytes; 404 is an error): user-data,
/// or a services file for `corral service enable URL`. `what` names it in errors.
pub fn get(what: &str, url: &str, timeout: Duration) -> Result<Vec<u8>> {
    body(
        &format!("{what}: GET {url}"),
        agent(timeout).get(url).call(),
    )?
    .ok_or_else(|| fatal(format!("{what}: GET {url}"), "HTTP 404"))
}

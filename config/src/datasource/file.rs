//! `file:/path`: user-data from a file on the machine (a provisioning step put it there).

use super::volume::read_capped;
use super::{Datasource, Env, Fetched, Metadata};
use crate::error::Result;
use std::path::Path;

/// `file:/path`.
pub struct File(pub String);

impl Datasource for File {
    fn name(&self) -> String {
        format!("file:{}", self.0)
    }

    fn fetch(&self, _env: &Env) -> Result<Option<Fetched>> {
        let path = Path::new(&self.0);
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(Fetched {
            source: self.name(),
            user_data: read_capped(path)?,
            meta: Metadata::default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasource::testing::{env, fixture, NoMedia};
    use std::sync::Arc;

    #[test]
    fn a_file_is_read_and_a_missing_one_is_not_there() {
        let e = env("", Arc::new(NoMedia));
        let path = fixture("nocloud/v1/user-data").display().to_string();
        let f = File(path.clone()).fetch(&e).expect("ok").expect("answer");
        assert_eq!(f.user_data, b"#cloud-config\nhostname: nc\n");
        assert_eq!(f.source, format!("file:{path}"));
        assert!(File("/nonexistent".into()).fetch(&e).expect("ok").is_none());
    }
}

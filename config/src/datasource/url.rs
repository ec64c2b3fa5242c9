//! `url:URL` and `cmdline` (`corral.cloud_config_url=URL` on the kernel command line):
//! user-data from an HTTP(S) address (`#sha256=<hex>` pins it; plain http without a pin
//! is logged as a risk).

use super::{Datasource, Env, Fetched, Metadata};
use crate::error::Result;
use std::time::Duration;

/// `url:URL`.
pub struct Url(pub String);

impl Datasource for Url {
    fn name(&self) -> String {
        format!("url:{}", self.0)
    }

    fn fetch(&self, env: &Env) -> Result<Option<Fetched>> {
        user_data(&self.name(), &self.0, env).map(Some)
    }
}

/// `cmdline`: the URL in `corral.cloud_config_url=`, when the command line has one.
pub struct Cmdline;

impl Datasource for Cmdline {
    fn name(&self) -> String {
        "cmdline".into()
    }

    fn fetch(&self, env: &Env) -> Result<Option<Fetched>> {
        match &env.cmdline_url {
            Some(url) => user_data("cmdline", url, env).map(Some),
            None => Ok(None),
        }
    }
}

fn user_data(source: &str, url: &str, env: &Env) -> Result<Fetched> {
    if let Some(warning) = super::http::transport_warning(url) {
        log::warn!("{source}: {warning}");
    }
    let data = super::http::get(
        source,
        url,
        env.request_timeout.max(Duration::from_secs(10)),
    )?;
    Ok(Fetched {
        source: source.to_string(),
        user_data: data,
        meta: Metadata::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasource::testing::{env, instance, NoMedia};
    use corral_harness::imds::{FakeImds, Instance};
    use std::sync::Arc;

    #[test]
    fn url_and_cmdline_fetch_over_http_and_a_404_is_not_retried() {
        let fake = FakeImds::start(Instance {
            require_token: false,
            ..instance()
        })
        .expect("fake");
        let url = format!("{}/latest/user-data", fake.url());
        let mut e = env("", Arc::new(NoMedia));
        let f = Url(url.clone()).fetch(&e).expect("ok").expect("answer");
        assert_eq!(f.user_data, b"#cloud-config\nhostname: from-ec2\n");
        assert_eq!(f.source, format!("url:{url}"));
        assert!(
            Cmdline.fetch(&e).expect("ok").is_none(),
            "no URL: not there"
        );
        e.cmdline_url = Some(url);
        assert_eq!(
            Cmdline.fetch(&e).expect("ok").expect("answer").source,
            "cmdline"
        );
        let err = Url(format!("{}/nothing", fake.url()))
            .fetch(&e)
            .expect_err("404");
        assert!(
            err.to_string().contains("HTTP 404") && !err.is_retryable(),
            "{err}"
        );
    }
}

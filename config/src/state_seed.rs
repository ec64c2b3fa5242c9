//! The state settings a boot needs before the state is mounted: `corral.state` (or
//! RancherOS's `rancher.state`) in the user-data of a local datasource (NoCloud, config
//! drive, `file:`), printed as `corral.state.*` options for PID 1, which reads the rest
//! of its settings from the kernel command line the same way. RancherOS read
//! `rancher.state` from the cloud-config it fetched before mounting the state; the
//! network's datasources (EC2, `url:`) answer only once the network service runs, after
//! the state is mounted, so theirs apply from the kernel command line only
//! ([`late_warning`] says so).
//!
//! It reads, never writes: PID 1 runs it (`corral config state-seed`) only when the
//! command line's settings find no state.

use crate::datasource::{self, Env};
use crate::schema::{DatasourceName, State};
use crate::userdata::{self, UserData};

/// What a local datasource's user-data says about the state.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seed {
    /// The datasource that answered, `nocloud:/dev/sr0`.
    pub source: Option<String>,
    /// `corral.state.KEY=VALUE`, one an option.
    pub options: Vec<String>,
    /// Sources that failed, values left out.
    pub warnings: Vec<String>,
}

impl Seed {
    /// The lines PID 1 reads: `from SOURCE`, `warning: ...`, then the options.
    pub fn lines(&self) -> String {
        let mut out = String::new();
        if let Some(source) = &self.source {
            out.push_str(&format!("from {source}\n"));
        }
        for warning in &self.warnings {
            out.push_str(&format!("warning: {}\n", warning.replace('\n', " ")));
        }
        for option in &self.options {
            out.push_str(option);
            out.push('\n');
        }
        out
    }
}

/// Whether a datasource is read from the machine itself, without a network.
fn is_local(source: &DatasourceName) -> bool {
    matches!(
        source,
        DatasourceName::NoCloud(_) | DatasourceName::ConfigDrive(_) | DatasourceName::File(_)
    )
}

/// The state settings of the first local source in `sources` that has user-data.
pub fn read(sources: &[DatasourceName], env: &Env) -> Seed {
    let mut seed = Seed::default();
    for source in sources.iter().filter(|s| is_local(s)) {
        let fetched = match datasource::fetch(source, env) {
            Ok(Some(fetched)) => fetched,
            Ok(None) => continue,
            Err(e) => {
                seed.warnings.push(format!("{source}: {e}"));
                continue;
            }
        };
        match userdata::parse(&fetched.source, &fetched.user_data) {
            Ok(UserData::CloudConfig { config, .. }) => {
                options(&config.corral.state, &mut seed);
            }
            // A script or services file: no state settings, and the source still wins.
            Ok(_) => {}
            Err(e) => seed.warnings.push(format!(
                "{e}; its state settings are not applied (see `corral config validate`)"
            )),
        }
        seed.source = Some(fetched.source);
        break;
    }
    seed
}

/// `state` as `corral.state.*` options; a value that would not stay one word on a
/// command line is left out with a warning naming its key.
fn options(state: &State, seed: &mut Seed) {
    let mut push = |key: &str, value: String| {
        if value.is_empty() || value.contains(char::is_whitespace) || value.contains('"') {
            seed.warnings.push(format!(
                "corral.state.{key}: {value:?} is left out: use one word, such as \
                 LABEL=CORRAL_STATE or /dev/vdb"
            ));
        } else {
            seed.options.push(format!("corral.state.{key}={value}"));
        }
    };
    if let Some(dev) = &state.dev {
        push("dev", dev.clone());
    }
    if !state.autoformat.is_empty() {
        push("autoformat", format!("[{}]", state.autoformat.join(",")));
    }
    if let Some(fstype) = &state.fstype {
        push("fstype", fstype.clone());
    }
    if let Some(wait) = state.wait {
        push("wait", wait.to_string());
    }
    if let Some(required) = state.required {
        push("required", required.to_string());
    }
}

/// The warning for a state setting that arrived from a network datasource on a machine
/// running from RAM: PID 1 looked for the state before that source could answer.
pub fn late_warning(state: &State, source: &str, live: bool) -> Option<String> {
    let named = state.dev.is_some() || !state.autoformat.is_empty();
    // A fetched source is named as `cloud_init.datasources` names it (`nocloud:/dev/sr0`),
    // with a note after a space (`ec2 (IMDSv1)`).
    let local = source
        .split(' ')
        .next()
        .and_then(|name| name.parse::<DatasourceName>().ok())
        .is_some_and(|name| is_local(&name));
    (live && named && !local).then(|| {
        format!(
            "corral.state from {source} is not applied: PID 1 reads the state settings from \
             the kernel command line and from a local datasource (NoCloud, config drive) \
             before the network is up, so this machine runs from RAM. Put \
             corral.state.dev/autoformat on the kernel command line, or label the disk \
             CORRAL_STATE"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasource::testing::{env, DirMedia, NoMedia};
    use std::sync::Arc;

    fn nocloud(user_data: &str) -> (tempfile::TempDir, Env) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("user-data"), user_data).expect("user-data");
        let media = DirMedia {
            label: "cidata",
            dir: dir.path().to_path_buf(),
        };
        (dir, env("http://127.0.0.1:9", Arc::new(media)))
    }

    fn defaults() -> Vec<DatasourceName> {
        crate::schema::default_datasources()
    }

    #[test]
    fn rancheros_state_in_a_nocloud_seed_becomes_options() {
        let (_dir, env) = nocloud(
            "#cloud-config\nrancher:\n  state:\n    dev: LABEL=RANCHER_STATE\n    \
             autoformat: [/dev/sda, /dev/vda]\n    wait: true\n    fstype: auto\n    \
             required: false\n",
        );
        let seed = read(&defaults(), &env);
        assert_eq!(seed.source.as_deref(), Some("nocloud:/dev/sr1"));
        assert_eq!(
            seed.options,
            [
                "corral.state.dev=LABEL=RANCHER_STATE",
                "corral.state.autoformat=[/dev/sda,/dev/vda]",
                "corral.state.fstype=auto",
                "corral.state.wait=true",
                "corral.state.required=false",
            ]
        );
        assert!(seed.warnings.is_empty(), "{:?}", seed.warnings);
        assert_eq!(
            seed.lines(),
            "from nocloud:/dev/sr1\ncorral.state.dev=LABEL=RANCHER_STATE\n\
             corral.state.autoformat=[/dev/sda,/dev/vda]\ncorral.state.fstype=auto\n\
             corral.state.wait=true\ncorral.state.required=false\n"
        );
    }

    #[test]
    fn nothing_local_or_nothing_said_gives_no_options() {
        let seed = read(&defaults(), &env("http://127.0.0.1:9", Arc::new(NoMedia)));
        assert_eq!(seed, Seed::default());
        let (_dir, env) = nocloud("#cloud-config\nhostname: a\n");
        let seed = read(&defaults(), &env);
        assert!(seed.options.is_empty() && seed.source.is_some(), "{seed:?}");
        // EC2 and URLs are never asked: there is no network yet.
        let (_dir, env) = nocloud("#cloud-config\nrancher: {state: {dev: /dev/vdb}}\n");
        let seed = read(
            &[
                DatasourceName::Ec2,
                DatasourceName::Url("http://127.0.0.1:9/x".into()),
            ],
            &env,
        );
        assert_eq!(seed, Seed::default());
    }

    #[test]
    fn a_bad_seed_or_value_is_a_warning_not_a_failure() {
        let (_dir, env) = nocloud("#cloud-config\nrancher: [unclosed\n");
        let seed = read(&defaults(), &env);
        assert!(seed.options.is_empty());
        assert!(
            seed.warnings[0].contains("not applied"),
            "{:?}",
            seed.warnings
        );
        let (_dir, env) =
            nocloud("#cloud-config\ncorral:\n  state:\n    dev: \"LABEL=A B\"\n    fstype: ext4\n");
        let seed = read(&defaults(), &env);
        assert_eq!(seed.options, ["corral.state.fstype=ext4"]);
        assert!(
            seed.warnings[0].contains("corral.state.dev"),
            "{:?}",
            seed.warnings
        );
        assert!(seed.lines().contains("warning: corral.state.dev"));
    }

    #[test]
    fn a_network_sources_state_on_a_ram_machine_is_named() {
        let state = State {
            dev: Some("LABEL=X".into()),
            ..State::default()
        };
        assert!(late_warning(&state, "ec2", true)
            .expect("warned")
            .contains("kernel command line"));
        assert_eq!(late_warning(&state, "ec2", false), None, "mounted");
        assert_eq!(late_warning(&state, "nocloud:/dev/sr0", true), None);
        assert_eq!(
            late_warning(&state, "file:/var/lib/corral/conf/x.yml", true),
            None
        );
        assert!(late_warning(&state, "ec2 (IMDSv1)", true).is_some());
        assert!(late_warning(&state, "url:http://10.0.0.1/u", true).is_some());
        assert_eq!(late_warning(&State::default(), "ec2", true), None);
    }
}

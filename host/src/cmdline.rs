//! The boot options PID 1 reads from the kernel command line. Every other `corral.*` option
//! belongs to the configuration (the `config` crate) and is ignored here; an unknown or
//! malformed option never stops a boot, it is logged and skipped.

/// What to do when boot cannot continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Open a shell on the console; power off when it exits.
    Shell,
    /// Power off at once (for unattended machines, such as cloud instances).
    Poweroff,
    /// Reboot at once.
    Reboot,
}

/// Which cgroup hierarchy to mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cgroup {
    V1,
    V2,
}

/// The longest `corral.shutdown_timeout` PID 1 takes: an hour. A shutdown that waits
/// longer is a hung machine, and a larger number would overflow the clock's deadline.
pub const MAX_SHUTDOWN_TIMEOUT: u64 = 3600;

/// The options PID 1 honours, with their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootOptions {
    pub hostname: String,
    pub cgroup: Cgroup,
    pub recovery: Recovery,
    /// Whether `corral.recovery=shell` is on the command line itself (not the default):
    /// only then does a running machine with no way in open a shell on the console.
    pub recovery_shell_asked: bool,
    /// Extra modules to load after the root switch (`corral.modules=a,b`).
    pub modules: Vec<String>,
    /// A tty on which to keep a root shell open, for debugging and the test harness
    /// (`corral.debug_shell=ttyS1`). Off unless asked for.
    pub debug_shell: Option<String>,
    /// Seconds the manager gets to stop services before everything is killed.
    pub shutdown_timeout: u64,
    /// Seconds after the manager starts by which the console must run, or the manager
    /// starts the rescue console on the host (`corral.rescue_after`; 0: never).
    pub rescue_after: u64,
    /// Devices that may be formatted as the state partition when blank
    /// (`corral.state.autoformat=[/dev/vda]`, RancherOS's `rancher.state.autoformat`).
    pub state_autoformat: Vec<std::path::PathBuf>,
    /// Where the state filesystem is, when not labelled `CORRAL_STATE`
    /// (`corral.state.dev=LABEL=NAME` or `=/dev/sdb`, RancherOS's `rancher.state.dev`).
    pub state_dev: Option<StateDev>,
    /// Wait for the state device to appear (`corral.state.wait=true`, RancherOS's
    /// `rancher.state.wait`): a disk that is attached late, up to 30 s.
    pub state_wait: Option<bool>,
    /// The state filesystem's type for mounting (`corral.state.fstype`, RancherOS's
    /// `rancher.state.fstype`); `auto` or unset is ext4, the type autoformat makes.
    pub state_fstype: Option<String>,
    /// No boot without the state (`corral.state.required=true`, RancherOS's
    /// `rancher.state.required`): a missing or unmountable state is fatal (recovery)
    /// instead of running from RAM.
    pub state_required: Option<bool>,
    /// A trial boot of an upgraded slot (`corral.trial=N`, which GRUB's menu adds). A
    /// fatal error then reboots, whatever `corral.recovery` says, so that GRUB's count
    /// of the trial's tries goes on and the machine falls back to the good slot.
    pub trial: bool,
    /// The boot slot GRUB booted (`corral.slot=A|B`, which the disk's menu adds): PID 1
    /// reads the root image from that slot's filesystem (`CORRAL_A`, `CORRAL_B`). Without
    /// it, the root image is in the initrd or on the ISO.
    pub slot: Option<char>,
    /// Problems found while parsing, to be logged once logging is up.
    pub warnings: Vec<String>,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            hostname: "corral".to_string(),
            cgroup: Cgroup::V2,
            recovery: Recovery::Shell,
            recovery_shell_asked: false,
            modules: Vec::new(),
            debug_shell: None,
            // RancherOS stops services within 60 s; the manager applies it per service.
            shutdown_timeout: 60,
            // The console runs 15-40 s after the manager starts under TCG.
            rescue_after: 120,
            state_autoformat: Vec::new(),
            state_dev: None,
            state_wait: None,
            state_fstype: None,
            state_required: None,
            trial: false,
            slot: None,
            warnings: Vec::new(),
        }
    }
}

impl BootOptions {
    /// Whether any `corral.state.*` setting is given.
    pub fn has_state_settings(&self) -> bool {
        self.state_dev.is_some()
            || !self.state_autoformat.is_empty()
            || self.state_wait.is_some()
            || self.state_fstype.is_some()
            || self.state_required.is_some()
    }

    /// Takes `other`'s state settings where these options have none: the kernel command
    /// line's win, a local datasource's user-data fills the rest (RancherOS merged its
    /// configuration the same way, the command line on top).
    pub fn fill_state_from(&mut self, other: &BootOptions) {
        if self.state_dev.is_none() {
            self.state_dev = other.state_dev.clone();
        }
        if self.state_autoformat.is_empty() {
            self.state_autoformat = other.state_autoformat.clone();
        }
        self.state_wait = self.state_wait.or(other.state_wait);
        if self.state_fstype.is_none() {
            self.state_fstype = other.state_fstype.clone();
        }
        self.state_required = self.state_required.or(other.state_required);
    }
}

/// `true`/`1`/`yes` or `false`/`0`/`no`, as RancherOS's options take them.
fn boolean(value: &str) -> Option<bool> {
    match value {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// A filesystem type as mount(2) takes it (`ext4`, `xfs`, `auto`): lower-case letters and
/// digits, at most 16.
fn check_fstype(value: &str) -> Option<String> {
    let ok = !value.is_empty()
        && value.len() <= 16
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    ok.then(|| value.to_string())
}

/// Splits a kernel command line into words the way the kernel does: spaces separate
/// words, double quotes group, and the quotes themselves are dropped.
pub fn split(cmdline: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// Parses `value` as a list: `a,b`, `[a, b]` or `a`.
fn list(value: &str) -> Vec<String> {
    value
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The one check of a host name, for the kernel command line (`corral.hostname`) and
/// cloud-config (`hostname`, `corral.hostname`) alike: labels of letters, digits and
/// `-` (not first or last, RFC 1123), at most 63 each, separated by `.`, at most 64 in
/// all because sethostname(2) takes no more (HOST_NAME_MAX).
pub fn check_hostname(name: &str) -> crate::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(crate::HostError::Invalid {
            value: name.to_string(),
            problem: "is not a valid host name; use letters, digits and `-`, in labels of up to \
                      63 separated by `.`, at most 64 in all"
                .into(),
        })
    }
}

/// The one check of a kernel module as `corral.modules` names it, on the command line
/// and in cloud-config: the name as modprobe takes it, optionally parameters after a
/// space.
pub fn check_module(entry: &str) -> crate::Result<()> {
    let name = entry.split_whitespace().next().unwrap_or_default();
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err(crate::HostError::Invalid {
            value: entry.to_string(),
            problem: "is not a module name; write the name as modprobe takes it, like br_netfilter"
                .into(),
        })
    }
}

/// Where the state filesystem is (`corral.state.dev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateDev {
    /// The filesystem with this label (an ext4 label: at most 16 bytes).
    Label(String),
    /// This device.
    Path(std::path::PathBuf),
}

impl StateDev {
    /// `LABEL=NAME` or `/dev/...`; `None` for anything else.
    pub fn parse(value: &str) -> Option<StateDev> {
        if let Some(label) = value.strip_prefix("LABEL=") {
            let ok = !label.is_empty()
                && label.len() <= 16
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            return ok.then(|| StateDev::Label(label.to_string()));
        }
        let ok = value.starts_with("/dev/")
            && !value.contains("..")
            && !value.contains(char::is_whitespace);
        ok.then(|| StateDev::Path(value.into()))
    }
}

impl BootOptions {
    /// Reads the options from a command line. `rancher.` is accepted for `corral.`.
    pub fn parse(cmdline: &str) -> BootOptions {
        let mut opts = BootOptions::default();
        for word in split(cmdline) {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            let Some(key) = key
                .strip_prefix("corral.")
                .or_else(|| key.strip_prefix("rancher."))
            else {
                continue;
            };
            let mut bad = |fix: &str| {
                opts_warn(&mut opts.warnings, key, value, fix);
            };
            match key {
                "hostname" => match check_hostname(value) {
                    Ok(()) => opts.hostname = value.to_string(),
                    Err(_) => bad("use letters, digits, '-' and '.', at most 64"),
                },
                "cgroup" => match value {
                    "v1" => opts.cgroup = Cgroup::V1,
                    "v2" => opts.cgroup = Cgroup::V2,
                    _ => bad("use v1 or v2"),
                },
                "recovery" => match value {
                    "shell" => {
                        opts.recovery = Recovery::Shell;
                        opts.recovery_shell_asked = true;
                    }
                    "poweroff" => {
                        opts.recovery = Recovery::Poweroff;
                        opts.recovery_shell_asked = false;
                    }
                    "reboot" => {
                        opts.recovery = Recovery::Reboot;
                        opts.recovery_shell_asked = false;
                    }
                    _ => bad("use shell, poweroff or reboot"),
                },
                "modules" => {
                    for module in list(value) {
                        match check_module(&module) {
                            Ok(()) => opts.modules.push(module),
                            Err(why) => {
                                opts_warn(&mut opts.warnings, key, &module, &why.to_string())
                            }
                        }
                    }
                }
                "debug_shell" if value.starts_with("tty") || value.starts_with("hvc") => {
                    opts.debug_shell = Some(value.to_string())
                }
                "debug_shell" => bad("name a tty, such as ttyS1"),
                "state.autoformat" => {
                    for device in list(value) {
                        if device.starts_with("/dev/") && !device.contains("..") {
                            opts.state_autoformat.push(device.into());
                        } else {
                            opts_warn(
                                &mut opts.warnings,
                                key,
                                &device,
                                "name devices under /dev, such as /dev/vda",
                            );
                        }
                    }
                }
                "state.dev" => match StateDev::parse(value) {
                    Some(dev) => opts.state_dev = Some(dev),
                    None => bad("use LABEL=NAME (letters, digits, `_`, `-`; at most 16) or a device under /dev"),
                },
                "state.wait" => match boolean(value) {
                    Some(b) => opts.state_wait = Some(b),
                    None => bad("use true or false"),
                },
                "state.required" => match boolean(value) {
                    Some(b) => opts.state_required = Some(b),
                    None => bad("use true or false"),
                },
                "state.fstype" => match check_fstype(value) {
                    Some(t) => opts.state_fstype = Some(t),
                    None => bad("name a filesystem type, such as ext4 or auto"),
                },
                "shutdown_timeout" => match value.parse::<u64>() {
                    Ok(n) if n <= MAX_SHUTDOWN_TIMEOUT => opts.shutdown_timeout = n,
                    Ok(_) => bad("use at most 3600 seconds"),
                    Err(_) => bad("use a whole number of seconds"),
                },
                "rescue_after" => match value.parse::<u64>() {
                    Ok(n) if n <= MAX_SHUTDOWN_TIMEOUT => opts.rescue_after = n,
                    Ok(_) => bad("use at most 3600 seconds (0: never)"),
                    Err(_) => bad("use a whole number of seconds (0: never)"),
                },
                "trial" => opts.trial = true,
                "slot" => match value {
                    "A" => opts.slot = Some('A'),
                    "B" => opts.slot = Some('B'),
                    _ => bad("use A or B"),
                },
                _ => {}
            }
        }
        if opts.trial {
            opts.recovery = Recovery::Reboot;
            opts.recovery_shell_asked = false;
        }
        opts
    }
}

fn opts_warn(warnings: &mut Vec<String>, key: &str, value: &str, fix: &str) {
    warnings.push(format!(
        "ignoring kernel option corral.{key}={value:?}: {fix}"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_device_and_wait_read_as_rancheros_writes_them() {
        let o = BootOptions::parse("rancher.state.dev=LABEL=RANCHER_STATE rancher.state.wait=true");
        assert_eq!(o.state_dev, Some(StateDev::Label("RANCHER_STATE".into())));
        assert_eq!(o.state_wait, Some(true));
        let o = BootOptions::parse("corral.state.dev=/dev/sdb");
        assert_eq!(o.state_dev, Some(StateDev::Path("/dev/sdb".into())));
        for bad in [
            "corral.state.dev=LABEL=",
            "corral.state.dev=sdb",
            "corral.state.dev=/dev/../etc/x",
            "corral.state.dev=LABEL=much_too_long_a_label",
        ] {
            let o = BootOptions::parse(bad);
            assert_eq!(o.state_dev, None, "{bad}");
            assert_eq!(o.warnings.len(), 1, "{bad}");
        }
    }

    #[test]
    fn fstype_and_required_read_and_a_second_source_fills_only_what_is_unset() {
        let mut line = BootOptions::parse(
            "rancher.state.fstype=xfs rancher.state.wait=false corral.state.required=yes",
        );
        assert_eq!(line.state_fstype.as_deref(), Some("xfs"));
        assert_eq!(line.state_required, Some(true));
        assert!(line.has_state_settings());
        assert!(!BootOptions::parse("corral.hostname=a").has_state_settings());
        for bad in [
            "corral.state.fstype=Ext4",
            "corral.state.fstype=ext4;rm",
            "corral.state.required=maybe",
        ] {
            let o = BootOptions::parse(bad);
            assert!(!o.has_state_settings(), "{bad}");
            assert_eq!(o.warnings.len(), 1, "{bad}");
        }
        let seed = BootOptions::parse(
            "corral.state.dev=LABEL=SEED corral.state.autoformat=[/dev/vdb] \
             corral.state.wait=true corral.state.fstype=ext4 corral.state.required=false",
        );
        line.fill_state_from(&seed);
        assert_eq!(line.state_dev, Some(StateDev::Label("SEED".into())));
        assert_eq!(
            line.state_autoformat,
            vec![std::path::PathBuf::from("/dev/vdb")]
        );
        assert_eq!(line.state_wait, Some(false), "the command line's wait wins");
        assert_eq!(line.state_fstype.as_deref(), Some("xfs"));
        assert_eq!(line.state_required, Some(true));
    }

    #[test]
    fn a_trial_boot_reboots_on_a_fatal_error_whatever_recovery_says() {
        let opts = BootOptions::parse("corral.recovery=shell corral.slot=B corral.trial=2");
        assert!(opts.trial);
        assert_eq!(opts.recovery, Recovery::Reboot);
        assert!(!opts.recovery_shell_asked);
        assert_eq!(
            BootOptions::parse("corral.slot=A").recovery,
            Recovery::Shell
        );
    }

    #[test]
    fn the_boot_slot_is_a_or_b() {
        assert_eq!(BootOptions::parse("corral.slot=B").slot, Some('B'));
        assert_eq!(BootOptions::parse("corral.slot=A").slot, Some('A'));
        let bad = BootOptions::parse("corral.slot=C");
        assert_eq!(bad.slot, None);
        assert_eq!(bad.warnings.len(), 1, "{:?}", bad.warnings);
        assert_eq!(BootOptions::parse("console=ttyS0").slot, None);
    }

    #[test]
    fn split_honours_quotes_like_the_kernel() {
        struct Case {
            line: &'static str,
            words: &'static [&'static str],
        }
        let cases = [
            Case {
                line: "",
                words: &[],
            },
            Case {
                line: "  ro  quiet ",
                words: &["ro", "quiet"],
            },
            Case {
                line: "a=\"x y\" b",
                words: &["a=x y", "b"],
            },
            Case {
                line: "corral.ssh_authorized_keys=\"[ssh-ed25519 AAAA me]\"\n",
                words: &["corral.ssh_authorized_keys=[ssh-ed25519 AAAA me]"],
            },
            Case {
                line: "\"\"",
                words: &[""],
            },
            Case {
                line: "unterminated=\"a b",
                words: &["unterminated=a b"],
            },
        ];
        for case in cases {
            assert_eq!(split(case.line), case.words, "line {:?}", case.line);
        }
    }

    #[test]
    fn defaults_when_no_option_is_given() {
        let opts = BootOptions::parse("console=ttyS0 quiet");
        assert_eq!(opts, BootOptions::default());
    }

    #[test]
    fn reads_corral_and_rancher_options() {
        let opts = BootOptions::parse(
            "corral.hostname=node1 rancher.cgroup=v1 corral.modules=\"[vfio, kvm]\" \
             corral.modules=tun corral.debug_shell=ttyS1 corral.recovery=poweroff \
             corral.shutdown_timeout=5",
        );
        assert_eq!(opts.hostname, "node1");
        assert_eq!(opts.cgroup, Cgroup::V1);
        assert_eq!(opts.modules, ["vfio", "kvm", "tun"]);
        assert_eq!(opts.debug_shell.as_deref(), Some("ttyS1"));
        assert_eq!(opts.recovery, Recovery::Poweroff);
        assert!(!opts.recovery_shell_asked);
        assert_eq!(opts.shutdown_timeout, 5);
        assert!(opts.warnings.is_empty());
        // The shell is the default for a boot that fails; asked for, it is also the
        // running machine's last way in (the last word counts, as everywhere).
        assert!(!BootOptions::parse("quiet").recovery_shell_asked);
        assert!(BootOptions::parse("corral.recovery=shell").recovery_shell_asked);
        assert!(
            !BootOptions::parse("corral.recovery=shell corral.recovery=reboot")
                .recovery_shell_asked
        );
    }

    #[test]
    fn bad_values_are_warnings_and_keep_the_default() {
        let opts = BootOptions::parse(
            "corral.hostname=bad_name! corral.cgroup=v3 corral.recovery=pray \
             corral.shutdown_timeout=soon corral.debug_shell=/etc/passwd corral.unknown=1",
        );
        let defaults = BootOptions::default();
        assert_eq!(opts.hostname, defaults.hostname);
        assert_eq!(opts.cgroup, defaults.cgroup);
        assert_eq!(opts.recovery, defaults.recovery);
        assert_eq!(opts.shutdown_timeout, defaults.shutdown_timeout);
        assert_eq!(opts.debug_shell, None);
        assert_eq!(opts.warnings.len(), 5, "{:?}", opts.warnings);
        assert!(opts.warnings[0].contains("corral.hostname"));
        assert!(opts.warnings[1].contains("use v1 or v2"));
    }

    #[test]
    fn hostnames_and_modules_are_checked_as_cloud_config_checks_them() {
        assert!(check_hostname("node-7.example").is_ok());
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "a_b",
            &"x".repeat(65),
            &format!("{}.b", "a".repeat(64)),
        ] {
            assert!(check_hostname(bad).is_err(), "{bad:?}");
        }
        let opts = BootOptions::parse("corral.modules=dummy,../x corral.hostname=-bad");
        assert_eq!(opts.modules, ["dummy"]);
        assert_eq!(opts.hostname, "corral", "a bad name keeps the default");
        assert_eq!(opts.warnings.len(), 2, "{:?}", opts.warnings);
        assert!(check_module("br_netfilter nf_conntrack_helper=1").is_ok());
    }

    #[test]
    fn the_rescue_delay_is_read_and_bounded() {
        assert_eq!(BootOptions::parse("").rescue_after, 120);
        assert_eq!(
            BootOptions::parse("corral.rescue_after=20").rescue_after,
            20
        );
        assert_eq!(BootOptions::parse("corral.rescue_after=0").rescue_after, 0);
        let opts = BootOptions::parse("corral.rescue_after=99999");
        assert_eq!(opts.rescue_after, 120);
        assert_eq!(opts.warnings.len(), 1, "{:?}", opts.warnings);
    }

    #[test]
    fn a_shutdown_timeout_past_an_hour_is_a_warning_not_an_overflow() {
        let opts = BootOptions::parse("corral.shutdown_timeout=18446744073709551615");
        assert_eq!(opts.shutdown_timeout, 60);
        assert_eq!(opts.warnings.len(), 1, "{:?}", opts.warnings);
        assert_eq!(
            BootOptions::parse("corral.shutdown_timeout=3600").shutdown_timeout,
            3600
        );
    }
}

//! `corral console-init`, the console container's entrypoint: the `corral` user's ssh
//! access, the host keys, `write_files`, then sshd and the gettys kept running; and
//! `corral runcmd`, which it starts once. `write_files` and runcmd run at the first
//! console start of a boot only.

use crate::console::{self, USER};
use crate::passwd;
use anyhow::Context;
use corral_host::respawn::{self, Respawn};
use nix::sys::signal::{SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::path::Path;
use std::time::Duration;

/// On /run (the host's tmpfs, one per boot): the console has written `write_files` and
/// started runcmd in this boot.
const ONCE: &str = "/run/corral/console-once";

/// runcmd, then a `#!` user-data script, each to the end; the console starts this.
pub(super) fn runcmd() -> anyhow::Result<()> {
    corral_host::kmsg::KmsgLogger::init("corral-runcmd", log::LevelFilter::Info);
    let (config, _) = corral_config::load().context("reading the configuration")?;
    let script = Path::new(crate::usercmd::SCRIPT);
    let script = script.exists().then_some(script);
    let starts = crate::usercmd::start_scripts(Path::new("/"));
    if config.runcmd.is_empty() && script.is_none() && starts.is_empty() {
        return Ok(());
    }
    let report = crate::usercmd::run(&config.runcmd, script, &starts);
    for line in &report {
        log::info!("{line}");
    }
    let log_file = Path::new(crate::usercmd::LOG);
    crate::usercmd::record(log_file, &report)
        .with_context(|| format!("writing {}", log_file.display()))
}

/// Sets up ssh access, then keeps sshd and the gettys running until the container is
/// stopped.
pub(super) fn console_init() -> anyhow::Result<()> {
    corral_host::kmsg::KmsgLogger::init("corral-console", log::LevelFilter::Info);
    let root = Path::new("/");
    let (config, errors) = corral_config::load().context("reading the configuration")?;
    for e in errors {
        log::error!("{e}");
    }
    let account = passwd::lookup(root, USER)
        .context("reading /etc/passwd")?
        .with_context(|| format!("the user {USER} is missing from /etc/passwd"))?;
    let keys = config.authorized_keys();
    // A key file that cannot be written (a full state partition) is no reason to leave
    // the machine without sshd and gettys: the keys already there stay in force.
    let file = match console::install_authorized_keys(root, &account, &keys) {
        Ok(file) => Some(file),
        Err(e) => {
            log::error!(
                "installing the ssh keys of {USER}: {e}; the keys already in its \
                 authorized_keys, if any, stay in force"
            );
            None
        }
    };
    if let Some(file) = file.filter(|_| !keys.is_empty()) {
        log::info!(
            "{} authorized keys for {USER} in {}",
            keys.len(),
            file.display()
        );
    }
    if keys.is_empty() {
        log::warn!(
            "no ssh_authorized_keys in the configuration: nobody can log in over ssh \
             (set corral.ssh_authorized_keys=[...] on the kernel command line)"
        );
    }
    // write_files and runcmd once per boot: not again when the console's container or
    // the system engine is restarted (an `append` would append twice, a command run twice).
    let first_start = !Path::new(ONCE).exists();
    if first_start {
        // A daemon.json for the engine is merged into Corral's by the manager, which
        // writes the file the engine reads; the console leaves it alone.
        let files = config
            .write_files
            .iter()
            .filter(|f| f.container.is_none() && &*f.path != corral_user_docker::user_json::PATH);
        for f in files {
            match crate::files::write(root, f).and_then(|()| crate::files::share_cert(root, f)) {
                Ok(None) => log::info!("wrote {}", f.path),
                Ok(Some(copy)) => {
                    log::info!("wrote {}, and {} for the engines", f.path, copy.display())
                }
                Err(e) => log::error!("{e}"),
            }
        }
        let marked = Path::new(ONCE)
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(ONCE, b""));
        if let Err(e) = marked {
            log::error!("writing {ONCE}: {e}; a restart of the console runs runcmd again");
        }
    } else {
        log::info!(
            "write_files and runcmd ran at this boot's first console start; not again \
             ({ONCE})"
        );
    }
    // cloud-init's users, beside corral.
    let accounts: Vec<_> = config.accounts().collect();
    let (did, problems) = crate::users::apply(root, &accounts);
    for line in did {
        log::info!("{line}");
    }
    for line in problems {
        log::error!("{line}");
    }
    // RancherOS's /home/rancher, for scripts that write there.
    match console::link_rancher_home(root, &account.home) {
        Ok(true) => log::info!(
            "/home/{} links to {}",
            console::RANCHER_USER,
            account.home.display()
        ),
        Ok(false) => {}
        Err(e) => log::warn!("linking /home/{}: {e}", console::RANCHER_USER),
    }
    // Registry credentials for `docker` as corral and as root.
    for name in [USER, "root"] {
        let account = match passwd::lookup(root, name) {
            Ok(Some(a)) => a,
            _ => continue,
        };
        match crate::registries::install(root, &account, &config.corral.registry_auths) {
            Ok(Some(path)) => log::info!(
                "{} registry credentials in {}",
                config.corral.registry_auths.len(),
                path.display()
            ),
            Ok(None) => {}
            Err(e) => log::error!("corral.registry_auths: {e}"),
        }
    }
    // cloud-init's time zone (UTC without one).
    let zone = match config.time_zone() {
        Ok(tz) => crate::timezone::apply(root, tz),
        Err(why) => crate::timezone::apply(root, None)
            .and_then(|_| Err(format!("{why}; the console is on UTC"))),
    };
    match zone {
        Ok(zone) => log::info!("time zone {zone}"),
        Err(why) => log::warn!("{why}"),
    }
    // The proxies for login shells; the container's own environment has them already
    // (the manager gives them to the console), which sshd does not pass to sessions.
    let proxies = config.corral.network.proxy_environment();
    if let Err(e) = console::install_proxy_profile(root, &proxies) {
        log::error!("writing {}: {e}", console::PROXY_PROFILE);
    }
    let keygen = Path::new(console::SSH_KEYGEN);
    let dir = Path::new(console::HOST_KEY_DIR);
    for (name, text) in &config.corral.ssh.keys {
        match console::install_host_key(dir, name, text) {
            Ok(path) => log::info!("ssh host key {} from corral.ssh.keys", path.display()),
            Err(e) => log::error!("corral.ssh.keys.{name}: {e}"),
        }
    }
    for key in console::ensure_host_keys(dir, keygen).context("making the ssh host keys")? {
        log::info!("made the ssh host key {}", key.display());
    }
    for t in console::HOST_KEY_TYPES {
        let public = console::host_key(dir, t).with_extension("pub");
        if let Some(fp) = console::fingerprint(keygen, &public) {
            log::info!("ssh host key {fp}");
        }
    }
    std::fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;

    let signals = corral_host::handled_signals();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .context("blocking signals")?;
    let sfd = SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .context("opening a signalfd")?;
    let ssh = &config.corral.ssh;
    let mut sshd_args: Vec<String> = vec!["-D".into(), "-e".into()];
    sshd_args.extend(["-p".into(), ssh.port.unwrap_or(22).to_string()]);
    if let Some(a) = ssh.listen_address {
        sshd_args.extend(["-o".into(), format!("ListenAddress={a}")]);
    }
    let sshd_args: Vec<&str> = sshd_args.iter().map(String::as_str).collect();
    let mut children = Vec::new();
    if ssh.daemon.unwrap_or(true) {
        children.push(Respawn::new("sshd", console::SSHD, &sshd_args, None));
    } else {
        log::warn!("corral.ssh.daemon is false: no sshd");
    }
    for tty in console::consoles(root) {
        let autologin = config.corral.autologin.covers(tty);
        let args = console::getty_args(tty, autologin);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut getty = Respawn::new(&format!("getty on {tty}"), console::BUSYBOX, &args, None);
        // A getty or a shell on a console holds nothing worth a grace period.
        getty.stop = (Signal::SIGKILL, Some(Duration::from_secs(2)));
        if autologin {
            log::warn!("autologin of {USER} on {tty} (corral.autologin)");
        }
        children.push(getty);
    }
    // runcmd and a user-data script run beside sshd and the gettys, once; the
    // supervisor below reaps the process when it ends.
    let work = !config.runcmd.is_empty()
        || Path::new(crate::usercmd::SCRIPT).exists()
        || !crate::usercmd::start_scripts(Path::new("/")).is_empty();
    if first_start && work {
        match std::env::current_exe()
            .and_then(|exe| std::process::Command::new(exe).arg("runcmd").spawn())
        {
            Ok(child) => log::info!("runcmd started (pid {})", child.id()),
            Err(e) => log::error!("starting runcmd: {e}"),
        }
    }
    let mut refs: Vec<&mut Respawn> = children.iter_mut().collect();
    let action = respawn::run(&sfd, &mut refs);
    log::info!("stopping ({})", action.verb());
    respawn::stop(&mut refs, Duration::from_secs(5));
    Ok(())
}

//! `corral`: today the console container's entrypoint, `corral console-init`.

use anyhow::Context;
use corral_cli::console::{self, USER};
use corral_cli::passwd;
use corral_init::supervisor::{self, Respawn};
use nix::sys::signal::{SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::path::Path;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("console-init") => console_init(),
        Some(other) => anyhow::bail!(
            "unknown command {other:?}; the commands are: console-init (the console \
             service's entrypoint)"
        ),
        None => anyhow::bail!("usage: corral console-init"),
    }
}

/// Sets up ssh access, then keeps sshd and the gettys running until the container is
/// stopped.
fn console_init() -> anyhow::Result<()> {
    corral_init::kmsg::KmsgLogger::init("corral-console", log::LevelFilter::Info);
    let root = Path::new("/");
    let (config, errors) = corral_config::load().context("reading the configuration")?;
    for e in errors {
        log::error!("{e}");
    }
    let account = passwd::lookup(root, USER)
        .context("reading /etc/passwd")?
        .with_context(|| format!("the user {USER} is missing from /etc/passwd"))?;
    let keys = config.authorized_keys();
    let file = console::install_authorized_keys(root, &account, &keys)
        .with_context(|| format!("installing the ssh keys of {USER}"))?;
    if keys.is_empty() {
        log::warn!(
            "no ssh_authorized_keys in the configuration: nobody can log in over ssh \
             (set corral.ssh_authorized_keys=[...] on the kernel command line)"
        );
    } else {
        log::info!(
            "{} authorized keys for {USER} in {}",
            keys.len(),
            file.display()
        );
    }
    let keygen = Path::new(console::SSH_KEYGEN);
    let dir = Path::new(console::HOST_KEY_DIR);
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

    let signals = corral_init::handled_signals();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .context("blocking signals")?;
    let sfd = SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .context("opening a signalfd")?;
    let mut children = vec![Respawn::new("sshd", console::SSHD, &["-D", "-e"], None)];
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
    let mut refs: Vec<&mut Respawn> = children.iter_mut().collect();
    let action = supervisor::run(&sfd, &mut refs);
    log::info!("stopping ({})", action.verb());
    supervisor::stop(&mut refs, Duration::from_secs(5));
    Ok(())
}

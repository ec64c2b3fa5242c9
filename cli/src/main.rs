//! `corral`: the host CLI. `config` and `install` work on their own; `os version`,
//! `service ...`, `engine ...`, `tls generate` and `boot-report` ask the manager over
//! /run/corral/api.sock;
//! `poweroff` and `reboot` ask PID 1; and the console container's entrypoint
//! (`corral console-init`, which starts `corral runcmd`).

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use corral_api::protocol::Request;
use corral_cli::api::Format;
use corral_cli::console::{self, USER};
use corral_cli::install::{self, host::Host};
use corral_cli::passwd;
use corral_host::respawn::{self, Respawn};
use nix::sys::signal::{SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Corral's command: the machine's configuration, and installing Corral to a disk.
#[derive(Debug, Parser)]
#[command(name = "corral", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The machine's configuration (cloud-config).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Installs Corral from the ISO this machine booted onto a disk (GRUB for BIOS and
    /// UEFI, boot slot A, the state partition), then reboots into it.
    Install(InstallArgs),
    /// The system services: list, start, stop, restart, logs.
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// The user engine: the engine images there are, and which one runs.
    Engine {
        #[command(subcommand)]
        command: EngineCommand,
    },
    /// The user engine's TLS certificates.
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
    /// The operating system.
    Os {
        #[command(subcommand)]
        command: OsCommand,
    },
    /// This boot's timeline from the manager's records: each step, when it began and
    /// ended, and the critical path (the steps that made the boot as long as it was).
    BootReport {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Stops every service and workload cleanly and powers the machine off.
    Poweroff,
    /// Stops every service and workload cleanly and reboots.
    Reboot,
    /// Prints a completion script for a shell, such as
    /// `corral completion bash > /etc/bash_completion.d/corral`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The console service's entrypoint: ssh keys, sshd and the gettys.
    #[command(hide = true)]
    ConsoleInit,
    /// Runs runcmd and a user-data script (console-init starts it).
    #[command(hide = true)]
    Runcmd,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Prints the value at KEY in the configuration in force (a dotted path such as
    /// hostname or corral.docker.engine; rancher.* is corral.*).
    Get { key: String },
    /// Sets KEY to VALUE (YAML: 3, true, [a, b]; else text) in this machine's saved
    /// configuration, if the result validates; it takes effect at the next boot.
    Set { key: String, value: String },
    /// Merges a cloud-config file (or stdin) into this machine's saved configuration, if
    /// the result validates; it takes effect at the next boot.
    Merge {
        /// The file to merge (`-` or none: stdin).
        #[arg(short, long, value_name = "FILE")]
        input: Option<PathBuf>,
    },
    /// Prints the configuration given to this machine (its user-data and what `set` and
    /// `merge` saved) as YAML.
    Export {
        /// Every layer in force instead: OEM, user-data, metadata, saved changes and the
        /// kernel command line, merged.
        #[arg(long)]
        full: bool,
    },
    /// Lists every problem in a cloud-config (a file, or this machine's configuration)
    /// with file, line, column and key; exits 1 if there is one.
    Validate {
        /// The file to check (`-` reads stdin); without it, this machine's layers.
        #[arg(short, long, value_name = "FILE")]
        input: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ServiceCommand {
    /// Every service with its image, state, health and since when (also `ps`).
    #[command(visible_alias = "ps")]
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Starts stopped services.
    Start {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Stops services; they stay stopped until started, or until the next boot.
    Stop {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Restarts services.
    Restart {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Turns a service on at every boot: a name from the built-in catalogue (crond), a
    /// services file (./name.yml) or a URL to one. `up` starts it now.
    Enable { service: String },
    /// Turns a service off: stops and removes it now, and it stays off at later boots.
    Disable { name: String },
    /// Brings services (all when none is named) to what the saved configuration asks:
    /// creates what is missing, starts what is stopped, recreates what changed.
    Up {
        names: Vec<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// A service's output (what its container wrote).
    Logs {
        /// Only the last N lines.
        #[arg(short = 'n', long, value_name = "N")]
        lines: Option<u32>,
        /// Then keep printing new lines as they come (Ctrl-C ends).
        #[arg(short, long)]
        follow: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum EngineCommand {
    /// The engine images in the system engine, the one in use marked.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Runs ENGINE as the user engine from now on, saved for later boots: a name from
    /// `engine list` (docker-26.1) or an engine image. The engine in use keeps running
    /// if ENGINE is not an engine or its dockerd does not start, and comes back if the
    /// new one does not answer.
    Switch {
        #[arg(value_name = "ENGINE")]
        image: String,
    },
}

#[derive(Debug, Subcommand)]
enum TlsCommand {
    /// Makes the user engine a new CA and server and client certificates (in
    /// /var/lib/corral/tls; the corral user gets the client's in ~/.docker). The server's
    /// is good for localhost, the host name, the machine's addresses and each --hostname.
    /// The engine serves them from its next start; clients with the old files are refused.
    Generate {
        /// Another name or address clients reach the engine by (repeatable).
        #[arg(short = 'H', long = "hostname", value_name = "NAME")]
        hostnames: Vec<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum OsCommand {
    /// Corral's version, the kernel, both engines' versions and the build.
    Version {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Debug, clap::Args)]
struct InstallArgs {
    /// The whole disk to install to, such as /dev/vda or /dev/nvme0n1 (erased).
    #[arg(short, long, value_name = "DEVICE")]
    device: PathBuf,
    /// A cloud-config to keep as the installed machine's configuration.
    #[arg(short, long, value_name = "FILE")]
    cloud_config: Option<PathBuf>,
    /// Erase the disk without asking.
    #[arg(short, long)]
    force: bool,
    /// Stay up when done instead of rebooting.
    #[arg(long)]
    no_reboot: bool,
}

/// Exit codes: 0 done, 1 the user's error (bad arguments or input), 2 the machine's.
const USER_ERROR: u8 = 1;
const SYSTEM_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(USER_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::ConsoleInit => console_init(),
        Command::Runcmd => runcmd(),
        Command::Config { command } => return config(command),
        Command::Install(args) => return install(&args),
        Command::Service { command } => return service(command),
        Command::Os {
            command: OsCommand::Version { format },
        } => return manager(vec![Request::OsVersion], format),
        Command::BootReport { format } => return manager(vec![Request::BootReport], format),
        Command::Engine {
            command: EngineCommand::List { format },
        } => return manager(vec![Request::EngineList], format),
        Command::Engine {
            command: EngineCommand::Switch { image },
        } => return manager(vec![Request::EngineSwitch { image }], Format::Table),
        Command::Tls {
            command: TlsCommand::Generate { hostnames, format },
        } => return manager(vec![Request::TlsGenerate { hostnames }], format),
        Command::Poweroff => return power(corral_host::power::Action::Poweroff),
        Command::Reboot => return power(corral_host::power::Action::Reboot),
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "corral", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral: {e:#}");
            ExitCode::from(SYSTEM_ERROR)
        }
    }
}

fn config(command: ConfigCommand) -> ExitCode {
    use corral_cli::config;
    use corral_config::edit::Machine;
    type Run = Box<dyn FnOnce(&Machine) -> Result<String, corral_cli::api::Failure>>;
    let (name, run): (&str, Run) = match command {
        ConfigCommand::Get { key } => ("get", Box::new(move |m| config::get(m, &key))),
        ConfigCommand::Set { key, value } => {
            ("set", Box::new(move |m| config::set(m, &key, &value)))
        }
        ConfigCommand::Merge { input } => (
            "merge",
            Box::new(move |m| config::merge(m, input.as_deref())),
        ),
        ConfigCommand::Export { full } => ("export", Box::new(move |m| config::export(m, full))),
        ConfigCommand::Validate { input } => return validate(input.as_deref()),
    };
    // Root first: nothing is read or written for anyone else.
    if let Err(f) = config::need_root(name) {
        return failed(&f);
    }
    match run(&Machine::here()) {
        Ok(text) if text.is_empty() => ExitCode::SUCCESS,
        Ok(text) => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(f) => failed(&f),
    }
}

/// Prints a failure; exit 1 for the user's, 2 for the machine's.
fn failed(f: &corral_cli::api::Failure) -> ExitCode {
    eprintln!("corral: {}", f.message);
    ExitCode::from(match f.kind {
        corral_api::ErrorKind::User => USER_ERROR,
        corral_api::ErrorKind::System => SYSTEM_ERROR,
    })
}

fn service(command: ServiceCommand) -> ExitCode {
    let each =
        |names: Vec<String>, make: fn(String) -> Request| names.into_iter().map(make).collect();
    match command {
        ServiceCommand::List { format } => manager(vec![Request::ServiceList], format),
        ServiceCommand::Start { names } => manager(
            each(names, |name| Request::ServiceStart { name }),
            Format::Table,
        ),
        ServiceCommand::Stop { names } => manager(
            each(names, |name| Request::ServiceStop { name }),
            Format::Table,
        ),
        ServiceCommand::Restart { names } => manager(
            each(names, |name| Request::ServiceRestart { name }),
            Format::Table,
        ),
        ServiceCommand::Logs {
            lines,
            follow,
            format,
            name,
        } => manager(
            vec![Request::ServiceLogs {
                name,
                lines,
                follow,
            }],
            format,
        ),
        ServiceCommand::Enable { service } => match corral_cli::api::enable_request(&service) {
            Ok(request) => manager(vec![request], Format::Table),
            Err(f) => failed(&f),
        },
        ServiceCommand::Disable { name } => {
            manager(vec![Request::ServiceDisable { name }], Format::Table)
        }
        ServiceCommand::Up { names, format } => manager(vec![Request::ServiceUp { names }], format),
    }
}

/// Sends each request to the manager in turn, printing each answer; stops at the first
/// failure, with exit 1 for the user's and 2 for the machine's.
fn manager(requests: Vec<Request>, format: Format) -> ExitCode {
    let socket = Path::new(corral_api::SOCKET);
    for request in requests {
        if let Err(f) = corral_cli::api::run(socket, request, format) {
            return failed(&f);
        }
    }
    ExitCode::SUCCESS
}

fn power(action: corral_host::power::Action) -> ExitCode {
    match corral_host::power::request(action, false) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral: {e}");
            ExitCode::from(USER_ERROR)
        }
    }
}

fn validate(input: Option<&Path>) -> ExitCode {
    let (what, report) = match input {
        None => (
            "this machine's configuration".to_string(),
            corral_cli::validate::this_machine(),
        ),
        Some(file) => match corral_cli::validate::file(file) {
            Ok(r) => (file.display().to_string(), r),
            Err(e) => {
                eprintln!("corral: reading {}: {e}", file.display());
                return ExitCode::from(USER_ERROR);
            }
        },
    };
    if corral_cli::validate::print(&what, &report) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(USER_ERROR)
    }
}

fn install(args: &InstallArgs) -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "corral: install writes a whole disk and needs root: sudo corral install -d {}",
            args.device.display()
        );
        return ExitCode::from(USER_ERROR);
    }
    let req = install::Request {
        device: args.device.clone(),
        cloud_config: args.cloud_config.clone(),
        force: args.force,
        reboot: !args.no_reboot,
        work: std::env::temp_dir().join(format!("corral-install.{}", std::process::id())),
    };
    let host = install::host::Linux::default();
    let mut ask = |question: &str| -> std::io::Result<bool> {
        eprint!("{question}");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        Ok(install::devices::is_yes(&answer))
    };
    let started = std::time::Instant::now();
    match install::install(&host, &req, &mut ask) {
        Ok(done) => {
            println!(
                "Corral is installed on {} (from {}): boot slot A, state partition {:.1} GiB{} ({:.1}s).",
                done.disk.display(),
                done.source.display(),
                done.state_bytes as f64 / (1u64 << 30) as f64,
                done.cloud_config
                    .as_ref()
                    .map(|c| format!(", cloud-config from {}", c.display()))
                    .unwrap_or_default(),
                started.elapsed().as_secs_f64()
            );
            if !req.reboot {
                println!("Remove the ISO (or boot from the disk) and reboot to start it.");
                return ExitCode::SUCCESS;
            }
            println!("Rebooting; remove the ISO if the machine boots it first.");
            match host.reboot() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("corral: asking PID 1 to reboot: {e}; run sudo reboot");
                    ExitCode::from(SYSTEM_ERROR)
                }
            }
        }
        Err(e) => {
            eprintln!("corral install: {e}");
            ExitCode::from(if e.is_user_error() {
                USER_ERROR
            } else {
                SYSTEM_ERROR
            })
        }
    }
}

/// runcmd, then a `#!` user-data script, each to the end; the console starts this.
fn runcmd() -> anyhow::Result<()> {
    corral_host::kmsg::KmsgLogger::init("corral-runcmd", log::LevelFilter::Info);
    let (config, _) = corral_config::load().context("reading the configuration")?;
    let script = Path::new(corral_cli::usercmd::SCRIPT);
    let script = script.exists().then_some(script);
    if config.runcmd.is_empty() && script.is_none() {
        return Ok(());
    }
    let report = corral_cli::usercmd::run(&config.runcmd, script);
    for line in &report {
        log::info!("{line}");
    }
    let log_file = Path::new(corral_cli::usercmd::LOG);
    corral_cli::usercmd::record(log_file, &report)
        .with_context(|| format!("writing {}", log_file.display()))
}

/// Sets up ssh access, then keeps sshd and the gettys running until the container is
/// stopped.
fn console_init() -> anyhow::Result<()> {
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
    for f in config.write_files.iter().filter(|f| f.container.is_none()) {
        match corral_cli::files::write(root, f) {
            Ok(()) => log::info!("wrote {}", f.path),
            Err(e) => log::error!("{e}"),
        }
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
    if !config.runcmd.is_empty() || Path::new(corral_cli::usercmd::SCRIPT).exists() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("corral").chain(args.iter().copied()))
    }

    #[test]
    fn every_command_is_well_formed_and_has_help() {
        Cli::command().debug_assert();
        let mut missing = Vec::new();
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in c.get_subcommands().filter(|s| !s.is_hide_set()) {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        walk(&Cli::command(), "corral", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:?}");
    }

    #[test]
    fn tls_generate_takes_repeated_host_names_and_a_format() {
        let cli = parse(&[
            "tls",
            "generate",
            "-H",
            "a.example",
            "--hostname",
            "192.0.2.1",
            "--format",
            "json",
        ])
        .expect("parses");
        match cli.command {
            Command::Tls {
                command: TlsCommand::Generate { hostnames, format },
            } => {
                assert_eq!(hostnames, ["a.example", "192.0.2.1"]);
                assert_eq!(format, Format::Json);
            }
            other => panic!("{other:?}"),
        }
        let plain = parse(&["tls", "generate"]).expect("no names needed");
        assert!(matches!(
            plain.command,
            Command::Tls {
                command: TlsCommand::Generate { ref hostnames, format: Format::Table }
            } if hostnames.is_empty()
        ));
    }

    #[test]
    fn listings_take_json_and_actions_need_their_names() {
        for args in [
            &["service", "list", "--format", "json"][..],
            &["service", "ps", "--format", "json"],
            &["service", "up", "--format", "json"],
            &["service", "logs", "--format", "json", "syslog"],
            &["engine", "list", "--format", "json"],
            &["os", "version", "--format", "json"],
            &["boot-report", "--format", "json"],
        ] {
            parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        let logs = parse(&["service", "logs", "-f", "-n", "5", "syslog"]).expect("logs");
        assert!(matches!(
            logs.command,
            Command::Service {
                command: ServiceCommand::Logs {
                    follow: true,
                    lines: Some(5),
                    ..
                }
            }
        ));
        for args in [
            &["service", "stop"][..],
            &["service", "logs"],
            &["engine", "switch"],
            &["config", "set", "hostname"],
            &["service", "list", "--format", "xml"],
            &["service", "logs", "-n", "many", "syslog"],
        ] {
            let e = parse(args).expect_err(&format!("{args:?}"));
            assert!(e.use_stderr(), "{args:?}: a user error, exit 1");
        }
    }
}

//! The `corral` command's arguments (clap): every command, its flags and its help.

use crate::api::Format;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Corral's command: the machine's configuration, and installing Corral to a disk.
#[derive(Debug, Parser)]
#[command(name = "corral", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// The console (where sshd and the gettys run): the default one, the Debian console,
    /// or an image of your own.
    Console {
        #[command(subcommand)]
        command: ConsoleCommand,
    },
    /// The user engine's TLS certificates.
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
    /// The Docker Swarm this node is in: status, the cloud-config a new node needs to
    /// join (with the join token), and leaving (docs/swarm.md).
    Swarm {
        #[command(subcommand)]
        command: SwarmCommand,
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
pub enum ConfigCommand {
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
    /// Prints `corral.state` from a local datasource's user-data as kernel command line
    /// options, one a line: PID 1 runs it before the state is mounted.
    #[command(hide = true)]
    StateSeed,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
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
pub enum ConsoleCommand {
    /// The consoles there are, the one running and the one configured marked.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Runs CONSOLE now, and at later boots: `default`, a name from `console list`
    /// (`debian`), or an image. Your session ends as the console restarts; a console
    /// that does not stay up is switched back.
    Switch {
        #[arg(value_name = "CONSOLE")]
        name: String,
        /// Loads the console's image archive first, from a file or an http(s) URL
        /// (the Debian console is dist/console-debian.tar).
        #[arg(long, value_name = "FILE|URL")]
        from: Option<String>,
    },
    /// Runs CONSOLE from the next boot (`switch` without the restart now).
    Enable {
        #[arg(value_name = "CONSOLE")]
        name: String,
        #[arg(long, value_name = "FILE|URL")]
        from: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EngineCommand {
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
pub enum SwarmCommand {
    /// The node's swarm as the user engine sees it, and what the manager did with
    /// corral.swarm this boot (and why the node is not in the swarm, when it is not).
    Status {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Prints the cloud-config a new node needs to join this swarm as a worker (or a
    /// manager), the join token in it. Run it on a manager; the token is a secret.
    Token {
        #[arg(value_enum, default_value = "worker")]
        role: SwarmTokenRole,
    },
    /// Leaves the swarm. corral.swarm is then not applied again at boot until it
    /// changes.
    Leave {
        /// Leave even as a manager (the swarm may lose its quorum).
        #[arg(long)]
        force: bool,
    },
}

/// Whose join token `corral swarm token` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SwarmTokenRole {
    Worker,
    Manager,
}

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
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
pub enum OsCommand {
    /// Corral's version, the kernel, both engines' versions and the build.
    Version {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Writes a newer Corral into the boot slot that is not running, verified against
    /// the signed metadata first, and reboots into it on trial; it is kept only once it
    /// comes up healthy, else the machine goes back by itself (docs/upgrades.md).
    #[command(disable_version_flag = true)]
    Upgrade {
        /// The update: a repository URL (http, https), a repository folder, or an update
        /// file; without it, corral.upgrade.url.
        #[arg(long, value_name = "URL|FILE")]
        from: Option<String>,
        /// The release to install; the newest when not given.
        #[arg(long, value_name = "VERSION")]
        version: Option<String>,
        /// Write the slot and arm the trial, but do not reboot.
        #[arg(long)]
        no_reboot: bool,
        /// Install an older release, or the one that runs, again.
        #[arg(long)]
        force: bool,
    },
    /// The releases an update repository offers.
    List {
        /// A repository URL, folder or update file; without it, corral.upgrade.url.
        #[arg(long, value_name = "URL|FILE")]
        from: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Both boot slots: what each holds, good or on trial, which one runs and which
    /// boots next, and the last rollback with its reason.
    Status {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Makes the other slot, if it was good, the one that boots next.
    Rollback,
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// The whole disk to install to, such as /dev/vda or /dev/nvme0n1 (erased).
    #[arg(short, long, value_name = "DEVICE")]
    pub device: PathBuf,
    /// A cloud-config to keep as the installed machine's configuration.
    #[arg(short, long, value_name = "FILE")]
    pub cloud_config: Option<PathBuf>,
    /// Erase the disk without asking.
    #[arg(short, long)]
    pub force: bool,
    /// Stay up when done instead of rebooting.
    #[arg(long)]
    pub no_reboot: bool,
}

/// Exit codes: 0 done, 1 the user's error (bad arguments or input), 2 the machine's.
#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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
            &[
                "os",
                "upgrade",
                "--from",
                "/x.update",
                "--version",
                "1.2.0",
                "--no-reboot",
                "--force",
            ],
            &["os", "list", "--from", "https://h/r/", "--format", "json"],
            &["os", "status", "--format", "json"],
            &["os", "rollback"],
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

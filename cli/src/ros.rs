//! `ros`: RancherOS's command, for the scripts and hands that type it. The same binary
//! as `corral` (a link named `ros` in the console); its arguments are turned into
//! `corral`'s: the verbs are the same for `config`, `service`, `engine`, `os` and
//! `install`, and `rancher.` keys are read as `corral.` ones by `corral config` itself.
//! Where RancherOS's flag means something else in Corral, it is translated or refused
//! with what to type instead; nothing is passed on with another meaning (RancherOS's
//! `os upgrade -f` skips a prompt, while Corral's `--force` allows a downgrade).

/// What `ros ARGS` comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ros {
    /// Run `corral` with these arguments (without the program name).
    Corral(Vec<String>),
    /// Print this and exit 0.
    Said(String),
    /// Print this on stderr and exit 1.
    Refused(String),
}

fn corral(args: &[&str], rest: &[String]) -> Ros {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.extend(rest.iter().cloned());
    Ros::Corral(v)
}

fn refused(what: &str, instead: &str) -> Ros {
    Ros::Refused(format!("ros {what}: not in Corral; {instead}"))
}

/// `ros ARGS` (without the program name) as what Corral does.
pub fn translate(args: &[String]) -> Ros {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] | ["help"] | ["-h"] | ["--help"] => Ros::Said(format!(
            "ros: RancherOS's command on Corral; it runs `corral` with RancherOS's verbs \
             (config, service, engine, console, os, tls, install).\n\n{}",
            "Type `corral --help` for everything Corral does."
        )),
        ["-v"] | ["--version"] | ["version"] => corral(&["os", "version"], &[]),
        ["config", rest @ ..] => config(rest, &args[1..]),
        ["service", rest @ ..] | ["s", rest @ ..] => service(rest, &args[1..]),
        ["engine", rest @ ..] => engine(rest, &args[1..]),
        ["console", rest @ ..] => console(rest),
        ["os", rest @ ..] => os(rest, &args[1..]),
        ["tls", rest @ ..] => tls(rest, &args[1..]),
        ["install", ..] => install(&args[1..]),
        [other, ..] => refused(other, "type `corral --help` for what Corral does"),
    }
}

fn config(words: &[&str], args: &[String]) -> Ros {
    match words {
        ["get" | "set" | "merge" | "validate", ..] => corral(&["config"], args),
        ["export", ..] => {
            // `--private` put keys and certificates in RancherOS's output; Corral's export
            // (root only) always shows the whole saved configuration.
            let rest: Vec<String> = args[1..]
                .iter()
                .filter(|a| !matches!(a.as_str(), "--private" | "-p"))
                .cloned()
                .collect();
            corral(&["config", "export"], &rest)
        }
        [other, ..] => refused(
            &format!("config {other}"),
            "Corral's configuration commands are get, set, merge, export and validate",
        ),
        [] => corral(&["config", "--help"], &[]),
    }
}

fn service(words: &[&str], args: &[String]) -> Ros {
    match words {
        ["ps", rest @ ..] | ["ls", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            corral(&["service", "list"], &rest)
        }
        ["list" | "enable" | "disable" | "up" | "start" | "stop" | "restart" | "logs", ..] => {
            corral(&["service"], args)
        }
        [other, ..] => refused(
            &format!("service {other}"),
            "Corral's service commands are list, enable, disable, up, start, stop, restart and logs",
        ),
        [] => corral(&["service", "--help"], &[]),
    }
}

fn engine(words: &[&str], args: &[String]) -> Ros {
    match words {
        ["list" | "switch", ..] => corral(&["engine"], args),
        // RancherOS's `enable` took effect at the next boot; Corral's switch runs the
        // engine now and keeps it for later boots.
        ["enable", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            corral(&["engine", "switch"], &rest)
        }
        [other, ..] => refused(
            &format!("engine {other}"),
            "Corral's engine commands are list and switch",
        ),
        [] => corral(&["engine", "--help"], &[]),
    }
}

fn console(words: &[&str]) -> Ros {
    // RancherOS's `-f` only skipped its prompt; Corral does not ask.
    let named: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| *w != "-f" && *w != "--force")
        .collect();
    match named.as_slice() {
        ["list", ..] => corral(&["console", "list"], &[]),
        [verb @ ("switch" | "enable"), name] => corral(&["console", verb, name], &[]),
        _ => Ros::Refused(
            "ros console: use `ros console list`, `ros console switch NAME` or `ros console enable NAME`".into(),
        ),
    }
}

fn os(words: &[&str], args: &[String]) -> Ros {
    match words {
        ["version", ..] | ["list", ..] => corral(&["os"], args),
        ["upgrade", rest @ ..] => {
            let mut out = vec!["os".to_string(), "upgrade".to_string()];
            for w in rest {
                match *w {
                    // RancherOS's -f skips its prompt; Corral never prompts.
                    "-f" | "--force" | "-y" | "--yes" => {}
                    "--no-reboot" => out.push(w.to_string()),
                    "-i" | "--image" => {
                        return Ros::Refused(
                            "ros os upgrade -i: Corral upgrades from its signed repository, not from an image; \
                             type `corral os upgrade [--version V] [--from URL|FILE]` (docs/upgrades.md)"
                                .into(),
                        )
                    }
                    other => {
                        return Ros::Refused(format!(
                            "ros os upgrade {other}: not in Corral; type `corral os upgrade --help`"
                        ))
                    }
                }
            }
            Ros::Corral(out)
        }
        [other, ..] => refused(
            &format!("os {other}"),
            "Corral's os commands are version, list, upgrade, status and rollback",
        ),
        [] => corral(&["os", "--help"], &[]),
    }
}

fn tls(words: &[&str], args: &[String]) -> Ros {
    match words {
        // Without -s RancherOS made client certificates from the existing CA; Corral's
        // generate makes a new CA, which would lock every existing client out.
        ["gen" | "generate", rest @ ..]
            if !rest.iter().any(|a| matches!(*a, "-s" | "--server")) =>
        {
            Ros::Refused(
                "ros tls gen: Corral makes the client's files with the server's (in /home/corral/.docker); \
                 `ros tls gen --server` (corral tls generate) makes a new CA and server and client files"
                    .into(),
            )
        }
        ["gen" | "generate", rest @ ..] => {
            let rest: Vec<String> = rest
                .iter()
                .filter(|a| !matches!(**a, "-s" | "--server"))
                .map(|s| s.to_string())
                .collect();
            corral(&["tls", "generate"], &rest)
        }
        _ => corral(&["tls"], &args[..args.len().min(1)]),
    }
}

fn install(args: &[String]) -> Ros {
    let mut out = vec!["install".to_string()];
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "-d" | "--device" | "-c" | "--cloud-config" => {
                out.push(a.to_string());
                if let Some(v) = args.get(i + 1) {
                    out.push(v.clone());
                }
                i += 2;
                continue;
            }
            "-f" | "--force" | "--no-reboot" => out.push(a.to_string()),
            // The install type: Corral has one (GPT, BIOS and UEFI).
            "-t" | "--install-type" => {
                i += 2;
                continue;
            }
            other => {
                return Ros::Refused(format!(
                    "ros install {other}: not in Corral; type `corral install --help`"
                ))
            }
        }
        i += 1;
    }
    Ros::Corral(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(line: &str) -> Ros {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        translate(&args)
    }

    fn c(line: &str) -> Ros {
        Ros::Corral(line.split_whitespace().map(String::from).collect())
    }

    #[test]
    fn rancheros_verbs_become_corrals() {
        for (ros, corral) in [
            (
                "config get rancher.network.dns.nameservers",
                "config get rancher.network.dns.nameservers",
            ),
            (
                "config set rancher.ssh.port 2222",
                "config set rancher.ssh.port 2222",
            ),
            ("config export --private", "config export"),
            ("config merge -i a.yml", "config merge -i a.yml"),
            ("service enable crond", "service enable crond"),
            ("service ps", "service list"),
            ("engine switch docker-26.1", "engine switch docker-26.1"),
            ("engine enable docker-26.1", "engine switch docker-26.1"),
            ("os version", "os version"),
            ("-v", "os version"),
            ("os upgrade -f --no-reboot", "os upgrade --no-reboot"),
            ("tls gen --server -H h1", "tls generate -H h1"),
            ("tls gen -s", "tls generate"),
            (
                "install -d /dev/sda -c cc.yml -t generic -f --no-reboot",
                "install -d /dev/sda -c cc.yml -f --no-reboot",
            ),
        ] {
            assert_eq!(t(ros), c(corral), "ros {ros}");
        }
    }

    #[test]
    fn what_means_something_else_is_refused_with_what_to_type() {
        let Ros::Refused(e) = t("os upgrade -i rancher/os:v1.5.8") else {
            panic!("refused");
        };
        assert!(e.contains("corral os upgrade"), "{e}");
        assert_eq!(t("console switch -f debian"), c("console switch debian"));
        assert_eq!(t("console enable ubuntu"), c("console enable ubuntu"));
        assert_eq!(t("console list"), c("console list"));
        assert!(matches!(t("console switch"), Ros::Refused(_)));
        assert!(matches!(t("entrypoint"), Ros::Refused(_)));
        assert!(
            matches!(t("tls gen"), Ros::Refused(_)),
            "a client cert from the CA"
        );
        assert!(matches!(t("config syslinux"), Ros::Refused(_)));
        assert!(matches!(t("help"), Ros::Said(_)));
    }
}

//! The `corral` commands the manager answers (`os version`, `service ...`,
//! `boot-report`): each sends one request over `/run/corral/api.sock` and prints the
//! answer as a table or, with `--format json`, as JSON.

use corral_api::protocol::{
    Brought, Console, Engine, Logs, Request, Response, Service, Tls, Version,
};
use corral_api::report::BootReport;
use corral_api::ErrorKind;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Duration;

/// How a listing is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// A failure, with whose fault it is (exit 1 for the user's, 2 for the machine's).
#[derive(Debug)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl Failure {
    pub fn user(message: String) -> Failure {
        Failure {
            kind: ErrorKind::User,
            message,
        }
    }

    pub fn system(message: String) -> Failure {
        Failure {
            kind: ErrorKind::System,
            message,
        }
    }
}

/// How long an answer may take: a `service stop` waits up to 10 s for the service;
/// `service up` and `engine switch` wait for services and engines to come up (a switch
/// that fails waits for the old engine to come back too).
fn timeout(request: &Request) -> Duration {
    match request {
        Request::ServiceUp { .. }
        | Request::EngineSwitch { .. }
        | Request::ConsoleSwitch { .. } => Duration::from_secs(600),
        _ => Duration::from_secs(60),
    }
}

/// Sends `request` to the manager at `socket`; the answer's body, or why not.
pub fn ask(socket: &Path, request: &Request) -> Result<serde_json::Value, Failure> {
    match corral_api::client::call(socket, request, timeout(request)) {
        Ok(Response::Ok { body }) => Ok(body),
        Ok(Response::Error { kind, message }) => Err(Failure { kind, message }),
        Err(e) => Err(Failure::system(e.to_string())),
    }
}

/// The body as `T`.
pub fn decode<T: DeserializeOwned>(body: serde_json::Value) -> Result<T, Failure> {
    serde_json::from_value(body)
        .map_err(|e| Failure::system(format!("the manager's answer is not understood: {e}")))
}

/// Columns padded to their widest cell, two spaces apart.
pub fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `corral service list`.
pub fn services_table(services: &[Service]) -> String {
    // A FROM column when something is offered (the catalogue, a repository).
    let offers = services.iter().any(|s| s.offered_by.is_some());
    let mut header = vec![
        "NAME".to_string(),
        "IMAGE".into(),
        "STATE".into(),
        "HEALTH".into(),
        "SINCE".into(),
    ];
    if offers {
        header.push("FROM".into());
    }
    let mut rows = vec![header];
    let dash = |v: &str| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.to_string()
        }
    };
    for s in services {
        let mut row = vec![
            s.name.clone(),
            dash(&s.image),
            s.state.clone(),
            s.health.clone().unwrap_or_else(|| "-".into()),
            s.since.clone().unwrap_or_else(|| "-".into()),
        ];
        if offers {
            row.push(s.offered_by.clone().unwrap_or_else(|| "-".into()));
        }
        rows.push(row);
    }
    columns(&rows)
}

/// ", runtime crun", or nothing when the engine did not say.
fn runtime(name: Option<&str>) -> String {
    name.map(|r| format!(", runtime {r}")).unwrap_or_default()
}

/// `corral os version`.
pub fn version_table(v: &Version) -> String {
    let none = || "-".to_string();
    columns(&[
        vec!["Corral".into(), v.os.clone()],
        vec!["kernel".into(), v.kernel.clone()],
        vec![
            "system engine".into(),
            format!(
                "docker {}{}",
                v.system_engine,
                runtime(v.system_runtime.as_deref())
            ),
        ],
        vec![
            "user engine".into(),
            v.user_engine
                .as_ref()
                .map(|u| {
                    let name = v
                        .user_engine_name
                        .as_ref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default();
                    format!("docker {u}{name}{}", runtime(v.user_runtime.as_deref()))
                })
                .unwrap_or_else(|| "not answering".into()),
        ],
        vec!["build".into(), v.build_id.clone().unwrap_or_else(none)],
    ])
}

/// Prints a body in `format`, `table` rendering it as text.
fn print<T: DeserializeOwned + serde::Serialize>(
    body: serde_json::Value,
    format: Format,
    table: impl Fn(&T) -> String,
) -> Result<(), Failure> {
    show(&decode::<T>(body)?, format, table);
    Ok(())
}

/// Prints `value` in `format`, `table` rendering it as text.
fn show<T: serde::Serialize>(value: &T, format: Format, table: impl Fn(&T) -> String) {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Format::Table => print!("{}", table(value)),
    }
}

/// `service enable`'s argument as a request: a name from the catalogue, or a services
/// file (a path with a `/` or ending in `.yml`) or an `http(s)://` URL, whose text goes
/// along under the name of its file.
pub fn enable_request(arg: &str) -> Result<Request, Failure> {
    let user = Failure::user;
    let is_url = arg.starts_with("http://") || arg.starts_with("https://");
    let is_file = !is_url && (arg.contains('/') || arg.ends_with(".yml") || arg.ends_with(".yaml"));
    if !is_url && !is_file {
        return Ok(Request::ServiceEnable {
            name: arg.to_string(),
            definition: None,
        });
    }
    let last = arg.trim_end_matches('/').rsplit('/').next().unwrap_or(arg);
    let last = last.split(['?', '#']).next().unwrap_or(last);
    let name = last
        .strip_suffix(".yml")
        .or_else(|| last.strip_suffix(".yaml"))
        .unwrap_or(last)
        .to_string();
    let limit = corral_config::userdata::MAX_USER_DATA;
    let bytes = if is_url {
        if let Some(warning) = corral_config::datasource::transport_warning(arg) {
            eprintln!("corral: warning: {warning}");
        }
        corral_config::datasource::get("service enable", arg, Duration::from_secs(30))
            .map_err(|e| user(format!("{e}; nothing was enabled")))?
    } else {
        crate::validate::read_input(Path::new(arg))
            .map_err(|e| user(format!("reading {arg}: {e}")))?
    };
    if bytes.len() > limit {
        return Err(user(format!("{arg} is larger than {limit} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| user(format!("{arg} is not UTF-8 text")))?;
    Ok(Request::ServiceEnable {
        name,
        definition: Some(text),
    })
}

/// `service logs --follow`: prints lines as the manager sends them, until it stops or
/// the user interrupts.
fn follow(socket: &Path, request: &Request, format: Format) -> Result<(), Failure> {
    use std::io::Write;
    let mut failure = None;
    corral_api::client::stream(socket, request, |response| match response {
        Response::Ok { body } => match decode::<Logs>(body) {
            Ok(logs) => {
                let mut out = std::io::stdout().lock();
                let written = match format {
                    Format::Json => {
                        writeln!(out, "{}", serde_json::to_string(&logs).unwrap_or_default())
                    }
                    Format::Table => logs.lines.iter().try_for_each(|l| writeln!(out, "{l}")),
                };
                written.and_then(|()| out.flush()).is_ok()
            }
            Err(f) => {
                failure = Some(f);
                false
            }
        },
        Response::Error { kind, message } => {
            failure = Some(Failure { kind, message });
            false
        }
    })
    .map_err(|e| Failure::system(e.to_string()))?;
    failure.map_or(Ok(()), Err)
}

/// `engine list`'s table: the one in use marked `*`.
pub fn engines_table(engines: &[Engine]) -> String {
    let mut rows = vec![["NAME", "DOCKER", "IMAGE", "IN USE"]
        .map(String::from)
        .to_vec()];
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    rows.extend(engines.iter().map(|e| {
        vec![
            or_dash(&e.name),
            or_dash(&e.version),
            e.image.clone(),
            if e.current { "*" } else { "" }.to_string(),
        ]
    }));
    columns(&rows)
}

pub fn consoles_table(consoles: &[Console]) -> String {
    let mut rows = vec![["NAME", "IMAGE", "RUNNING", "CONFIGURED"]
        .map(String::from)
        .to_vec()];
    let mark = |b: bool| if b { "*" } else { "" }.to_string();
    rows.extend(consoles.iter().map(|c| {
        vec![
            c.name.clone(),
            c.image.clone(),
            mark(c.current),
            mark(c.configured),
        ]
    }));
    columns(&rows)
}

/// What `tls generate` made, and what to do next.
pub fn tls_text(tls: &Tls) -> String {
    let mut lines = vec![
        format!(
            "New CA, server and client certificates in {} (clients holding the old ones are refused from the engine's next start).",
            tls.dir
        ),
        format!("The server's is good for: {}", tls.names.join(", ")),
    ];
    if !tls.client.is_empty() {
        lines.push(format!("Client files: {}", tls.client.join(", ")));
    }
    lines.push(if tls.enabled {
        "Next: sudo corral service restart docker (the engine serves them from then on; its containers stop). \
         Until then it serves the old ones, which the new client files do not match."
            .to_string()
    } else {
        "Next: TLS is off; turn it on with sudo corral config set corral.docker.tls true, then sudo corral service up docker"
            .to_string()
    });
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// `service up`'s answer as lines.
pub fn brought_table(brought: &[Brought]) -> String {
    let rows: Vec<Vec<String>> = brought
        .iter()
        .map(|b| vec![b.name.clone(), b.outcome.clone()])
        .collect();
    columns(&rows)
}

/// The failure when a service did not come up.
pub fn not_brought(brought: &[Brought]) -> Result<(), Failure> {
    let bad: Vec<&str> = brought
        .iter()
        .filter(|b| !b.ok)
        .map(|b| b.name.as_str())
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(Failure::system(format!(
        "{} did not come up; `corral service logs NAME` shows why",
        bad.join(", ")
    )))
}

/// Runs a request and prints its answer.
pub fn run(socket: &Path, request: Request, format: Format) -> Result<(), Failure> {
    if let Request::ServiceLogs { follow: true, .. } = request {
        return follow(socket, &request, format);
    }
    let action = match &request {
        Request::ServiceStart { name } => Some(format!("started {name}")),
        Request::ServiceStop { name } => Some(format!("stopped {name}")),
        Request::ServiceRestart { name } => Some(format!("restarted {name}")),
        Request::ServiceEnable { name, .. } => Some(format!(
            "enabled {name}: it starts at every boot; to start it now: sudo corral service up {name}"
        )),
        Request::EngineSwitch { image } => Some(format!(
            "the user engine runs {image} (saved: it stays after reboots)"
        )),
        Request::ServiceDisable { name } => Some(format!(
            "disabled {name}: stopped and removed, and it stays off at later boots \
             (sudo corral service enable {name} turns it back on)"
        )),
        _ => None,
    };
    let body = ask(socket, &request)?;
    if let Some(done) = action {
        println!("{done}");
        return Ok(());
    }
    match request {
        Request::OsVersion => print::<Version>(body, format, version_table),
        Request::ServiceList => print::<Vec<Service>>(body, format, |s| services_table(s)),
        Request::ServiceLogs { .. } => print::<Logs>(body, format, |l| {
            l.lines.iter().map(|line| format!("{line}\n")).collect()
        }),
        Request::BootReport => print::<BootReport>(body, format, BootReport::table),
        Request::EngineList => print::<Vec<Engine>>(body, format, |e| engines_table(e)),
        Request::ConsoleList => print::<Vec<Console>>(body, format, |c| consoles_table(c)),
        Request::TlsGenerate { .. } => print::<Tls>(body, format, tls_text),
        Request::ServiceUp { .. } => {
            let brought: Vec<Brought> = decode(body)?;
            show(&brought, format, |b| brought_table(b));
            not_brought(&brought)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_table_lines_up() {
        let t = services_table(&[
            Service {
                name: "ntp".into(),
                image: "corral/ntp:0.1.0".into(),
                state: "running".into(),
                health: None,
                since: Some("2026-11-21T10:00:00Z".into()),
                offered_by: None,
            },
            Service {
                name: "console".into(),
                image: "corral/console:0.1.0".into(),
                state: "exited".into(),
                health: Some("healthy".into()),
                since: None,
                offered_by: None,
            },
        ]);
        assert_eq!(
            t,
            "NAME     IMAGE                 STATE    HEALTH   SINCE\n\
             ntp      corral/ntp:0.1.0      running  -        2026-11-21T10:00:00Z\n\
             console  corral/console:0.1.0  exited   healthy  -\n"
        );
        let offered = services_table(&[Service {
            name: "crontab".into(),
            image: String::new(),
            state: "available".into(),
            health: None,
            since: None,
            offered_by: Some("repository core".into()),
        }]);
        assert_eq!(
            offered,
            "NAME     IMAGE  STATE      HEALTH  SINCE  FROM\n\
             crontab  -      available  -       -      repository core\n"
        );
    }

    #[test]
    fn enable_takes_a_name_a_file_or_a_url() {
        assert_eq!(
            enable_request("crond").unwrap(),
            Request::ServiceEnable {
                name: "crond".into(),
                definition: None
            }
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("web.yml");
        std::fs::write(&file, "services:\n  web:\n    image: nginx\n").unwrap();
        let Request::ServiceEnable { name, definition } =
            enable_request(file.to_str().unwrap()).unwrap()
        else {
            panic!()
        };
        assert_eq!(name, "web");
        assert!(definition.unwrap().contains("image: nginx"));
        let e = enable_request("./missing.yml").expect_err("no file");
        assert_eq!(e.kind, ErrorKind::User);
        assert!(
            e.message.starts_with("reading ./missing.yml"),
            "{}",
            e.message
        );
        // Nothing listens on port 9 here: a user's error naming the URL.
        let e = enable_request("http://127.0.0.1:9/svc/extra.yml").expect_err("no server");
        assert!(
            e.message.contains("GET http://127.0.0.1:9/svc/extra.yml"),
            "{}",
            e.message
        );
    }

    #[test]
    fn enable_from_a_url_sends_the_served_file_under_its_name() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let body = "services:\n  extra:\n    image: corral/base:1\n";
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "the request ended early");
                request.extend_from_slice(&buf[..n]);
            }
            write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        let url = format!("http://127.0.0.1:{port}/svc/extra.yml?v=2");
        let Request::ServiceEnable { name, definition } = enable_request(&url).unwrap() else {
            panic!()
        };
        let asked = server.join().unwrap();
        assert!(asked.starts_with("GET /svc/extra.yml?v=2 "), "{asked}");
        assert_eq!(name, "extra", "the file's name, without the query");
        assert_eq!(definition.as_deref(), Some(body));
    }

    #[test]
    fn the_engine_in_use_is_marked() {
        let t = engines_table(&[
            Engine {
                image: "corral/engine:0.1.0".into(),
                name: Some("docker-28.5".into()),
                version: Some("28.5.2".into()),
                current: true,
            },
            Engine {
                image: "corral/engine:alt".into(),
                name: None,
                version: None,
                current: false,
            },
        ]);
        assert_eq!(
            t,
            "NAME         DOCKER  IMAGE                IN USE\n\
             docker-28.5  28.5.2  corral/engine:0.1.0  *\n\
             -            -       corral/engine:alt\n"
        );
    }

    #[test]
    fn up_reports_each_service_and_fails_when_one_did_not_come_up() {
        let brought = [
            Brought {
                name: "crond".into(),
                ok: true,
                outcome: "running (created)".into(),
            },
            Brought {
                name: "web".into(),
                ok: false,
                outcome: "failed: no such image".into(),
            },
        ];
        assert_eq!(
            brought_table(&brought),
            "crond  running (created)\nweb    failed: no such image\n"
        );
        assert!(not_brought(&brought[..1]).is_ok(), "crond came up");
        let f = not_brought(&brought).expect_err("web failed");
        assert_eq!(f.kind, ErrorKind::System);
        assert!(
            f.message.starts_with("web did not come up"),
            "{}",
            f.message
        );
    }

    #[test]
    fn tls_generate_says_where_the_files_are_and_what_comes_next() {
        let mut tls = Tls {
            dir: "/var/lib/corral/tls".into(),
            names: vec!["localhost".into(), "engine.example".into()],
            client: vec!["/home/corral/.docker/ca.pem".into()],
            enabled: true,
        };
        let on = tls_text(&tls);
        assert!(
            on.lines().all(|l| !l.starts_with(' ')),
            "no stray indentation: {on}"
        );
        assert!(on.contains("in /var/lib/corral/tls"), "{on}");
        assert!(on.contains("good for: localhost, engine.example"), "{on}");
        assert!(
            on.contains("Client files: /home/corral/.docker/ca.pem"),
            "{on}"
        );
        assert!(on.contains("corral service restart docker"), "{on}");
        tls.enabled = false;
        tls.client.clear();
        let off = tls_text(&tls);
        assert!(off.contains("config set corral.docker.tls true"), "{off}");
        assert!(!off.contains("Client files"), "{off}");
    }

    #[test]
    fn the_version_names_each_part() {
        let t = version_table(&Version {
            os: "0.1.0".into(),
            kernel: "6.1.0-56-cloud-amd64".into(),
            system_engine: "26.1.5".into(),
            system_runtime: Some("crun".into()),
            user_engine: None,
            user_engine_name: None,
            user_runtime: None,
            build_id: Some("abc".into()),
        });
        assert!(
            t.contains("system engine  docker 26.1.5, runtime crun\n"),
            "{t}"
        );
        assert!(t.contains("user engine    not answering\n"), "{t}");
        assert!(t.contains("build          abc\n"), "{t}");
        let t = version_table(&Version {
            os: "0.1.0".into(),
            kernel: "6.12.118+deb13-cloud-amd64".into(),
            system_engine: "26.1.5".into(),
            system_runtime: Some("crun".into()),
            user_engine: Some("28.5.2".into()),
            user_engine_name: Some("docker-28.5".into()),
            user_runtime: Some("runc".into()),
            build_id: None,
        });
        assert!(
            t.contains("user engine    docker 28.5.2 (docker-28.5), runtime runc\n"),
            "{t}"
        );
    }

    #[test]
    fn no_manager_is_the_machines_failure() {
        let err = ask(Path::new("/nonexistent/api.sock"), &Request::ServiceList).unwrap_err();
        assert_eq!(err.kind, ErrorKind::System);
        assert!(err.message.contains("sudo"), "{}", err.message);
    }

    #[test]
    fn a_user_error_from_the_manager_keeps_its_kind() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            corral_api::client::read_line(&mut reader).unwrap();
            let mut out = serde_json::to_vec(&Response::user("there is no service \"x\"")).unwrap();
            out.push(b'\n');
            (&stream).write_all(&out).unwrap();
        });
        let err = run(
            &path,
            Request::ServiceStop { name: "x".into() },
            Format::Table,
        )
        .unwrap_err();
        server.join().unwrap();
        assert_eq!(err.kind, ErrorKind::User);
        assert!(err.message.contains("no service"));
    }
}

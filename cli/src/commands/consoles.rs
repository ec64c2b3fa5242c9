//! `corral console list|switch|enable`: requests to the manager, which owns the console
//! service (`manager/src/consoles.rs`). `--from FILE|URL` first puts the console's image
//! archive where the manager takes it (`/var/lib/corral/consoles/`, on the state
//! partition, which the console shares), copied or downloaded with a progress bar.

use super::{failed, manager, SYSTEM_ERROR, USER_ERROR};
use crate::api::Format;
use crate::args::ConsoleCommand;
use corral_api::protocol::Request;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where the manager takes console archives from.
const ARCHIVES: &str = "/var/lib/corral/consoles";

pub(super) fn console(command: ConsoleCommand) -> ExitCode {
    let (name, from, now) = match command {
        ConsoleCommand::List { format } => return manager(vec![Request::ConsoleList], format),
        ConsoleCommand::Switch { name, from } => (name, from, true),
        ConsoleCommand::Enable { name, from } => (name, from, false),
    };
    let archive = match from.as_deref().map(|f| receive(f, Path::new(ARCHIVES))) {
        None => None,
        Some(Ok(path)) => Some(path.display().to_string()),
        Some(Err((code, why))) => {
            eprintln!("corral: {why}");
            return ExitCode::from(code);
        }
    };
    let request = Request::ConsoleSwitch {
        name: name.clone(),
        now,
        archive: archive.clone(),
    };
    let result = crate::api::run(Path::new(corral_api::SOCKET), request, Format::Table);
    match result {
        Ok(()) if now => {
            println!(
                "switching to console {name}: a session in the console ends as it restarts; \
                 log in again in a minute (a console that does not stay up is switched back, \
                 `corral console list` shows which runs)"
            );
            ExitCode::SUCCESS
        }
        Ok(()) => {
            println!("console {name} runs from the next boot");
            ExitCode::SUCCESS
        }
        Err(f) => {
            // The manager keeps an archive it took; one it refused goes.
            if let Some(a) = archive {
                let _ = std::fs::remove_file(a);
            }
            failed(&f)
        }
    }
}

/// Copies or downloads `from` into a new file in `dir`; its path, or (exit code, why).
fn receive(from: &str, dir: &Path) -> Result<PathBuf, (u8, String)> {
    std::fs::create_dir_all(dir).map_err(|e| {
        (
            SYSTEM_ERROR,
            format!("making {}: {e} (run it with sudo)", dir.display()),
        )
    })?;
    let dest = dir.join(format!(".incoming-{}.tar", std::process::id()));
    let is_url = from.starts_with("http://") || from.starts_with("https://");
    let (mut reader, length): (Box<dyn Read>, Option<u64>) = if is_url {
        if let Some(w) = corral_config::datasource::transport_warning(from) {
            eprintln!("corral: warning: {w}");
        }
        let response = corral_update::transport::agent()
            .get(from)
            .call()
            .map_err(|e| (SYSTEM_ERROR, format!("GET {from}: {e}")))?;
        if response.status() != 200 {
            return Err((
                USER_ERROR,
                format!("GET {from}: HTTP {}", response.status()),
            ));
        }
        let length = response.body().content_length();
        (Box::new(response.into_body().into_reader()), length)
    } else {
        let file =
            std::fs::File::open(from).map_err(|e| (USER_ERROR, format!("reading {from}: {e}")))?;
        let length = file.metadata().ok().map(|m| m.len());
        (Box::new(file), length)
    };
    let bar = corral_update::progress::bytes_bar(length.unwrap_or(0), "console image");
    let copied = (|| -> std::io::Result<u64> {
        let mut out = std::fs::File::create(&dest)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            total += n as u64;
            bar.set_position(total);
        }
        out.sync_all()?;
        Ok(total)
    })();
    bar.finish_and_clear();
    match copied {
        Ok(n) => {
            println!(
                "received {from}: {:.1} MB in {}",
                n as f64 / 1e6,
                dest.display()
            );
            Ok(dest)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&dest);
            Err((
                SYSTEM_ERROR,
                format!("copying {from} to {}: {e}", dest.display()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_received_whole_and_a_missing_one_is_the_users_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("console.tar");
        std::fs::write(&src, vec![7u8; 3 << 20]).expect("w");
        let got =
            receive(&src.display().to_string(), &dir.path().join("consoles")).expect("received");
        assert_eq!(std::fs::read(&got).expect("r").len(), 3 << 20);
        assert!(got.starts_with(dir.path().join("consoles")));
        let (code, why) = receive("/no/such.tar", dir.path()).expect_err("missing");
        assert_eq!(code, USER_ERROR);
        assert!(why.contains("reading /no/such.tar"), "{why}");
    }
}
